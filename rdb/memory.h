// A model of what Redis 7.0 (jemalloc, 64-bit) allocates for a value, so that
// an RDB key's estimate comes close to `MEMORY USAGE key SAMPLES 0`: object
// headers, sds headers, dict entries and tables, quicklist and skiplist nodes,
// each rounded up to jemalloc's size class. Pure.
#pragma once

#include <cstdint>

namespace keyfence::rdb::memory {

// jemalloc's usable size for a request of n bytes (its size classes).
uint64_t Jemalloc(uint64_t n);
// An sds string of `len` bytes as Redis allocates it (header by length, NUL).
uint64_t Sds(uint64_t len);
// A dict's table for n entries (power-of-two slots of 8 bytes) plus the dict itself.
uint64_t Dict(uint64_t n);

inline constexpr uint64_t kRobj = 16;
inline constexpr uint64_t kDictEntry = 24;
inline constexpr uint64_t kQuicklist = 40;
inline constexpr uint64_t kQuicklistNode = 32;
inline constexpr uint64_t kZsetHeader = 16 + 32;  // zset + zskiplist
inline constexpr uint64_t kSkiplistNode = 48;     // ele, score, backward, ~1.33 levels, rounded

// MEMORY USAGE of a string value of `len` bytes (int-encoded when `integer`).
uint64_t StringValue(uint64_t len, bool integer);
// The key's own part: its sds and its main-dict entry.
uint64_t KeyOverhead(uint64_t key_len);

}  // namespace keyfence::rdb::memory
