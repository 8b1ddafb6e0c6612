// ReplyFramer and ParseReplyTree: every RESP2/RESP3 type, resumption at every
// split point, errors and limits.
#include "protocol/reply_parser.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace keyfence::protocol {
namespace {

using namespace std::string_literals;

struct FrameResult {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t consumed = 0;
  ReplyType type = ReplyType::kNull;
  ReplyError error = ReplyError::kNone;
  bool operator==(const FrameResult&) const = default;
};

std::ostream& operator<<(std::ostream& os, const FrameResult& r) {
  return os << "{status=" << int(r.status) << " consumed=" << r.consumed << " type=" << int(r.type)
            << " error=" << int(r.error) << "}";
}

FrameResult Capture(const ReplyFramer& f, ParseStatus st, size_t consumed) {
  FrameResult r;
  r.status = st;
  r.consumed = consumed;
  r.error = f.error();
  if (st == ParseStatus::kOk) r.type = f.type();
  return r;
}

std::unique_ptr<char[]> Copy(std::string_view in, size_t n) {
  auto buf = std::make_unique<char[]>(n == 0 ? 1 : n);
  if (n > 0) std::memcpy(buf.get(), in.data(), n);
  return buf;
}

FrameResult FrameOnce(std::string_view in, const ReplyLimits& limits = {}) {
  ReplyFramer f(limits);
  auto buf = Copy(in, in.size());
  size_t consumed = 0;
  const ParseStatus st = f.Frame(buf.get(), in.size(), &consumed);
  return Capture(f, st, consumed);
}

FrameResult FrameSplit(std::string_view in, size_t split, const ReplyLimits& limits = {}) {
  ReplyFramer f(limits);
  size_t consumed = 0;
  {
    auto first = Copy(in, split);
    const ParseStatus st = f.Frame(first.get(), split, &consumed);
    if (st != ParseStatus::kNeedMore) return Capture(f, st, consumed);
    REQUIRE(consumed == 0);
  }
  auto full = Copy(in, in.size());
  const ParseStatus st = f.Frame(full.get(), in.size(), &consumed);
  return Capture(f, st, consumed);
}

FrameResult FrameBytewise(std::string_view in, const ReplyLimits& limits = {}) {
  ReplyFramer f(limits);
  for (size_t n = 0; n <= in.size(); ++n) {
    auto buf = Copy(in, n);
    size_t consumed = 0;
    const ParseStatus st = f.Frame(buf.get(), n, &consumed);
    if (st != ParseStatus::kNeedMore) return Capture(f, st, consumed);
    if (f.hint_total() != 0) {
      REQUIRE(f.hint_total() > n);
    }
  }
  return FrameResult{};
}

FrameResult FrameGrowing(std::string_view in, const ReplyLimits& limits = {}) {
  ReplyFramer f(limits);
  for (size_t n = 0; n <= in.size(); ++n) {
    size_t consumed = 0;
    const ParseStatus st = f.Frame(in.data(), n, &consumed);
    if (st != ParseStatus::kNeedMore) return Capture(f, st, consumed);
  }
  return FrameResult{};
}

FrameResult CheckAllSplits(std::string_view in, const ReplyLimits& limits = {}) {
  const FrameResult once = FrameOnce(in, limits);
  for (size_t split = 0; split <= in.size(); ++split) {
    CAPTURE(split);
    REQUIRE(FrameSplit(in, split, limits) == once);
  }
  REQUIRE(FrameBytewise(in, limits) == once);
  return once;
}

FrameResult Ok(ReplyType type, size_t consumed) {
  return FrameResult{ParseStatus::kOk, consumed, type, ReplyError::kNone};
}

FrameResult Err(ReplyError e) { return FrameResult{ParseStatus::kError, 0, ReplyType::kNull, e}; }

std::string Nested(int depth, const std::string& leaf) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "*1\r\n";
  return s + leaf;
}

struct Valid {
  std::string bytes;
  ReplyType type;
};

std::vector<Valid> ValidReplies() {
  return {
      {"+OK\r\n", ReplyType::kSimpleString},
      {"+\r\n", ReplyType::kSimpleString},
      {"-ERR unknown command 'x'\r\n", ReplyType::kError},
      {":0\r\n", ReplyType::kInteger},
      {":-123\r\n", ReplyType::kInteger},
      {":+5\r\n", ReplyType::kInteger},
      {":9223372036854775807\r\n", ReplyType::kInteger},
      {":-9223372036854775808\r\n", ReplyType::kInteger},
      {"$5\r\nhello\r\n", ReplyType::kBulk},
      {"$0\r\n\r\n", ReplyType::kBulk},
      {"$-1\r\n", ReplyType::kBulk},
      {"$6\r\na\r\nb\r\n\r\n", ReplyType::kBulk},
      {"$3\r\n\0\xff\r\r\n"s, ReplyType::kBulk},
      {"*0\r\n", ReplyType::kArray},
      {"*-1\r\n", ReplyType::kArray},
      {"*2\r\n$3\r\nfoo\r\n:1\r\n", ReplyType::kArray},
      {"_\r\n", ReplyType::kNull},
      {",3.14\r\n", ReplyType::kDouble},
      {",inf\r\n", ReplyType::kDouble},
      {",-inf\r\n", ReplyType::kDouble},
      {",nan\r\n", ReplyType::kDouble},
      {",10\r\n", ReplyType::kDouble},
      {",1e10\r\n", ReplyType::kDouble},
      {",-1.5E-3\r\n", ReplyType::kDouble},
      {",.5\r\n", ReplyType::kDouble},
      {"#t\r\n", ReplyType::kBoolean},
      {"#f\r\n", ReplyType::kBoolean},
      {"!21\r\nSYNTAX invalid syntax\r\n", ReplyType::kBlobError},
      {"=15\r\ntxt:Some string\r\n", ReplyType::kVerbatim},
      {"=4\r\nmkd:\r\n", ReplyType::kVerbatim},
      {"(3492890328409238509324850943850943825024385\r\n", ReplyType::kBigNumber},
      {"(-1\r\n", ReplyType::kBigNumber},
      {"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", ReplyType::kMap},
      {"%0\r\n", ReplyType::kMap},
      {"~3\r\n+a\r\n+b\r\n+c\r\n", ReplyType::kSet},
      {"~0\r\n", ReplyType::kSet},
      {"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
       "*2\r\n:2039123\r\n:9543892\r\n",
       ReplyType::kArray},
      {"|0\r\n:1\r\n", ReplyType::kInteger},
      {"|1\r\n+a\r\n|1\r\n+b\r\n+c\r\n+d\r\n+value\r\n", ReplyType::kSimpleString},
      {"*2\r\n|1\r\n+ttl\r\n:3600\r\n+v1\r\n+v2\r\n", ReplyType::kArray},
      {"%1\r\n|1\r\n+a\r\n+b\r\n+k\r\n|0\r\n+v\r\n", ReplyType::kMap},
      {">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n", ReplyType::kPush},
      {">4\r\n+pmessage\r\n+p*\r\n+p1\r\n*1\r\n_\r\n", ReplyType::kPush},
      {"*3\r\n*2\r\n%1\r\n+a\r\n~1\r\n_\r\n*0\r\n>1\r\n#t\r\n:7\r\n", ReplyType::kArray},
      {"*2\r\n*-1\r\n$-1\r\n", ReplyType::kArray},
      {Nested(64, ":1\r\n"), ReplyType::kArray},
      {"$1000\r\n" + std::string(1000, 'x') + "\r\n", ReplyType::kBulk},
  };
}

TEST_CASE("framer: every reply type split at every byte boundary") {
  for (const Valid& v : ValidReplies()) {
    CAPTURE(v.bytes);
    REQUIRE(CheckAllSplits(v.bytes) == Ok(v.type, v.bytes.size()));
  }
}

TEST_CASE("framer: trailing bytes of the next reply are not consumed") {
  for (const Valid& v : ValidReplies()) {
    CAPTURE(v.bytes);
    REQUIRE(FrameOnce(v.bytes + "+NEXT\r\n") == Ok(v.type, v.bytes.size()));
  }
}

TEST_CASE("framer: push replies are flagged") {
  ReplyFramer f;
  size_t consumed = 0;
  const std::string push = ">2\r\n+invalidate\r\n*1\r\n$3\r\nkey\r\n";
  REQUIRE(f.Frame(push, &consumed) == ParseStatus::kOk);
  REQUIRE(f.is_push());
  REQUIRE(f.Frame("+OK\r\n", &consumed) == ParseStatus::kOk);
  REQUIRE_FALSE(f.is_push());
}

TEST_CASE("framer: big payload fed byte by byte and in chunks") {
  const std::string reply = "*2\r\n$300000\r\n" + std::string(300000, 'p') + "\r\n:1\r\n";
  const FrameResult once = FrameOnce(reply);
  REQUIRE(once == Ok(ReplyType::kArray, reply.size()));
  REQUIRE(FrameGrowing(reply) == once);
  for (size_t split = 0; split <= reply.size(); split += (split < 64 ? 1 : 4099)) {
    REQUIRE(FrameSplit(reply, split) == once);
  }
}

TEST_CASE("framer: hint_total announces the bytes a bulk needs") {
  ReplyFramer f;
  const std::string head = "*2\r\n:1\r\n$100000\r\n";
  size_t consumed = 0;
  REQUIRE(f.Frame(head, &consumed) == ParseStatus::kNeedMore);
  REQUIRE(f.hint_total() == head.size() + 100000 + 2);
}

TEST_CASE("framer: pipelined replies back to back") {
  std::string stream;
  std::vector<FrameResult> expected;
  for (int round = 0; round < 3; ++round) {
    for (const Valid& v : ValidReplies()) {
      stream += v.bytes;
      expected.push_back(Ok(v.type, v.bytes.size()));
    }
  }
  for (size_t chunk : {1, 2, 3, 7, 16, 61, 512}) {
    CAPTURE(chunk);
    ReplyFramer f;
    std::string pending;
    size_t fed = 0;
    size_t next = 0;
    while (next < expected.size()) {
      size_t consumed = 0;
      auto buf = Copy(pending, pending.size());
      const ParseStatus st = f.Frame(buf.get(), pending.size(), &consumed);
      if (st == ParseStatus::kNeedMore) {
        REQUIRE(fed < stream.size());
        const size_t n = std::min(chunk, stream.size() - fed);
        pending.append(stream, fed, n);
        fed += n;
        continue;
      }
      REQUIRE(Capture(f, st, consumed) == expected[next]);
      pending.erase(0, consumed);
      ++next;
    }
    REQUIRE(pending.empty());
  }
}

TEST_CASE("framer: malformed replies") {
  struct Case {
    std::string in;
    ReplyError error;
  };
  const std::vector<Case> cases = {
      {"x\r\n", ReplyError::kBadType},
      {"@1\r\n", ReplyError::kBadType},
      {"\r\n", ReplyError::kBadType},
      {"*1\r\n?\r\n", ReplyError::kBadType},
      {"$abc\r\n", ReplyError::kBadLength},
      {"$-2\r\n", ReplyError::kBadLength},
      {"$\r\n", ReplyError::kBadLength},
      {"$?\r\n", ReplyError::kBadLength},
      {"$-0\r\n", ReplyError::kBadLength},
      {"!-1\r\n", ReplyError::kBadLength},
      {"=-1\r\n", ReplyError::kBadLength},
      {"*-2\r\n", ReplyError::kBadLength},
      {"%-1\r\n", ReplyError::kBadLength},
      {"~-1\r\n", ReplyError::kBadLength},
      {">-1\r\n", ReplyError::kBadLength},
      {"*+1\r\n", ReplyError::kBadLength},
      {"*1x\r\n", ReplyError::kBadLength},
      {"*99999999999999999999\r\n", ReplyError::kBadLength},
      {"$3\r\nfooXX", ReplyError::kMissingCrlf},
      {"$3\r\nfoo\rX", ReplyError::kMissingCrlf},
      {"+OK\rX", ReplyError::kMissingCrlf},
      {"*2\r\n+a\r\n+b\rX", ReplyError::kMissingCrlf},
      {":abc\r\n", ReplyError::kBadValue},
      {":\r\n", ReplyError::kBadValue},
      {":-\r\n", ReplyError::kBadValue},
      {":1.5\r\n", ReplyError::kBadValue},
      {":9223372036854775808\r\n", ReplyError::kBadValue},
      {":-9223372036854775809\r\n", ReplyError::kBadValue},
      {"#x\r\n", ReplyError::kBadValue},
      {"#\r\n", ReplyError::kBadValue},
      {"#tt\r\n", ReplyError::kBadValue},
      {",abc\r\n", ReplyError::kBadValue},
      {",\r\n", ReplyError::kBadValue},
      {",1e\r\n", ReplyError::kBadValue},
      {",.\r\n", ReplyError::kBadValue},
      {",1.2.3\r\n", ReplyError::kBadValue},
      {",infinity\r\n", ReplyError::kBadValue},
      {"(\r\n", ReplyError::kBadValue},
      {"(-\r\n", ReplyError::kBadValue},
      {"(12a\r\n", ReplyError::kBadValue},
      {"_x\r\n", ReplyError::kBadValue},
      {"=3\r\ntxt\r\n", ReplyError::kBadValue},
      {"=5\r\ntxtxx\r\n", ReplyError::kBadValue},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    REQUIRE(CheckAllSplits(c.in) == Err(c.error));
  }
}

TEST_CASE("framer: errors are sticky until Reset") {
  ReplyFramer f;
  size_t consumed = 0;
  REQUIRE(f.Frame("x\r\n", &consumed) == ParseStatus::kError);
  REQUIRE(f.Frame("+OK\r\n", &consumed) == ParseStatus::kError);
  f.Reset();
  REQUIRE(f.error() == ReplyError::kNone);
  REQUIRE(f.Frame("+OK\r\n", &consumed) == ParseStatus::kOk);
  REQUIRE(consumed == 5);
}

TEST_CASE("framer: Reset forgets a partial reply") {
  ReplyFramer f;
  size_t consumed = 0;
  REQUIRE(f.Frame("*3\r\n:1\r\n", &consumed) == ParseStatus::kNeedMore);
  f.Reset();
  REQUIRE(f.Frame(":2\r\n", &consumed) == ParseStatus::kOk);
  REQUIRE(f.type() == ReplyType::kInteger);
}

TEST_CASE("framer: limits are enforced before the data arrives") {
  SECTION("bulk length") {
    REQUIRE(FrameOnce("$999999999999\r\n").error == ReplyError::kBadLength);
    REQUIRE(FrameOnce("$4294967297\r\n").error == ReplyError::kBadLength);
    REQUIRE(FrameOnce("$4294967296\r\n").status == ParseStatus::kNeedMore);
    ReplyLimits limits;
    limits.max_bulk_len = 10;
    REQUIRE(FrameOnce("*2\r\n$1\r\na\r\n$11\r\n", limits).error == ReplyError::kBadLength);
    REQUIRE(FrameOnce("!11\r\n", limits).error == ReplyError::kBadLength);
    REQUIRE(FrameOnce("=11\r\n", limits).error == ReplyError::kBadLength);
    REQUIRE(CheckAllSplits("$10\r\n0123456789\r\n", limits) == Ok(ReplyType::kBulk, 17));
  }
  SECTION("element count") {
    ReplyLimits limits;
    limits.max_elements = 3;
    for (std::string in : {"*4\r\n", "%4\r\n", "~4\r\n", ">4\r\n", "|4\r\n"}) {
      CAPTURE(in);
      REQUIRE(FrameOnce(in, limits).error == ReplyError::kBadLength);
      in[1] = '3';
      REQUIRE(FrameOnce(in, limits).status == ParseStatus::kNeedMore);
    }
    REQUIRE(FrameOnce("*1073741825\r\n").error == ReplyError::kBadLength);
    REQUIRE(FrameOnce("%9223372036854775807\r\n", ReplyLimits{1, 1, SIZE_MAX}).error ==
            ReplyError::kBadLength);
  }
  SECTION("depth") {
    ReplyLimits d64;
    d64.max_depth = 64;
    REQUIRE(FrameOnce(Nested(65, ":1\r\n"), d64).error == ReplyError::kTooDeep);
    REQUIRE(FrameOnce(Nested(65, ""), d64).error == ReplyError::kTooDeep);
    REQUIRE(FrameOnce(Nested(64, "*0\r\n"), d64).error == ReplyError::kTooDeep);
    REQUIRE(FrameOnce(Nested(64, ":1\r\n"), d64).status == ParseStatus::kOk);
    ReplyLimits limits;
    limits.max_depth = 2;
    REQUIRE(CheckAllSplits("*1\r\n%1\r\n+a\r\n+b\r\n", limits).status == ParseStatus::kOk);
    REQUIRE(CheckAllSplits("*1\r\n%1\r\n+a\r\n*0\r\n", limits) == Err(ReplyError::kTooDeep));
    REQUIRE(CheckAllSplits("*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n", limits).status == ParseStatus::kOk);
    REQUIRE(CheckAllSplits("*1\r\n:1\r\n", ReplyLimits{10, 0, 10}) == Err(ReplyError::kTooDeep));
    // A configured depth beyond the inline stack holds exactly.
    const ReplyLimits deep{1 << 20, 1000, 1 << 20};
    REQUIRE(CheckAllSplits(Nested(1000, ":1\r\n"), deep) == Ok(ReplyType::kArray, 4004));
    REQUIRE(CheckAllSplits(Nested(1001, ":1\r\n"), deep) == Err(ReplyError::kTooDeep));
  }
  SECTION("line length") {
    ReplyLimits limits;
    limits.max_bulk_len = 100;
    const std::string line = "+" + std::string(100, 'a');
    REQUIRE(FrameOnce(line, limits).status == ParseStatus::kNeedMore);
    REQUIRE(CheckAllSplits(line + "a", limits) == Err(ReplyError::kLineTooLong));
    REQUIRE(CheckAllSplits(line + "a\r\n", limits) == Err(ReplyError::kLineTooLong));
    REQUIRE(CheckAllSplits(line + "\r\n", limits) == Ok(ReplyType::kSimpleString, 103));
  }
}

TEST_CASE("framer: byte-at-a-time feeding is linear") {
  std::string reply = "*20000\r\n";
  for (int i = 0; i < 20000; ++i) reply += "$1\r\na\r\n";
  REQUIRE(FrameGrowing(reply) == Ok(ReplyType::kArray, reply.size()));
  const std::string line = "+" + std::string(100000, 's') + "\r\n";
  REQUIRE(FrameGrowing(line) == Ok(ReplyType::kSimpleString, line.size()));
}

TEST_CASE("tree: nodes are pre-order views whose raw bytes tile the frame") {
  for (const Valid& v : ValidReplies()) {
    CAPTURE(v.bytes);
    std::vector<ReplyNode> nodes;
    REQUIRE(ParseReplyTree(v.bytes, &nodes));
    std::string joined;
    for (const ReplyNode& n : nodes) joined += n.raw;
    REQUIRE(joined == v.bytes);
    // Skipping leading attributes lands on the top-level value, whose subtree
    // ends the frame.
    size_t i = 0;
    while (nodes[i].attribute) i = SkipReplySubtree(nodes, i);
    REQUIRE(nodes[i].type == v.type);
    REQUIRE(SkipReplySubtree(nodes, i) == nodes.size());
  }
}

TEST_CASE("tree: scalar values") {
  std::vector<ReplyNode> n;
  REQUIRE(ParseReplyTree("+OK\r\n", &n));
  REQUIRE((n.size() == 1 && n[0].type == ReplyType::kSimpleString && n[0].str == "OK"));
  REQUIRE(ParseReplyTree("-ERR x\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kError && n[0].str == "ERR x"));
  REQUIRE(ParseReplyTree(":-42\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kInteger && n[0].integer == -42 && n[0].str == "-42"));
  REQUIRE(ParseReplyTree("$6\r\na\r\nb\r\n\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kBulk && n[0].str == "a\r\nb\r\n" && !n[0].is_null));
  REQUIRE(ParseReplyTree("$-1\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kBulk && n[0].is_null && n[0].str.empty()));
  REQUIRE(ParseReplyTree("*-1\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kArray && n[0].is_null && n[0].count == 0));
  REQUIRE(ParseReplyTree("_\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kNull && n[0].is_null));
  REQUIRE(ParseReplyTree(",-inf\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kDouble && n[0].str == "-inf"));
  REQUIRE(ParseReplyTree("#t\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kBoolean && n[0].integer == 1));
  REQUIRE(ParseReplyTree("#f\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kBoolean && n[0].integer == 0));
  REQUIRE(ParseReplyTree("!3\r\nERR\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kBlobError && n[0].str == "ERR"));
  REQUIRE(ParseReplyTree("=15\r\ntxt:Some string\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kVerbatim && n[0].str == "Some string" && n[0].format == "txt"));
  REQUIRE(ParseReplyTree("(-12345678901234567890\r\n", &n));
  REQUIRE((n[0].type == ReplyType::kBigNumber && n[0].str == "-12345678901234567890"));
}

TEST_CASE("tree: aggregates, attributes and push") {
  std::vector<ReplyNode> n;
  SECTION("map counts children, not pairs") {
    REQUIRE(ParseReplyTree("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", &n));
    REQUIRE(n.size() == 5);
    REQUIRE((n[0].type == ReplyType::kMap && n[0].count == 4 && n[0].raw == "%2\r\n"));
    REQUIRE((n[3].str == "b" && n[4].integer == 2));
  }
  SECTION("attribute inside an array") {
    REQUIRE(ParseReplyTree("*2\r\n|1\r\n+ttl\r\n:3600\r\n+v1\r\n+v2\r\n", &n));
    REQUIRE(n.size() == 6);
    REQUIRE(n[0].count == 2);
    REQUIRE((n[1].type == ReplyType::kAttribute && n[1].attribute && n[1].count == 2));
    REQUIRE((!n[2].attribute && n[2].str == "ttl" && n[3].integer == 3600));
    REQUIRE(SkipReplySubtree(n, 1) == 4);
    REQUIRE(n[4].str == "v1");
    REQUIRE(SkipReplySubtree(n, 0) == 6);
  }
  SECTION("top-level attribute then value") {
    REQUIRE(ParseReplyTree("|1\r\n+a\r\n+b\r\n*1\r\n:7\r\n", &n));
    REQUIRE(n.size() == 5);
    REQUIRE(n[0].attribute);
    REQUIRE(SkipReplySubtree(n, 0) == 3);
    REQUIRE((n[3].type == ReplyType::kArray && n[4].integer == 7));
  }
  SECTION("push message") {
    REQUIRE(ParseReplyTree(">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n", &n));
    REQUIRE((n.size() == 4 && n[0].type == ReplyType::kPush && n[0].count == 3));
    REQUIRE((n[1].str == "message" && n[2].str == "ch1" && n[3].str == "hello"));
  }
  SECTION("nested") {
    REQUIRE(ParseReplyTree("*2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n~1\r\n$1\r\nc\r\n", &n));
    REQUIRE(n.size() == 6);
    REQUIRE(SkipReplySubtree(n, 1) == 4);
    REQUIRE(SkipReplySubtree(n, 4) == 6);
    REQUIRE(n[5].str == "c");
  }
  SECTION("deeply nested: no recursion on depth") {
    REQUIRE(ParseReplyTree(Nested(100000, ":1\r\n"), &n));
    REQUIRE(n.size() == 100001);
    REQUIRE(SkipReplySubtree(n, 0) == n.size());
    REQUIRE(SkipReplySubtree(n, 50000) == n.size());
  }
}

TEST_CASE("framer: replies as deep as Redis sends pass whole and split anywhere") {
  // EVAL of a Lua table nested 10,000 levels (Redis stops it with an error
  // near 8,000), and deeper still: the default limits admit them.
  for (int depth : {10000, 100000}) {
    CAPTURE(depth);
    const std::string lua = Nested(depth - 2, "*2\r\n-ERR reached lua stack limit\r\n") + ":1\r\n";
    std::string resp3;  // maps of one pair, an attribute before each key
    for (int i = 0; i < depth; ++i) resp3 += "%1\r\n|1\r\n+a\r\n:1\r\n+k\r\n";
    resp3 += "~0\r\n";
    for (const std::string& in : {Nested(depth, ":1\r\n"), lua, resp3}) {
      const FrameResult ok = Ok(in[0] == '*' ? ReplyType::kArray : ReplyType::kMap, in.size());
      REQUIRE(FrameOnce(in) == ok);
      REQUIRE(FrameGrowing(in) == ok);  // every byte boundary, resumed
      for (size_t split = 0; split <= in.size(); split += in.size() / 61 + 1) {
        CAPTURE(split);
        REQUIRE(FrameSplit(in, split) == ok);
      }
      for (size_t split : {size_t{255}, size_t{256}, size_t{257}, in.size() - 1}) {
        REQUIRE(FrameSplit(in, split) == ok);  // around the inline stack's end
      }
    }
  }
  // The same framer goes on with the next reply of the stream, deep or not.
  ReplyFramer f;
  const std::string stream = Nested(10000, ":1\r\n") + "+OK\r\n" + Nested(300, "*0\r\n");
  size_t at = 0;
  for (size_t want : {size_t{40004}, size_t{5}, size_t{1204}}) {
    size_t consumed = 0;
    REQUIRE(f.Frame(stream.data() + at, stream.size() - at, &consumed) == ParseStatus::kOk);
    REQUIRE(consumed == want);
    at += consumed;
  }
  // Reset() in the middle of a deep reply starts afresh.
  size_t consumed = 0;
  REQUIRE(f.Frame(stream.data(), 20000, &consumed) == ParseStatus::kNeedMore);
  f.Reset();
  REQUIRE(f.Frame("*1\r\n:1\r\n", 8, &consumed) == ParseStatus::kOk);
  REQUIRE(consumed == 8);
}

TEST_CASE("tree: rejects malformed, incomplete or overlong frames") {
  std::vector<ReplyNode> n;
  for (std::string bad : {"", "+OK", "+OK\r\n+OK\r\n", "*2\r\n:1\r\n", "$3\r\nab\r\n", "x\r\n",
                          "|1\r\n+a\r\n+b\r\n", "#x\r\n", "*1\r\n"}) {
    CAPTURE(bad);
    REQUIRE_FALSE(ParseReplyTree(bad, &n));
  }
  REQUIRE(SkipReplySubtree(n, 99) == 99);
}

TEST_CASE("framer: random mutations agree across feeds and with the tree parser") {
  std::mt19937 rng(777);
  const std::vector<Valid> seeds = ValidReplies();
  const char alphabet[] = "*$%|>~_#,(=!+-:\r\n0123-1tfx.e";
  ReplyLimits limits;
  limits.max_bulk_len = 100;
  limits.max_depth = 4;
  limits.max_elements = 8;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string in = seeds[rng() % seeds.size()].bytes;
    if (in.size() > 200) continue;
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
    const FrameResult once = FrameOnce(in, limits);
    REQUIRE(FrameBytewise(in, limits) == once);
    REQUIRE(FrameSplit(in, rng() % (in.size() + 1), limits) == once);
    std::vector<ReplyNode> nodes;
    if (once.status == ParseStatus::kOk) {
      REQUIRE(ParseReplyTree(std::string_view(in).substr(0, once.consumed), &nodes));
    }
  }
}

}  // namespace
}  // namespace keyfence::protocol
