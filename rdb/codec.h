// The byte-level pieces of the RDB format that are not RESP: Redis's CRC64
// (Jones polynomial, reflected, as crc64.c computes it), LZF decompression
// (liblzf's format, as Redis stores compressed strings), and the sizes of the
// packed containers Redis serialises as strings (listpack, ziplist, intset,
// zipmap). Pure functions over bytes; no allocation beyond `out`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace keyfence::rdb {

// CRC64 of `data` continuing from `crc` (0 to start): crc64(0, "123456789") ==
// 0xe9c6d914c4b8d9ca.
uint64_t Crc64(uint64_t crc, std::string_view data);

// Decompresses LZF `in` into exactly `out_len` bytes appended to out; false if
// `in` is malformed or does not decompress to exactly out_len bytes.
bool LzfDecompress(std::string_view in, size_t out_len, std::string& out);

// Element counts of packed containers; false if the bytes are malformed.
// Listpack: entries (iterated when the header's count saturates at 65535).
bool ListpackCount(std::string_view lp, uint64_t* n);
// Ziplist: entries (iterated when zllen saturates at 65535).
bool ZiplistCount(std::string_view zl, uint64_t* n);
// Intset: members; *width = bytes per member (2, 4 or 8).
bool IntsetCount(std::string_view is, uint64_t* n, uint32_t* width);
// Zipmap (pre-2.6 small hashes): fields.
bool ZipmapCount(std::string_view zm, uint64_t* n);

}  // namespace keyfence::rdb
