// tenancy::WriteGrowth: the growth a write names (SETBIT, SETRANGE, BITFIELD
// offsets) and the writes whose size the server computes.
#include <catch2/catch.hpp>

#include <string_view>
#include <vector>

#include "tenancy/growth.h"

namespace keyfence::tenancy {
namespace {

Growth Of(std::vector<std::string_view> args) { return WriteGrowth(args); }

TEST_CASE("growth: offsets named by the command") {
  CHECK(Of({"SETBIT", "k", "4294967295", "1"}).bytes == 536870912);
  CHECK(Of({"setbit", "k", "7", "1"}).bytes == 1);
  CHECK(Of({"SETRANGE", "k", "1000000", "abc"}).bytes == 1000003);
  CHECK(Of({"BITFIELD", "k", "SET", "u8", "#1000", "1"}).bytes == 1001);
  CHECK(Of({"BITFIELD", "k", "GET", "u8", "99999999", "INCRBY", "i16", "800", "1"}).bytes == 102);
  CHECK(Of({"BITFIELD", "k", "GET", "u8", "99999999"}).bytes == 0);  // reads grow nothing
  CHECK(Of({"SETBIT", "k", "not-a-number", "1"}).bytes == 1);        // Redis refuses it anyway
}

TEST_CASE("growth: computed writes, and plain ones") {
  for (std::string_view c : {"SUNIONSTORE", "copy", "Sort", "BITOP", "RESTORE", "EVAL", "FCALL"}) {
    INFO(c);
    CHECK(Of({c, "a", "b"}).computed);
  }
  const Growth set = Of({"SET", "k", "v"});
  CHECK((set.bytes == 0 && !set.computed));
  CHECK(Of({}).bytes == 0);
}

}  // namespace
}  // namespace keyfence::tenancy
