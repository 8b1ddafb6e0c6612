// RESP writers: exact bytes, RESP2/RESP3 variants, and round trips through the
// reply parser.
#include "protocol/writer.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "protocol/reply_parser.h"
#include "protocol/request_parser.h"

namespace keyfence::protocol {
namespace {

std::vector<ReplyNode> Tree(const std::string& bytes) {
  std::vector<ReplyNode> nodes;
  REQUIRE(ParseReplyTree(bytes, &nodes));
  return nodes;
}

TEST_CASE("writer: scalar encodings") {
  std::string out;
  AppendSimple(out, "OK");
  REQUIRE(out == "+OK\r\n");
  out.clear();
  AppendError(out, "ERR bad thing");
  REQUIRE(out == "-ERR bad thing\r\n");
  out.clear();
  AppendInteger(out, 0);
  AppendInteger(out, -1);
  AppendInteger(out, 1234567890123);
  REQUIRE(out == ":0\r\n:-1\r\n:1234567890123\r\n");
  out.clear();
  AppendInteger(out, std::numeric_limits<int64_t>::min());
  AppendInteger(out, std::numeric_limits<int64_t>::max());
  REQUIRE(out == ":-9223372036854775808\r\n:9223372036854775807\r\n");
  out.clear();
  AppendBulk(out, "hello");
  AppendBulk(out, "");
  AppendBulk(out, std::string_view("a\0\r\n", 4));
  REQUIRE(out == std::string("$5\r\nhello\r\n$0\r\n\r\n$4\r\na\0\r\n\r\n", 27));
  out.clear();
  AppendBulkHeader(out, 100);
  AppendArrayHeader(out, 3);
  AppendArrayHeader(out, 0);
  REQUIRE(out == "$100\r\n*3\r\n*0\r\n");
}

TEST_CASE("writer: CR and LF cannot break out of a status or error line") {
  std::string out;
  AppendError(out, "ERR unknown command 'x\r\n+OK'");
  REQUIRE(out == "-ERR unknown command 'x  +OK'\r\n");
  out.clear();
  AppendSimple(out, "a\nb");
  REQUIRE(out == "+a b\r\n");
}

TEST_CASE("writer: protocol-dependent encodings") {
  struct Case {
    void (*write)(std::string&, int);
    const char* resp2;
    const char* resp3;
  };
  const std::vector<Case> cases = {
      {[](std::string& o, int p) { AppendNull(o, p); }, "$-1\r\n", "_\r\n"},
      {[](std::string& o, int p) { AppendNullArray(o, p); }, "*-1\r\n", "_\r\n"},
      {[](std::string& o, int p) { AppendMapHeader(o, 2, p); }, "*4\r\n", "%2\r\n"},
      {[](std::string& o, int p) { AppendSetHeader(o, 3, p); }, "*3\r\n", "~3\r\n"},
      {[](std::string& o, int p) { AppendPushHeader(o, 3, p); }, "*3\r\n", ">3\r\n"},
      {[](std::string& o, int p) { AppendBool(o, true, p); }, ":1\r\n", "#t\r\n"},
      {[](std::string& o, int p) { AppendBool(o, false, p); }, ":0\r\n", "#f\r\n"},
      {[](std::string& o, int p) { AppendDouble(o, 1.5, p); }, "$3\r\n1.5\r\n", ",1.5\r\n"},
      {[](std::string& o, int p) { AppendDouble(o, 3.14, p); }, "$18\r\n3.1400000000000001\r\n",
       ",3.1400000000000001\r\n"},
      {[](std::string& o, int p) { AppendDouble(o, -0.0, p); }, "$2\r\n-0\r\n", ",-0\r\n"},
      {[](std::string& o, int p) { AppendDouble(o, 1e22, p); }, "$5\r\n1e+22\r\n", ",1e+22\r\n"},
      {[](std::string& o, int p) { AppendDouble(o, HUGE_VAL, p); }, "$3\r\ninf\r\n", ",inf\r\n"},
      {[](std::string& o, int p) { AppendDouble(o, -HUGE_VAL, p); }, "$4\r\n-inf\r\n", ",-inf\r\n"},
      {[](std::string& o, int p) { AppendDouble(o, std::nan(""), p); }, "$3\r\nnan\r\n",
       ",nan\r\n"},
      {[](std::string& o, int p) { AppendDouble(o, -std::nan(""), p); }, "$3\r\nnan\r\n",
       ",nan\r\n"},
      {[](std::string& o, int p) { AppendVerbatim(o, "Some string", p); }, "$11\r\nSome string\r\n",
       "=15\r\ntxt:Some string\r\n"},
      {[](std::string& o, int p) { AppendVerbatim(o, "", p); }, "$0\r\n\r\n", "=4\r\ntxt:\r\n"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    std::string out2;
    std::string out3;
    cases[i].write(out2, 2);
    cases[i].write(out3, 3);
    REQUIRE(out2 == cases[i].resp2);
    REQUIRE(out3 == cases[i].resp3);
  }
}

TEST_CASE("writer: appends to existing content and reuses capacity") {
  std::string out = "prefix";
  AppendInteger(out, 7);
  REQUIRE(out == "prefix:7\r\n");
  out.clear();
  out.reserve(4096);
  const auto* before = out.data();
  for (int i = 0; i < 100; ++i) AppendBulk(out, "value");
  REQUIRE(out.data() == before);
}

TEST_CASE("writer: commands round-trip through the request parser") {
  std::string out;
  AppendCommand(out, {"SET", "key", std::string_view("v\r\n\0", 4)});
  AppendCommand(out, {"PING"});
  RequestParser p;
  size_t consumed = 0;
  REQUIRE(p.Parse(out.data(), out.size(), &consumed) == ParseStatus::kOk);
  REQUIRE(p.argc() == 3);
  REQUIRE(p.arg(2) == std::string_view("v\r\n\0", 4));
  out.erase(0, consumed);
  REQUIRE(p.Parse(out.data(), out.size(), &consumed) == ParseStatus::kOk);
  REQUIRE((p.argc() == 1 && p.arg(0) == "PING" && consumed == out.size()));
}

TEST_CASE("writer: replies round-trip through ParseReplyTree") {
  for (int proto : {2, 3}) {
    CAPTURE(proto);
    std::string out;
    AppendMapHeader(out, 3, proto);
    AppendBulk(out, "int");
    AppendInteger(out, -99);
    AppendBulk(out, "set");
    AppendSetHeader(out, 2, proto);
    AppendSimple(out, "a");
    AppendNull(out, proto);
    AppendBulk(out, "misc");
    AppendArrayHeader(out, 4);
    AppendDouble(out, 2.5, proto);
    AppendBool(out, true, proto);
    AppendVerbatim(out, "text", proto);
    AppendNullArray(out, proto);
    const auto n = Tree(out);
    REQUIRE(n.size() == 13);
    REQUIRE(n[0].type == (proto == 3 ? ReplyType::kMap : ReplyType::kArray));
    REQUIRE(n[0].count == 6);
    REQUIRE((n[1].str == "int" && n[2].integer == -99));
    REQUIRE(n[4].type == (proto == 3 ? ReplyType::kSet : ReplyType::kArray));
    REQUIRE((n[5].str == "a" && n[6].is_null));
    REQUIRE((n[8].type == ReplyType::kArray && n[8].count == 4));
    REQUIRE(n[9].str == "2.5");
    REQUIRE(n[9].type == (proto == 3 ? ReplyType::kDouble : ReplyType::kBulk));
    REQUIRE(n[10].integer == 1);
    REQUIRE(n[11].str == "text");
    REQUIRE(n[11].type == (proto == 3 ? ReplyType::kVerbatim : ReplyType::kBulk));
    REQUIRE(n[12].is_null);
    REQUIRE(SkipReplySubtree(n, 0) == n.size());
  }
  std::string push;
  AppendPushHeader(push, 2, 3);
  AppendBulk(push, "message");
  AppendError(push, "ERR x");
  const auto n = Tree(push);
  REQUIRE((n[0].type == ReplyType::kPush && n[2].type == ReplyType::kError));
}

TEST_CASE("writer: integers round-trip at every magnitude") {
  std::vector<int64_t> values = {0, std::numeric_limits<int64_t>::min(),
                                 std::numeric_limits<int64_t>::max()};
  for (int64_t p = 1; p < std::numeric_limits<int64_t>::max() / 10; p *= 10) {
    for (int64_t v : {p - 1, p, p + 1}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  for (int64_t v : values) {
    CAPTURE(v);
    std::string out;
    AppendInteger(out, v);
    REQUIRE(out == ":" + std::to_string(v) + "\r\n");
    REQUIRE(Tree(out)[0].integer == v);
  }
}

TEST_CASE("writer: DecimalLength and FormatDecimal") {
  REQUIRE(DecimalLength(0) == 1);
  REQUIRE(DecimalLength(std::numeric_limits<uint64_t>::max()) == 20);
  uint64_t p = 1;
  for (int digits = 1; digits <= 19; ++digits, p *= 10) {
    CAPTURE(digits);
    REQUIRE(DecimalLength(p) == digits);
    REQUIRE(DecimalLength(p * 10 - 1) == digits);
    char buf[20];
    char* first = FormatDecimal(p * 10 - 1, buf + sizeof(buf));
    REQUIRE(std::string(first, buf + sizeof(buf)) == std::to_string(p * 10 - 1));
  }
  char buf[20];
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  char* first = FormatDecimal(max, buf + sizeof(buf));
  REQUIRE(first == buf);
  REQUIRE(std::string(first, 20) == std::to_string(max));
}

}  // namespace
}  // namespace keyfence::protocol
