// CRC16-CCITT (XMODEM: poly 0x1021, init 0, no reflection), the checksum Redis
// Cluster uses (crc16.c). The table is computed at compile time and equals the
// one in Redis's crc16.c.
#include "protocol/slot.h"

#include <array>
#include <cstring>

namespace keyfence::protocol {
namespace {

constexpr std::array<uint16_t, 256> MakeTable() {
  std::array<uint16_t, 256> t{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
    t[i] = crc;
  }
  return t;
}

constexpr std::array<uint16_t, 256> kTable = MakeTable();
// Spot checks against Redis crc16.c's literal table.
static_assert(kTable[1] == 0x1021 && kTable[2] == 0x2042 && kTable[255] == 0x1ef0);

}  // namespace

uint16_t Crc16(const char* buf, size_t len) { return Crc16Update(0, buf, len); }

uint16_t Crc16Update(uint16_t crc, const char* buf, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    const uint8_t b = static_cast<uint8_t>(buf[i]);
    crc = static_cast<uint16_t>((crc << 8) ^ kTable[((crc >> 8) ^ b) & 0xff]);
  }
  return crc;
}

// Redis cluster.c keyHashSlot().
std::string_view HashPart(std::string_view key) {
  const void* open = std::memchr(key.data(), '{', key.size());
  if (open == nullptr) return key;
  const size_t s = static_cast<size_t>(static_cast<const char*>(open) - key.data());
  const void* close = std::memchr(key.data() + s + 1, '}', key.size() - s - 1);
  if (close == nullptr) return key;
  const size_t e = static_cast<size_t>(static_cast<const char*>(close) - key.data());
  if (e == s + 1) return key;  // "{}": empty tag, hash the whole key
  return key.substr(s + 1, e - s - 1);
}

}  // namespace keyfence::protocol
