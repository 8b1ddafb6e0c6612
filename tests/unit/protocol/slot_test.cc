// CRC16 (XMODEM) and Redis Cluster key slots with hash tags.
#include "protocol/slot.h"

#include <catch2/catch.hpp>
#include <string>

namespace keyfence::protocol {
namespace {

using namespace std::string_literals;

TEST_CASE("slot: CRC16 matches the XMODEM check value and Redis") {
  REQUIRE(Crc16("123456789", 9) == 0x31C3);
  REQUIRE(Crc16("", 0) == 0);
  REQUIRE(Crc16("foo", 3) == 0xAF96);
  REQUIRE(Crc16("\xff\x00\x80", 3) == 0x5EEB);
}

TEST_CASE("slot: KeySlot values from Redis CLUSTER KEYSLOT") {
  REQUIRE(KeySlot("123456789") == (0x31C3 & 16383));
  REQUIRE(KeySlot("foo") == 12182);
  REQUIRE(KeySlot("bar") == 5061);
  REQUIRE(KeySlot("hello") == 866);
  REQUIRE(KeySlot("somekey") == 11058);
  REQUIRE(KeySlot("foo{hash_tag}") == 2515);
  REQUIRE(KeySlot("{hash_tag}") == 2515);
  REQUIRE(KeySlot("") == 0);
}

TEST_CASE("slot: hash tags") {
  REQUIRE(KeySlot("{user1000}.following") == KeySlot("{user1000}.followers"));
  REQUIRE(KeySlot("{user1000}.following") == KeySlot("user1000"));
  REQUIRE(KeySlot("{user1000}.following") == 3443);
  REQUIRE(HashPart("foo{}{bar}") == "foo{}{bar}");  // empty first tag: whole key
  REQUIRE(HashPart("foo{{bar}}zap") == "{bar");
  REQUIRE(HashPart("foo{bar}{zap}") == "bar");
  REQUIRE(HashPart("{}") == "{}");
  REQUIRE(HashPart("{") == "{");
  REQUIRE(HashPart("}{") == "}{");
  REQUIRE(HashPart("a{b") == "a{b");
  REQUIRE(HashPart("a{b}") == "b");
  REQUIRE(HashPart("user:{42}:cart") == "42");
  REQUIRE(HashPart("plain") == "plain");
  REQUIRE(HashPart("{\0}"s) == "\0"s);
  // Views point into the key.
  const std::string key = "x{tag}y";
  REQUIRE(HashPart(key).data() == key.data() + 2);
}

TEST_CASE("slot: every slot is in range") {
  for (int i = 0; i < 100000; ++i) {
    REQUIRE(KeySlot("key:" + std::to_string(i)) < kNumSlots);
  }
}

}  // namespace
}  // namespace keyfence::protocol
