#include "rdb/codec.h"

#include <array>

namespace keyfence::rdb {

namespace {

// Reflected table for the Jones polynomial 0xad93d23594c935a9.
constexpr std::array<uint64_t, 256> MakeTable() {
  constexpr uint64_t kPoly = 0x95ac9329ac4bc9b5ULL;  // 0xad93d23594c935a9, bit-reversed
  std::array<uint64_t, 256> t{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint64_t, 256> kCrcTable = MakeTable();

uint32_t Le16(const unsigned char* p) { return p[0] | (uint32_t{p[1]} << 8); }
uint32_t Le32(const unsigned char* p) {
  return p[0] | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// Length of the listpack entry at p (encoding + data + backlen), 0 if malformed.
size_t ListpackEntryLen(const unsigned char* p, size_t avail) {
  if (avail == 0) return 0;
  const unsigned char b = p[0];
  size_t len = 0;  // encoding + data
  if ((b & 0x80) == 0) {
    len = 1;
  } else if ((b & 0xc0) == 0x80) {
    len = 1 + (b & 0x3f);
  } else if ((b & 0xe0) == 0xc0) {
    len = 2;
  } else if ((b & 0xf0) == 0xe0) {
    if (avail < 2) return 0;
    len = 2 + ((size_t{b & 0x0fu} << 8) | p[1]);
  } else if (b == 0xf0) {
    if (avail < 5) return 0;
    len = 5 + Le32(p + 1);
  } else if (b == 0xf1) {
    len = 3;
  } else if (b == 0xf2) {
    len = 4;
  } else if (b == 0xf3) {
    len = 5;
  } else if (b == 0xf4) {
    len = 9;
  } else {
    return 0;  // 0xff (end) or unused encodings
  }
  const size_t back = len < 128 ? 1 : len < 16384 ? 2 : len < 2097152 ? 3 : len < 268435456 ? 4 : 5;
  const size_t total = len + back;
  return total <= avail ? total : 0;
}

// Length of the ziplist entry at p (prevlen + encoding + data), 0 if malformed.
size_t ZiplistEntryLen(const unsigned char* p, size_t avail) {
  if (avail < 2) return 0;
  size_t pos = p[0] < 254 ? 1 : 5;
  if (pos >= avail) return 0;
  const unsigned char e = p[pos];
  size_t data = 0, hdr = 1;
  switch (e >> 6) {
    case 0: data = e & 0x3f; break;
    case 1:
      if (pos + 1 >= avail) return 0;
      hdr = 2;
      data = (size_t{e & 0x3fu} << 8) | p[pos + 1];
      break;
    case 2:
      if (pos + 4 >= avail) return 0;
      hdr = 5;
      data = (size_t{p[pos + 1]} << 24) | (size_t{p[pos + 2]} << 16) | (size_t{p[pos + 3]} << 8) |
             p[pos + 4];
      break;
    default:
      switch (e) {
        case 0xc0: data = 2; break;
        case 0xd0: data = 4; break;
        case 0xe0: data = 8; break;
        case 0xf0: data = 3; break;
        case 0xfe: data = 1; break;
        case 0xff: return 0;
        default:
          if ((e & 0xf0) != 0xf0) return 0;
          data = 0;  // 4-bit immediate
      }
  }
  const size_t total = pos + hdr + data;
  return total <= avail ? total : 0;
}

}  // namespace

uint64_t Crc64(uint64_t crc, std::string_view data) {
  for (unsigned char c : data) crc = kCrcTable[(crc ^ c) & 0xff] ^ (crc >> 8);
  return crc;
}

bool LzfDecompress(std::string_view in, size_t out_len, std::string& out) {
  const size_t base = out.size();
  out.resize(base + out_len);
  unsigned char* op = reinterpret_cast<unsigned char*>(out.data()) + base;
  unsigned char* const oend = op + out_len;
  unsigned char* const ostart = op;
  const unsigned char* ip = reinterpret_cast<const unsigned char*>(in.data());
  const unsigned char* const iend = ip + in.size();
  while (ip < iend) {
    unsigned ctrl = *ip++;
    if (ctrl < 32) {  // a literal run of ctrl + 1 bytes
      const size_t n = ctrl + 1;
      if (static_cast<size_t>(oend - op) < n || static_cast<size_t>(iend - ip) < n) break;
      for (size_t i = 0; i < n; ++i) *op++ = *ip++;
      continue;
    }
    size_t len = ctrl >> 5;  // a back reference
    if (len == 7) {
      if (ip >= iend) break;
      len += *ip++;
    }
    if (ip >= iend) break;
    const size_t back = ((ctrl & 0x1f) << 8) + *ip++ + 1;
    len += 2;
    if (back > static_cast<size_t>(op - ostart) || static_cast<size_t>(oend - op) < len) break;
    const unsigned char* ref = op - back;
    for (size_t i = 0; i < len; ++i) *op++ = *ref++;  // may overlap: byte by byte
  }
  const bool ok = ip == iend && op == oend;
  if (!ok) out.resize(base);
  return ok;
}

bool ListpackCount(std::string_view lp, uint64_t* n) {
  const auto* p = reinterpret_cast<const unsigned char*>(lp.data());
  if (lp.size() < 7 || Le32(p) != lp.size() || p[lp.size() - 1] != 0xff) return false;
  const uint32_t header = Le16(p + 4);
  if (header != 65535) {
    *n = header;
    return true;
  }
  uint64_t count = 0;
  size_t pos = 6;
  while (pos < lp.size() - 1) {
    const size_t len = ListpackEntryLen(p + pos, lp.size() - 1 - pos);
    if (len == 0) return false;
    pos += len;
    ++count;
  }
  *n = count;
  return pos == lp.size() - 1;
}

bool ZiplistCount(std::string_view zl, uint64_t* n) {
  const auto* p = reinterpret_cast<const unsigned char*>(zl.data());
  if (zl.size() < 11 || Le32(p) != zl.size() || p[zl.size() - 1] != 0xff) return false;
  const uint32_t header = Le16(p + 8);
  if (header != 65535) {
    *n = header;
    return true;
  }
  uint64_t count = 0;
  size_t pos = 10;
  while (pos < zl.size() - 1) {
    const size_t len = ZiplistEntryLen(p + pos, zl.size() - 1 - pos);
    if (len == 0) return false;
    pos += len;
    ++count;
  }
  *n = count;
  return pos == zl.size() - 1;
}

bool IntsetCount(std::string_view is, uint64_t* n, uint32_t* width) {
  const auto* p = reinterpret_cast<const unsigned char*>(is.data());
  if (is.size() < 8) return false;
  const uint32_t w = Le32(p), len = Le32(p + 4);
  if ((w != 2 && w != 4 && w != 8) || is.size() != 8 + uint64_t{w} * len) return false;
  *n = len;
  *width = w;
  return true;
}

bool ZipmapCount(std::string_view zm, uint64_t* n) {
  const auto* p = reinterpret_cast<const unsigned char*>(zm.data());
  if (zm.size() < 2 || p[zm.size() - 1] != 0xff) return false;
  // Entries: <len>key<len><free>value..., lengths 1 byte (< 254) or 254 + 4 bytes.
  size_t pos = 1;
  uint64_t fields = 0;
  auto length = [&](size_t* out) {
    if (pos >= zm.size()) return false;
    if (p[pos] < 254) {
      *out = p[pos++];
      return true;
    }
    if (p[pos] != 254 || pos + 5 > zm.size()) return false;
    *out = Le32(p + pos + 1);
    pos += 5;
    return true;
  };
  while (pos < zm.size() && p[pos] != 0xff) {
    size_t klen = 0, vlen = 0;
    if (!length(&klen) || pos + klen > zm.size()) return false;
    pos += klen;
    if (!length(&vlen) || pos >= zm.size()) return false;
    const size_t free = p[pos++];
    if (pos + vlen + free > zm.size()) return false;
    pos += vlen + free;
    ++fields;
  }
  *n = fields;
  return pos == zm.size() - 1;
}

}  // namespace keyfence::rdb
