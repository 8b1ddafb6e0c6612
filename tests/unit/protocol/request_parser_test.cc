// RequestParser: framing, resumption at every split point, errors, limits.
#include "protocol/request_parser.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace keyfence::protocol {
namespace {

using namespace std::string_literals;

struct Result {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t consumed = 0;
  std::vector<std::string> args;
  bool is_inline = false;
  RequestError error = RequestError::kNone;
  bool operator==(const Result&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  os << "{status=" << int(r.status) << " consumed=" << r.consumed << " inline=" << r.is_inline
     << " error=" << int(r.error) << " args=[";
  for (const auto& a : r.args) os << '"' << a << "\" ";
  return os << "]}";
}

Result Capture(const RequestParser& p, ParseStatus st, size_t consumed) {
  Result r;
  r.status = st;
  r.consumed = consumed;
  r.error = p.error();
  if (st == ParseStatus::kOk) {
    r.is_inline = p.is_inline();
    for (size_t i = 0; i < p.argc(); ++i) r.args.emplace_back(p.arg(i));
  }
  return r;
}

// An exactly sized heap copy: a new address on every call, and ASan sees any
// read past the bytes the parser was given.
std::unique_ptr<char[]> Copy(std::string_view in, size_t n) {
  auto buf = std::make_unique<char[]>(n == 0 ? 1 : n);
  if (n > 0) std::memcpy(buf.get(), in.data(), n);
  return buf;
}

Result ParseOnce(std::string_view in, const RequestLimits& limits = {}) {
  RequestParser p(limits);
  auto buf = Copy(in, in.size());
  size_t consumed = 0;
  const ParseStatus st = p.Parse(buf.get(), in.size(), &consumed);
  return Capture(p, st, consumed);
}

// Parses in[0..split) and then the whole input from a new buffer.
Result ParseSplit(std::string_view in, size_t split, const RequestLimits& limits = {}) {
  RequestParser p(limits);
  size_t consumed = 0;
  {
    auto first = Copy(in, split);
    const ParseStatus st = p.Parse(first.get(), split, &consumed);
    if (st != ParseStatus::kNeedMore) return Capture(p, st, consumed);
    REQUIRE(consumed == 0);
  }
  auto full = Copy(in, in.size());
  const ParseStatus st = p.Parse(full.get(), in.size(), &consumed);
  return Capture(p, st, consumed);
}

// Feeds one more byte per call, each time from a fresh buffer.
Result ParseBytewise(std::string_view in, const RequestLimits& limits = {}) {
  RequestParser p(limits);
  for (size_t n = 0; n <= in.size(); ++n) {
    auto buf = Copy(in, n);
    size_t consumed = 0;
    const ParseStatus st = p.Parse(buf.get(), n, &consumed);
    if (st != ParseStatus::kNeedMore) return Capture(p, st, consumed);
    if (p.hint_total() != 0) {
      REQUIRE(p.hint_total() > n);
    }
  }
  return Result{};
}

// Grows one buffer a byte at a time (cheap for big inputs).
Result ParseGrowing(std::string_view in, const RequestLimits& limits = {}) {
  RequestParser p(limits);
  for (size_t n = 0; n <= in.size(); ++n) {
    size_t consumed = 0;
    const ParseStatus st = p.Parse(in.data(), n, &consumed);
    if (st != ParseStatus::kNeedMore) return Capture(p, st, consumed);
  }
  return Result{};
}

// One-shot, every two-piece split and byte-at-a-time all agree.
Result CheckAllSplits(std::string_view in, const RequestLimits& limits = {}) {
  const Result once = ParseOnce(in, limits);
  for (size_t split = 0; split <= in.size(); ++split) {
    CAPTURE(split);
    REQUIRE(ParseSplit(in, split, limits) == once);
  }
  REQUIRE(ParseBytewise(in, limits) == once);
  return once;
}

Result Ok(std::vector<std::string> args, size_t consumed, bool is_inline = false) {
  Result r;
  r.status = ParseStatus::kOk;
  r.consumed = consumed;
  r.args = std::move(args);
  r.is_inline = is_inline;
  return r;
}

Result Err(RequestError e) {
  Result r;
  r.status = ParseStatus::kError;
  r.error = e;
  return r;
}

std::string Multibulk(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

TEST_CASE("parser: multibulk requests split at every byte boundary") {
  const std::vector<std::vector<std::string>> cases = {
      {"PING"},
      {"GET", "key:000123"},
      {"SET", "key", "value"},
      {"SET", "", ""},
      {"ECHO", "a\r\nb\r\n"},
      {"ECHO", "*1\r\n$3\r\n"},
      {"ECHO", "\0\xff\x01"s},
      {"MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"},
      {"SET", "big", std::string(1000, 'x')},
  };
  for (const auto& args : cases) {
    const std::string in = Multibulk(args);
    CAPTURE(in);
    REQUIRE(CheckAllSplits(in) == Ok(args, in.size()));
  }
}

TEST_CASE("parser: big payload fed byte by byte and in chunks") {
  const std::string payload(300 * 1000, 'v');
  const std::string in = Multibulk({"SET", "k", payload});
  const Result once = ParseOnce(in);
  REQUIRE(once == Ok({"SET", "k", payload}, in.size()));
  REQUIRE(ParseGrowing(in) == once);
  for (size_t split = 0; split <= in.size(); split += (split < 64 ? 1 : 4093)) {
    REQUIRE(ParseSplit(in, split) == once);
  }
  REQUIRE(ParseSplit(in, in.size() - 1) == once);
  REQUIRE(ParseSplit(in, in.size() - 2) == once);
}

TEST_CASE("parser: hint_total announces the bytes a bulk needs") {
  RequestParser p;
  const std::string in = "*2\r\n$3\r\nSET\r\n$100000\r\n";
  size_t consumed = 7;
  REQUIRE(p.Parse(in.data(), in.size(), &consumed) == ParseStatus::kNeedMore);
  REQUIRE(consumed == 0);
  REQUIRE(p.hint_total() == in.size() + 100000 + 2);
  // Header still incomplete: no hint.
  REQUIRE(p.Parse(in.data(), 4, &consumed) == ParseStatus::kNeedMore);
  RequestParser q;
  REQUIRE(q.Parse(in.data(), in.size() - 3, &consumed) == ParseStatus::kNeedMore);
  REQUIRE(q.hint_total() == 0);
}

TEST_CASE("parser: empty multibulk counts are empty requests") {
  for (std::string in : {"*0\r\n", "*-1\r\n", "*-5\r\n"}) {
    CAPTURE(in);
    REQUIRE(CheckAllSplits(in) == Ok({}, in.size()));
  }
}

TEST_CASE("parser: inline requests split at every byte boundary") {
  struct Case {
    std::string in;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases = {
      {"PING\r\n", {"PING"}},
      {"PING\n", {"PING"}},
      {"\r\n", {}},
      {"\n", {}},
      {"   \t \r\n", {}},
      {"SET a b\r\n", {"SET", "a", "b"}},
      {"  SET   a\tb  \r\n", {"SET", "a", "b"}},
      {"set \"a b\" c\r\n", {"set", "a b", "c"}},
      {"echo \"\\x41\\x4a\\n\\t\\r\\b\\a\\\\\\\"\"\n", {"echo", "AJ\n\t\r\b\a\\\""}},
      {"echo \"\\x4\"\n", {"echo", "x4"}},
      {"echo \"\\xzz\"\n", {"echo", "xzz"}},
      {"echo \"\\q\"\n", {"echo", "q"}},
      {"echo 'it\\'s'\n", {"echo", "it's"}},
      {"echo 'a\\nb'\n", {"echo", "a\\nb"}},
      {"echo \"\" ''\n", {"echo", "", ""}},
      {"echo a\"b c\"\n", {"echo", "ab c"}},
      {"echo a'b c'\n", {"echo", "ab c"}},
      {"echo \"a\"\t\"b\"\n", {"echo", "a", "b"}},
      {"echo a\vb \fc\n", {"echo", "a\vb", "c"}},
      {"echo a\rb\r\n", {"echo", "a", "b"}},
      {"GET a\0b c\r\n"s, {"GET", "a"}},
      {"GET caf\xc3\xa9\n", {"GET", "caf\xc3\xa9"}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    REQUIRE(CheckAllSplits(c.in) == Ok(c.args, c.in.size(), true));
  }
}

TEST_CASE("parser: inline unbalanced quotes") {
  for (std::string in : {"GET \"a\r\n", "GET \"a\"b\r\n", "GET 'a\r\n", "GET 'a'b\r\n",
                         "GET \"abc\\\"\r\n", "GET \"a\"'b'\r\n", "GET \"a\\\n"}) {
    CAPTURE(in);
    REQUIRE(CheckAllSplits(in) == Err(RequestError::kUnbalancedQuotes));
  }
  RequestParser p;
  size_t consumed = 0;
  const std::string in = "GET \"a\n";
  REQUIRE(p.Parse(in.data(), in.size(), &consumed) == ParseStatus::kError);
  REQUIRE(p.error_text() == "Protocol error: unbalanced quotes in request");
}

TEST_CASE("parser: pipelined requests back to back") {
  std::string stream;
  std::vector<Result> expected;
  auto add = [&](const std::string& bytes, Result r) {
    r.consumed = bytes.size();
    stream += bytes;
    expected.push_back(std::move(r));
  };
  for (int i = 0; i < 20; ++i) {
    const std::vector<std::string> args = {"GET", "key:" + std::to_string(i)};
    add(Multibulk(args), Ok(args, 0));
    if (i % 3 == 0) add("*0\r\n", Ok({}, 0));
    if (i % 4 == 0) add("PING x\r\n", Ok({"PING", "x"}, 0, true));
    if (i % 5 == 0) add("\r\n", Ok({}, 0, true));
  }
  add(Multibulk({"SET", "k", std::string(5000, 'z')}), Ok({"SET", "k", std::string(5000, 'z')}, 0));

  // Reads of every size from 1 to 64 bytes, the caller keeping unconsumed
  // bytes at the front of a buffer that moves on every read.
  for (size_t chunk = 1; chunk <= 64; ++chunk) {
    CAPTURE(chunk);
    RequestParser p;
    std::string pending;
    size_t fed = 0;
    size_t next = 0;
    while (next < expected.size()) {
      size_t consumed = 0;
      auto buf = Copy(pending, pending.size());
      const ParseStatus st = p.Parse(buf.get(), pending.size(), &consumed);
      if (st == ParseStatus::kNeedMore) {
        REQUIRE(fed < stream.size());
        const size_t n = std::min(chunk, stream.size() - fed);
        pending.append(stream, fed, n);
        fed += n;
        continue;
      }
      REQUIRE(Capture(p, st, consumed) == expected[next]);
      pending.erase(0, consumed);
      ++next;
    }
    REQUIRE(pending.empty());
    REQUIRE(fed == stream.size());
  }
}

TEST_CASE("parser: invalid multibulk length") {
  for (std::string in : {"*abc\r\n", "*+1\r\n", "*01\r\n", "*1a\r\n", "*\r\n", "*-\r\n", "*-0\r\n",
                         "* 1\r\n", "*99999999999999999999999\r\n"}) {
    CAPTURE(in);
    REQUIRE(CheckAllSplits(in) == Err(RequestError::kInvalidMultibulkLength));
  }
  RequestParser p;
  size_t consumed = 0;
  REQUIRE(p.Parse("*x\r\n", 4, &consumed) == ParseStatus::kError);
  REQUIRE(p.error_text() == "Protocol error: invalid multibulk length");
}

TEST_CASE("parser: invalid bulk length") {
  for (std::string in :
       {"*1\r\n$abc\r\n", "*1\r\n$-1\r\n", "*1\r\n$-0\r\n", "*1\r\n$\r\n", "*1\r\n$+3\r\n",
        "*1\r\n$03\r\n", "*1\r\n$3 \r\n", "*1\r\n$99999999999999999999\r\n"}) {
    CAPTURE(in);
    REQUIRE(CheckAllSplits(in) == Err(RequestError::kInvalidBulkLength));
  }
  RequestParser p;
  size_t consumed = 0;
  REQUIRE(p.Parse("*1\r\n$x\r\n", 8, &consumed) == ParseStatus::kError);
  REQUIRE(p.error_text() == "Protocol error: invalid bulk length");
}

TEST_CASE("parser: expected dollar names the byte") {
  struct Case {
    std::string in;
    std::string text;
  };
  for (const auto& c : std::vector<Case>{
           {"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"},
           {"*2\r\n$1\r\na\r\n:1\r\n", "Protocol error: expected '$', got ':'"},
           {"*1\r\n\r\n", "Protocol error: expected '$', got ' '"},
           {"*1\r\n\n", "Protocol error: expected '$', got ' '"},
           {"*1\r\n*1\r\n", "Protocol error: expected '$', got '*'"},
       }) {
    CAPTURE(c.in);
    REQUIRE(CheckAllSplits(c.in) == Err(RequestError::kExpectedDollar));
    RequestParser p;
    size_t consumed = 0;
    REQUIRE(p.Parse(c.in.data(), c.in.size(), &consumed) == ParseStatus::kError);
    REQUIRE(p.error_text() == c.text);
  }
}

TEST_CASE("parser: payload and header lines need CRLF") {
  for (std::string in :
       {"*1\r\n$3\r\nfooXY", "*1\r\n$3\r\nfoo\rX", "*1\r\n$3\r\nfoo\n\r", "*1\rX", "*1\r\n$3\rX"}) {
    CAPTURE(in);
    REQUIRE(CheckAllSplits(in) == Err(RequestError::kMissingCrlf));
  }
  RequestParser p;
  size_t consumed = 0;
  REQUIRE(p.Parse("*1\rX", 4, &consumed) == ParseStatus::kError);
  REQUIRE(p.error_text() == "Protocol error: expected CRLF");
}

TEST_CASE("parser: header lines without CR are bounded") {
  RequestLimits limits;
  limits.max_inline_len = 100;
  SECTION("multibulk count") {
    const std::string in = "*" + std::string(100, '1');
    REQUIRE(ParseOnce(in.substr(0, 100), limits).status == ParseStatus::kNeedMore);
    REQUIRE(CheckAllSplits(in, limits) == Err(RequestError::kTooBigMbulkCount));
    REQUIRE(CheckAllSplits(in + "\r\n", limits) == Err(RequestError::kTooBigMbulkCount));
    RequestParser p(limits);
    size_t consumed = 0;
    REQUIRE(p.Parse(in.data(), in.size(), &consumed) == ParseStatus::kError);
    REQUIRE(p.error_text() == "Protocol error: too big mbulk count string");
  }
  SECTION("bulk count") {
    const std::string in = "*1\r\n$" + std::string(100, '1');
    REQUIRE(ParseOnce(in.substr(0, in.size() - 1), limits).status == ParseStatus::kNeedMore);
    REQUIRE(CheckAllSplits(in, limits) == Err(RequestError::kTooBigBulkCount));
    REQUIRE(CheckAllSplits(in + "\r\n", limits) == Err(RequestError::kTooBigBulkCount));
    RequestParser p(limits);
    size_t consumed = 0;
    REQUIRE(p.Parse(in.data(), in.size(), &consumed) == ParseStatus::kError);
    REQUIRE(p.error_text() == "Protocol error: too big bulk count string");
  }
  SECTION("default limit is 64 KiB like Redis") {
    const std::string in = "*" + std::string(64 * 1024 - 1, '1');
    REQUIRE(ParseOnce(in).status == ParseStatus::kNeedMore);
    REQUIRE(ParseOnce(in + "1").error == RequestError::kTooBigMbulkCount);
  }
}

TEST_CASE("parser: too big inline request") {
  RequestLimits limits;
  limits.max_inline_len = 16;
  const std::string ok_line = std::string(15, 'a') + "\r\n";  // 16 bytes before the LF
  REQUIRE(CheckAllSplits(ok_line, limits) == Ok({std::string(15, 'a')}, 17, true));
  REQUIRE(CheckAllSplits(std::string(17, 'a'), limits) == Err(RequestError::kTooBigInline));
  REQUIRE(CheckAllSplits(std::string(16, 'a') + "\r\n", limits) ==
          Err(RequestError::kTooBigInline));
  REQUIRE(ParseOnce(std::string(16, 'a'), limits).status == ParseStatus::kNeedMore);
  const std::string big(64 * 1024 + 1, 'a');
  REQUIRE(ParseOnce(big).error == RequestError::kTooBigInline);
  REQUIRE(ParseOnce(big.substr(1)).status == ParseStatus::kNeedMore);
  RequestParser p;
  size_t consumed = 0;
  REQUIRE(p.Parse(big.data(), big.size(), &consumed) == ParseStatus::kError);
  REQUIRE(p.error_text() == "Protocol error: too big inline request");
}

TEST_CASE("parser: limits are enforced before the data arrives") {
  SECTION("bulk length over max_bulk_len, default 512 MiB") {
    REQUIRE(ParseOnce("*1\r\n$999999999999\r\n").error == RequestError::kInvalidBulkLength);
    REQUIRE(ParseOnce("*1\r\n$536870913\r\n").error == RequestError::kInvalidBulkLength);
    REQUIRE(ParseOnce("*1\r\n$536870912\r\n").status == ParseStatus::kNeedMore);
  }
  SECTION("configured bulk limit") {
    RequestLimits limits;
    limits.max_bulk_len = 16;
    REQUIRE(ParseOnce("*2\r\n$3\r\nGET\r\n$17\r\n", limits).error ==
            RequestError::kInvalidBulkLength);
    REQUIRE(ParseOnce("*2\r\n$3\r\nGET\r\n$16\r\n", limits).status == ParseStatus::kNeedMore);
    const std::string ok = Multibulk({"GET", std::string(16, 'k')});
    REQUIRE(CheckAllSplits(ok, limits).status == ParseStatus::kOk);
  }
  SECTION("argument count over max_args") {
    RequestLimits limits;
    limits.max_args = 10;
    REQUIRE(ParseOnce("*11\r\n", limits).error == RequestError::kInvalidMultibulkLength);
    REQUIRE(ParseOnce("*10\r\n", limits).status == ParseStatus::kNeedMore);
    REQUIRE(ParseOnce("*1048577\r\n").error == RequestError::kInvalidMultibulkLength);
    REQUIRE(ParseOnce("*1048576\r\n").status == ParseStatus::kNeedMore);
  }
  SECTION("limits can change between requests (pre-AUTH then post-AUTH)") {
    RequestLimits tight;
    tight.max_args = 2;
    RequestParser p(tight);
    const std::string three = Multibulk({"SET", "a", "b"});
    size_t consumed = 0;
    p.set_limits(RequestLimits{});
    REQUIRE(p.Parse(three.data(), three.size(), &consumed) == ParseStatus::kOk);
    p.set_limits(tight);
    REQUIRE(p.Parse(three.data(), three.size(), &consumed) == ParseStatus::kError);
    REQUIRE(p.limits().max_args == 2);
  }
}

TEST_CASE("parser: errors are sticky until Reset") {
  RequestParser p;
  size_t consumed = 0;
  REQUIRE(p.Parse("*x\r\n", 4, &consumed) == ParseStatus::kError);
  REQUIRE(p.Parse("PING\r\n", 6, &consumed) == ParseStatus::kError);
  p.Reset();
  REQUIRE(p.error() == RequestError::kNone);
  REQUIRE(p.error_text().empty());
  REQUIRE(p.Parse("PING\r\n", 6, &consumed) == ParseStatus::kOk);
  REQUIRE(p.argc() == 1);
  REQUIRE(p.arg(0) == "PING");
  REQUIRE(p.arg(1).empty());
}

TEST_CASE("parser: Reset forgets a partial request") {
  RequestParser p;
  size_t consumed = 0;
  REQUIRE(p.Parse("*2\r\n$3\r\nGET\r\n", 13, &consumed) == ParseStatus::kNeedMore);
  p.Reset();
  REQUIRE(p.Parse("PING\r\n", 6, &consumed) == ParseStatus::kOk);
  REQUIRE(p.is_inline());
  REQUIRE(consumed == 6);
}

TEST_CASE("parser: byte-at-a-time feeding is linear") {
  // 20000 arguments; a parser that rescanned parsed arguments on every call
  // would do ~10^9 steps here.
  std::vector<std::string> args(20000, "a");
  args[0] = "MSET";
  const std::string in = Multibulk(args);
  const Result r = ParseGrowing(in);
  REQUIRE(r.status == ParseStatus::kOk);
  REQUIRE(r.args.size() == args.size());
  // A long inline line, likewise.
  const std::string line = std::string(60000, 'a') + "\n";
  REQUIRE(ParseGrowing(line).status == ParseStatus::kOk);
}

TEST_CASE("parser: views point into the caller's buffer") {
  RequestParser p;
  const std::string in = Multibulk({"GET", "key"});
  size_t consumed = 0;
  REQUIRE(p.Parse(in.data(), in.size(), &consumed) == ParseStatus::kOk);
  REQUIRE(p.arg(1).data() == in.data() + in.find("key"));
  REQUIRE_FALSE(p.is_inline());
}

TEST_CASE("parser: StringToInt64 follows Redis string2ll") {
  int64_t v = 0;
  REQUIRE(StringToInt64("0", &v));
  REQUIRE(v == 0);
  REQUIRE(StringToInt64("-9223372036854775808", &v));
  REQUIRE(v == INT64_MIN);
  REQUIRE(StringToInt64("9223372036854775807", &v));
  REQUIRE(v == INT64_MAX);
  REQUIRE(StringToInt64("-42", &v));
  REQUIRE(v == -42);
  for (const char* bad : {"", "-", "-0", "+1", "01", " 1", "1 ", "9223372036854775808",
                          "-9223372036854775809", "18446744073709551616", "1e3", "0x10"}) {
    CAPTURE(bad);
    REQUIRE_FALSE(StringToInt64(bad, &v));
  }
}

TEST_CASE("parser: random mutations agree across feeds and never crash") {
  std::mt19937 rng(12345);
  const std::vector<std::string> seeds = {Multibulk({"SET", "key", "value"}),
                                          Multibulk({"GET", "k"}),
                                          "SET \"a b\" 'c'\r\n",
                                          "*0\r\n",
                                          Multibulk({"ECHO", ""}),
                                          "PING\n"};
  const char alphabet[] = "*$\r\n0123-'\"\\x a";
  RequestLimits limits;
  limits.max_inline_len = 40;
  limits.max_bulk_len = 30;
  limits.max_args = 5;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string in = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % (in.size() + 1);
      const char c = alphabet[rng() % (sizeof(alphabet) - 1)];
      switch (rng() % 3) {
        case 0:
          in.insert(in.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        case 1:
          if (at < in.size()) in.erase(at, 1);
          break;
        default:
          if (at < in.size()) in[at] = c;
          break;
      }
    }
    CAPTURE(in);
    const Result once = ParseOnce(in, limits);
    REQUIRE(ParseBytewise(in, limits) == once);
    REQUIRE(ParseSplit(in, rng() % (in.size() + 1), limits) == once);
    if (once.status == ParseStatus::kOk) {
      REQUIRE(once.consumed <= in.size());
    }
  }
}

}  // namespace
}  // namespace keyfence::protocol
