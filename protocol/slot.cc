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

// Slicing by 4. The table is linear (T[a ^ b] == T[a] ^ T[b]), so 4 bytes
// b0..b3 after a CRC c fold into independent lookups:
//   c' = T4[(c >> 8) ^ b0] ^ T3[(c & 0xff) ^ b1] ^ T2[b2] ^ T[b3]
// where Tk[x] is the CRC of byte x followed by k-1 zero bytes.
constexpr uint16_t Step(uint16_t crc) {  // one zero byte
  return static_cast<uint16_t>((crc << 8) ^ kTable[(crc >> 8) & 0xff]);
}
struct Slices {
  std::array<uint16_t, 256> t2{}, t3{}, t4{};
};
constexpr Slices MakeSlices() {
  Slices s;
  for (int i = 0; i < 256; ++i) {
    s.t2[i] = Step(kTable[i]);
    s.t3[i] = Step(s.t2[i]);
    s.t4[i] = Step(s.t3[i]);
  }
  return s;
}
constexpr Slices kSlices = MakeSlices();

}  // namespace

uint16_t Crc16(const char* buf, size_t len) { return Crc16Update(0, buf, len); }

uint16_t Crc16Update(uint16_t crc, const char* buf, size_t len) {
  const auto* p = reinterpret_cast<const uint8_t*>(buf);
  size_t i = 0;
  for (; i + 4 <= len; i += 4) {
    crc = static_cast<uint16_t>(kSlices.t4[((crc >> 8) ^ p[i]) & 0xff] ^
                                kSlices.t3[(crc ^ p[i + 1]) & 0xff] ^ kSlices.t2[p[i + 2]] ^
                                kTable[p[i + 3]]);
  }
  for (; i < len; ++i) {
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
