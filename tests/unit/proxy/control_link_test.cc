// ControlLink's reply trees (ToControlReply over protocol::ParseReplyTree):
// RESP2 and RESP3 aggregates, nulls, errors, and attributes skipped.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "protocol/reply_parser.h"
#include "proxy/backend/control_link.h"

namespace keyfence::proxy {
namespace {

ControlReply Parse(const std::string& wire) {
  std::vector<protocol::ReplyNode> nodes;
  REQUIRE(protocol::ParseReplyTree(wire, &nodes));
  return ToControlReply(nodes);
}

TEST_CASE("control link: RESP2 replies") {
  const ControlReply r = Parse("*3\r\n$3\r\nfoo\r\n:42\r\n*2\r\n+OK\r\n$-1\r\n");
  REQUIRE(r.is_array());
  REQUIRE(r.elements.size() == 3);
  CHECK(r.elements[0].is_string());
  CHECK(r.elements[0].str == "foo");
  CHECK(r.elements[1].integer == 42);
  CHECK(r.elements[2].elements[0].is_status("OK"));
  CHECK(r.elements[2].elements[1].is_null);
  CHECK(!r.elements[2].elements[1].is_string());
  const ControlReply e = Parse("-NOPERM no\r\n");
  CHECK(e.is_error());
  CHECK(e.str == "NOPERM no");
}

TEST_CASE("control link: RESP3 maps, sets, attributes") {
  const ControlReply m = Parse("%2\r\n+slots\r\n*2\r\n:0\r\n:5\r\n+nodes\r\n~1\r\n=7\r\ntxt:abc\r\n");
  REQUIRE(m.is_array());
  REQUIRE(m.elements.size() == 4);  // key, value, key, value
  CHECK(m.elements[0].str == "slots");
  CHECK(m.elements[1].elements[1].integer == 5);
  CHECK(m.elements[3].elements[0].str == "abc");
  const ControlReply a = Parse("|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n");  // attribute, then the value
  CHECK(a.is_string());
  CHECK(a.str == "v");
  CHECK(Parse("_\r\n").is_null);
}

}  // namespace
}  // namespace keyfence::proxy
