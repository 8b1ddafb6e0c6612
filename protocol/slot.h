// Redis Cluster key slots: CRC16-CCITT (XMODEM) mod 16384, with hash tags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keyfence::protocol {

constexpr int kNumSlots = 16384;

uint16_t Crc16(const char* buf, size_t len);
// Continues a CRC16 over more bytes: Crc16(a+b) == Crc16Update(Crc16(a), b).
uint16_t Crc16Update(uint16_t crc, const char* buf, size_t len);

// The part of a key that is hashed: the text between the first '{' and the
// next '}', when not empty; otherwise the whole key.
std::string_view HashPart(std::string_view key);

inline uint16_t KeySlot(std::string_view key) {
  std::string_view h = HashPart(key);
  return Crc16(h.data(), h.size()) & (kNumSlots - 1);
}

}  // namespace keyfence::protocol
