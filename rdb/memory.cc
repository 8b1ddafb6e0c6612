#include "rdb/memory.h"

namespace keyfence::rdb::memory {

uint64_t Jemalloc(uint64_t n) {
  if (n <= 8) return 8;
  if (n <= 128) return (n + 15) & ~uint64_t{15};
  // Four classes per doubling: (2^k, 2^(k+1)] in steps of 2^(k-2).
  uint64_t k = 63 - static_cast<uint64_t>(__builtin_clzll(n - 1));  // 2^k < n <= 2^(k+1)
  const uint64_t step = uint64_t{1} << (k - 2);
  return (n + step - 1) & ~(step - 1);
}

uint64_t Sds(uint64_t len) {
  const uint64_t hdr = len < 32 ? 1 : len < 256 ? 3 : len < 65536 ? 5 : len < (1ull << 32) ? 9 : 17;
  return Jemalloc(hdr + len + 1);
}

uint64_t Dict(uint64_t n) {
  uint64_t slots = 4;
  while (slots < n && slots < (uint64_t{1} << 62)) slots <<= 1;
  return 56 + 8 * slots;
}

uint64_t StringValue(uint64_t len, bool integer) {
  if (integer) return kRobj;
  if (len <= 44) return Jemalloc(kRobj + 3 + len + 1);  // embstr: object and sds together
  return kRobj + Sds(len);
}

uint64_t KeyOverhead(uint64_t key_len) { return Sds(key_len) + kDictEntry; }

}  // namespace keyfence::rdb::memory
