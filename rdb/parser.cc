#include "rdb/parser.h"

#include <cstdio>
#include <cstring>
#include <utility>

#include "rdb/codec.h"
#include "rdb/memory.h"

namespace keyfence::rdb {

namespace {

// RDB object types (rdb.h) and opcodes.
enum : uint8_t {
  kTString = 0, kTList = 1, kTSet = 2, kTZset = 3, kTHash = 4, kTZset2 = 5, kTModule = 6,
  kTModule2 = 7, kTHashZipmap = 9, kTListZiplist = 10, kTSetIntset = 11, kTZsetZiplist = 12,
  kTHashZiplist = 13, kTListQuicklist = 14, kTStream = 15, kTHashListpack = 16,
  kTZsetListpack = 17, kTListQuicklist2 = 18, kTStream2 = 19, kTSetListpack = 20, kTStream3 = 21,
};
enum : uint8_t {
  kOpFunction2 = 245, kOpFunction = 246, kOpModuleAux = 247, kOpIdle = 248, kOpFreq = 249,
  kOpAux = 250, kOpResizeDb = 251, kOpExpireMs = 252, kOpExpire = 253, kOpSelectDb = 254,
  kOpEof = 255,
};
constexpr int kMaxVersion = 12;

}  // namespace

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kString: return "string";
    case Type::kList: return "list";
    case Type::kSet: return "set";
    case Type::kZset: return "zset";
    case Type::kHash: return "hash";
    case Type::kStream: return "stream";
    case Type::kModule: return "module";
  }
  return "unknown";
}

// Reads from a byte range; running out sets `short_` (the record is parsed
// again once more bytes came), a malformed value sets `bad_`.
class Cursor {
 public:
  Cursor(std::string_view b, const Limits& l) : b_(b), limits_(l) {}
  size_t pos() const { return pos_; }
  bool ok() const { return !short_ && bad_.empty(); }
  bool short_read() const { return short_; }
  size_t wanted() const { return want_; }
  const std::string& bad() const { return bad_; }
  void Bad(std::string why) {
    if (bad_.empty() && !short_) bad_ = std::move(why);
  }

  bool Take(size_t n, std::string_view* out) {
    if (!ok()) return false;
    if (n > limits_.max_record_bytes) {
      Bad("length " + std::to_string(n) + " over the record limit");
      return false;
    }
    if (b_.size() - pos_ < n) {
      short_ = true;
      want_ = pos_ + n;
      return false;
    }
    *out = b_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  uint8_t Byte() {
    std::string_view v;
    return Take(1, &v) ? static_cast<uint8_t>(v[0]) : 0;
  }
  uint64_t Le(size_t n) {
    std::string_view v;
    if (!Take(n, &v)) return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x |= uint64_t{static_cast<uint8_t>(v[i])} << (8 * i);
    return x;
  }
  uint64_t Be(size_t n) {
    std::string_view v;
    if (!Take(n, &v)) return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x = (x << 8) | static_cast<uint8_t>(v[i]);
    return x;
  }
  // A length; *encoded: the special string encodings (0 int8, 1 int16, 2 int32, 3 LZF).
  uint64_t Length(bool* encoded = nullptr) {
    const uint8_t b = Byte();
    if (encoded != nullptr) *encoded = false;
    switch (b >> 6) {
      case 0: return b & 0x3f;
      case 1: return (uint64_t{b & 0x3fu} << 8) | Byte();
      case 2:
        if (b == 0x80) return Be(4);
        if (b == 0x81) return Be(8);
        Bad("unknown length encoding");
        return 0;
      default:
        if (encoded == nullptr) Bad("an encoded string where a length belongs");
        if (encoded != nullptr) *encoded = true;
        return b & 0x3f;
    }
  }
  uint64_t Count() {
    const uint64_t n = Length();
    if (n <= limits_.max_elements) return n;
    Bad("element count " + std::to_string(n) + " over the limit");
    return 0;
  }
  // A string: its bytes, decompressed into `scratch` if LZF; *len its length.
  bool String(std::string_view* out, std::string& scratch) {
    bool enc = false;
    const uint64_t n = Length(&enc);
    if (!ok()) return false;
    if (!enc) return Take(n, out);
    char digits[24];
    int64_t v = 0;
    switch (n) {
      case 0: v = static_cast<int8_t>(Le(1)); break;
      case 1: v = static_cast<int16_t>(Le(2)); break;
      case 2: v = static_cast<int32_t>(Le(4)); break;
      case 3: {
        const uint64_t clen = Length(), len = Length();
        std::string_view c;
        if (!Take(clen, &c)) return false;
        if (len > limits_.max_record_bytes) return Bad("LZF length over the record limit"), false;
        scratch.clear();
        if (!LzfDecompress(c, len, scratch)) return Bad("corrupt LZF string"), false;
        *out = scratch;
        return true;
      }
      default: return Bad("unknown string encoding"), false;
    }
    if (!ok()) return false;
    const int w = std::snprintf(digits, sizeof digits, "%lld", static_cast<long long>(v));
    scratch.assign(digits, static_cast<size_t>(w));
    *out = scratch;
    return true;
  }
  // A string whose bytes are not needed: its length only (*integer: it was
  // stored int-encoded).
  uint64_t SkipString(bool* integer = nullptr) {
    std::string_view v;
    std::string scratch;
    const size_t at = pos_;
    const bool ok = String(&v, scratch);
    if (integer != nullptr) {
      *integer = ok && (static_cast<uint8_t>(b_[at]) >> 6) == 3 && (b_[at] & 0x3f) < 3;
    }
    return ok ? v.size() : 0;
  }
  void SkipOldDouble() {  // 1-byte length, 253/254/255: nan/+inf/-inf
    const uint8_t n = Byte();
    std::string_view v;
    if (n < 253) Take(n, &v);
  }

 private:
  std::string_view b_;
  const Limits& limits_;
  size_t pos_ = 0;
  bool short_ = false;
  size_t want_ = 0;
  std::string bad_;
};

namespace {

// A module value's opcodes until EOF (0): SINT, UINT, FLOAT, DOUBLE, STRING.
void ReadModuleOpcodes(Cursor& c, KeyInfo& k) {
  for (;;) {
    const uint64_t op = c.Length();
    if (!c.ok() || op == 0) return;
    if (op == 1 || op == 2) {
      c.Length();
    } else if (op == 3) {
      c.Le(4);
    } else if (op == 4) {
      c.Le(8);
    } else if (op == 5) {
      k.payload_bytes += c.SkipString();
    } else {
      return c.Bad("unknown module opcode " + std::to_string(op));
    }
  }
}

// The value of `type`: counts into k. False if the type is unknown.
bool ReadValue(Cursor& c, uint8_t type, KeyInfo& k, uint64_t* modules) {
  std::string scratch;
  std::string_view blob;
  namespace m = memory;
  auto packed = [&](bool (*count)(std::string_view, uint64_t*), uint64_t per, Type t) {
    k.type = t;
    if (!c.String(&blob, scratch)) return;
    uint64_t n = 0;
    if (!count(blob, &n)) return c.Bad("corrupt packed container");
    k.elements = n / per;
    k.payload_bytes = blob.size();
    k.memory = m::kRobj + m::Jemalloc(blob.size());
  };
  switch (type) {
    case kTString: {
      k.type = Type::kString;
      k.elements = 1;
      bool integer = false;
      k.payload_bytes = c.SkipString(&integer);
      k.memory = m::StringValue(k.payload_bytes, integer);
      return true;
    }
    case kTList: case kTSet: case kTHash: case kTZset: case kTZset2: {
      k.type = type == kTList ? Type::kList : type == kTSet ? Type::kSet
             : type == kTHash ? Type::kHash : Type::kZset;
      const uint64_t n = c.Count();
      k.elements = n;
      uint64_t elements_memory = 0;
      for (uint64_t i = 0; i < n && c.ok(); ++i) {
        const uint64_t len = c.SkipString();
        k.payload_bytes += len;
        elements_memory += m::Sds(len) + m::kDictEntry;
        if (type == kTHash) {
          const uint64_t v = c.SkipString();
          k.payload_bytes += v;
          elements_memory += m::Sds(v);
        }
        if (type == kTZset) c.SkipOldDouble();
        if (type == kTZset2) c.Le(8);
        if (type == kTZset || type == kTZset2) elements_memory += m::kSkiplistNode;
      }
      if (type == kTList) {  // loaded as a quicklist of listpacks
        k.memory = m::kRobj + m::kQuicklist + (n / 128 + 1) * m::kQuicklistNode +
                   m::Jemalloc(k.payload_bytes + 2 * n + 7);
      } else {
        k.memory = m::kRobj + m::Dict(n) + elements_memory +
                   (type == kTZset || type == kTZset2 ? m::kZsetHeader + m::Jemalloc(544) : 0);
      }
      return true;
    }
    case kTHashZipmap: packed(ZipmapCount, 1, Type::kHash); return true;
    case kTListZiplist: packed(ZiplistCount, 1, Type::kList); return true;
    case kTZsetZiplist: packed(ZiplistCount, 2, Type::kZset); return true;
    case kTHashZiplist: packed(ZiplistCount, 2, Type::kHash); return true;
    case kTHashListpack: packed(ListpackCount, 2, Type::kHash); return true;
    case kTZsetListpack: packed(ListpackCount, 2, Type::kZset); return true;
    case kTSetListpack: packed(ListpackCount, 1, Type::kSet); return true;
    case kTSetIntset: {
      k.type = Type::kSet;
      if (!c.String(&blob, scratch)) return true;
      uint64_t n = 0;
      uint32_t w = 0;
      if (!IntsetCount(blob, &n, &w)) return c.Bad("corrupt intset"), true;
      k.elements = n;
      k.payload_bytes = blob.size();
      k.memory = m::kRobj + m::Jemalloc(blob.size());
      return true;
    }
    case kTListQuicklist: case kTListQuicklist2: {
      k.type = Type::kList;
      const uint64_t nodes = c.Count();
      k.memory = m::kRobj + m::kQuicklist;
      for (uint64_t i = 0; i < nodes && c.ok(); ++i) {
        const uint64_t container = type == kTListQuicklist2 ? c.Length() : 2;
        if (!c.String(&blob, scratch)) break;
        k.payload_bytes += blob.size();
        k.memory += m::kQuicklistNode + m::Jemalloc(blob.size());
        uint64_t n = 1;  // container 1: one plain element
        if (container == 2 &&
            !(type == kTListQuicklist2 ? ListpackCount(blob, &n) : ZiplistCount(blob, &n))) {
          c.Bad("corrupt quicklist node");
        }
        k.elements += n;
      }
      return true;
    }
    case kTStream: case kTStream2: case kTStream3: {
      k.type = Type::kStream;
      const uint64_t lps = c.Count();
      k.memory = m::kRobj + 48;  // the stream and its rax
      for (uint64_t i = 0; i < lps && c.ok(); ++i) {
        c.SkipString();  // master entry id
        const uint64_t lp = c.SkipString();
        k.payload_bytes += lp;
        k.memory += m::Jemalloc(lp) + 64;  // a rax node per listpack
      }
      k.elements = c.Length();
      c.Length(); c.Length();  // last id
      if (type >= kTStream2) {
        c.Length(); c.Length(); c.Length(); c.Length(); c.Length();  // first, max deleted, added
      }
      const uint64_t groups = c.Count();
      for (uint64_t g = 0; g < groups && c.ok(); ++g) {
        c.SkipString();
        c.Length(); c.Length();
        if (type >= kTStream2) c.Length();  // entries read
        const uint64_t pel = c.Count();
        for (uint64_t i = 0; i < pel && c.ok(); ++i) {
          std::string_view id;
          c.Take(16, &id);
          c.Le(8);
          c.Length();
        }
        const uint64_t consumers = c.Count();
        for (uint64_t i = 0; i < consumers && c.ok(); ++i) {
          c.SkipString();
          c.Le(8);
          if (type >= kTStream3) c.Le(8);
          const uint64_t cpel = c.Count();
          std::string_view id;
          for (uint64_t j = 0; j < cpel && c.ok(); ++j) c.Take(16, &id);
        }
      }
      return true;
    }
    case kTModule2: {  // skipped (and counted): its opcodes until EOF (0)
      k.type = Type::kModule;
      c.Length();  // module id
      ReadModuleOpcodes(c, k);
      ++*modules;
      return true;
    }
    default: return false;
  }
}

}  // namespace

RdbParser::RdbParser(RdbSink& sink, Limits limits) : sink_(sink), limits_(limits) {}

void RdbParser::Fail(std::string why) {
  state_ = State::kFailed;
  error_ = "rdb: offset " + std::to_string(consumed_) + ": " + std::move(why);
}

bool RdbParser::Feed(std::string_view data) {
  if (state_ == State::kFailed) return false;
  if (state_ == State::kDone) return true;
  buf_.append(data);
  size_t pos = 0;
  while (state_ != State::kDone && state_ != State::kFailed) {
    if (buf_.size() - pos < need_) break;  // waiting for the rest of a record
    std::string_view rest(buf_.data() + pos, buf_.size() - pos);
    if (state_ == State::kHeader) {
      if (rest.size() < 9) break;
      if (rest.substr(0, 5) != "REDIS") return Fail("not an RDB stream (no REDIS header)"), false;
      int v = 0;
      for (char ch : rest.substr(5, 4)) {
        if (ch < '0' || ch > '9') return Fail("bad RDB version"), false;
        v = v * 10 + (ch - '0');
      }
      if (v < 1 || v > kMaxVersion) return Fail("RDB version " + std::to_string(v) + " unknown"), false;
      version_ = v;
      crc_ = Crc64(crc_, rest.substr(0, 9));
      consumed_ += 9;
      pos += 9;
      state_ = State::kBody;
      continue;
    }
    if (state_ == State::kChecksum) {
      if (version_ < 5) {
        state_ = State::kDone;
        break;
      }
      if (rest.size() < 8) break;
      uint64_t want = 0;
      for (int i = 7; i >= 0; --i) want = (want << 8) | static_cast<uint8_t>(rest[i]);
      if (want != 0 && want != crc_) return Fail("CRC64 mismatch"), false;  // 0: not computed
      consumed_ += 8;
      pos += 8;
      state_ = State::kDone;
      break;
    }
    // One record.
    const size_t before = pos;
    Cursor c(rest, limits_);
    const uint8_t op = c.Byte();
    bool record_is_key = false;
    KeyInfo k;
    std::string key_scratch;
    if (c.ok()) {
      switch (op) {
        case kOpEof: state_ = State::kChecksum; break;
        case kOpSelectDb: db_ = c.Length(); break;
        case kOpResizeDb: c.Length(); c.Length(); break;
        case kOpExpireMs: expire_ms_ = static_cast<int64_t>(c.Le(8)); break;
        case kOpExpire: expire_ms_ = static_cast<int64_t>(c.Le(4)) * 1000; break;
        case kOpIdle: idle_s_ = static_cast<int64_t>(c.Length()); break;
        case kOpFreq: freq_ = c.Byte(); break;
        case kOpAux: {
          std::string_view name, value;
          std::string s1, s2;
          if (c.String(&name, s1) && c.String(&value, s2)) sink_.OnAux(name, value);
          break;
        }
        case kOpFunction2: {
          std::string_view code;
          std::string s;
          if (c.String(&code, s)) sink_.OnFunction(code);
          break;
        }
        case kOpFunction: c.Bad("pre-release FUNCTION opcode (Redis 7.0 RC) is not read"); break;
        case kOpModuleAux: {  // module id, when-opcode, when, then the module's opcodes
          KeyInfo aux;
          c.Length();
          c.Length();
          c.Length();
          ReadModuleOpcodes(c, aux);
          ++modules_;
          break;
        }
        default: {
          record_is_key = true;
          k.rdb_type = op;
          k.db = db_;
          if (!c.String(&k.key, key_scratch)) break;
          if (!ReadValue(c, op, k, &modules_)) c.Bad("unknown object type " + std::to_string(op));
        }
      }
    }
    if (c.short_read()) {
      need_ = c.wanted();
      if (need_ > limits_.max_record_bytes) return Fail("record over the record limit"), false;
      break;
    }
    if (!c.bad().empty()) return Fail(c.bad()), false;
    need_ = 0;
    const std::string_view record = rest.substr(0, c.pos());
    crc_ = Crc64(crc_, record);
    consumed_ += record.size();
    pos = before + record.size();
    if (record_is_key) {
      k.record_bytes = record.size();
      if (k.type == Type::kModule) k.memory = memory::kRobj + k.payload_bytes;
      k.memory += memory::KeyOverhead(k.key.size());
      k.expire_ms = expire_ms_;
      k.idle_s = idle_s_;
      k.freq = freq_;
      ++keys_;
      sink_.OnKey(k);
      expire_ms_ = idle_s_ = -1;
      freq_ = -1;
    }
  }
  buf_.erase(0, pos);
  return state_ != State::kFailed;
}

}  // namespace keyfence::rdb
