// Shared by the request parser and the reply framer (internal to protocol/).
#pragma once

#include <cstddef>
#include <cstdint>

namespace keyfence::protocol::internal {

// Fast path for a complete line "<digits>\r\n" whose digits start at
// data[from]: 1 to 18 digits without a leading zero (or exactly "0"). Returns
// the offset of the CR and the value, or 0 when the line is anything else
// (incomplete, signed, long, malformed): the general path then decides.
inline size_t FastLineNumber(const char* data, size_t from, size_t len, uint64_t* out) {
  const size_t limit = len - from > 18 ? from + 18 : len;
  size_t i = from;
  uint64_t v = 0;
  while (i < limit) {
    const unsigned d = static_cast<unsigned char>(data[i]) - unsigned{'0'};
    if (d > 9) break;
    v = v * 10 + d;
    ++i;
  }
  if (i == from || i + 1 >= len || data[i] != '\r' || data[i + 1] != '\n') return 0;
  if (data[from] == '0' && i - from > 1) return 0;
  *out = v;
  return i;
}

}  // namespace keyfence::protocol::internal
