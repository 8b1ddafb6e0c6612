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

// The sliced CRC (4 bytes a step) equals the plain bytewise one for every
// length, alignment and starting CRC.
TEST_CASE("Crc16Update: sliced equals bytewise", "[slot]") {
  auto bytewise = [](uint16_t crc, const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      crc ^= static_cast<uint16_t>(static_cast<uint8_t>(p[i]) << 8);
      for (int b = 0; b < 8; ++b) {
        crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                             : static_cast<uint16_t>(crc << 1);
      }
    }
    return crc;
  };
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 80; ++i) {
    x = x * 1103515245u + 12345u;
    data.push_back(static_cast<char>(x >> 16));
  }
  for (uint16_t start : {uint16_t{0}, uint16_t{1}, uint16_t{0x1234}, uint16_t{0xffff}}) {
    for (size_t off = 0; off < 4; ++off) {
      for (size_t n = 0; n + off <= data.size(); ++n) {
        REQUIRE(keyfence::protocol::Crc16Update(start, data.data() + off, n) ==
                bytewise(start, data.data() + off, n));
      }
    }
  }
}
