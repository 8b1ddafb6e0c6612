#include "rdb/parser.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "rdb/codec.h"

namespace keyfence::rdb {
namespace {

// Builds RDB bytes the way rdb.c writes them.
struct Rdb {
  std::string b = "REDIS0010";
  Rdb& Byte(uint8_t v) { b.push_back(static_cast<char>(v)); return *this; }
  Rdb& Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Rdb& Len(uint64_t n) {
    if (n < 64) return Byte(static_cast<uint8_t>(n));
    if (n < 16384) return Byte(static_cast<uint8_t>(0x40 | (n >> 8))).Byte(n & 0xff);
    Byte(0x80);
    for (int i = 3; i >= 0; --i) Byte((n >> (8 * i)) & 0xff);
    return *this;
  }
  Rdb& Str(std::string_view s) { Len(s.size()); b.append(s); return *this; }
  Rdb& Finish(bool good_crc = true) {
    Byte(0xff);
    uint64_t crc = Crc64(0, b);
    if (!good_crc) crc ^= 1;
    return Le(crc, 8);
  }
};

// A listpack of small strings and 7-bit integers.
std::string Listpack(const std::vector<std::string>& items) {
  std::string body;
  for (const std::string& s : items) {
    bool small_int = !s.empty() && s.size() <= 2 && std::all_of(s.begin(), s.end(), ::isdigit) &&
                     std::stoi(s) < 128 && (s == "0" || s[0] != '0');
    if (small_int) {
      body.push_back(static_cast<char>(std::stoi(s)));
      body.push_back(1);
    } else {
      REQUIRE(s.size() < 64);
      body.push_back(static_cast<char>(0x80 | s.size()));
      body.append(s);
      body.push_back(static_cast<char>(1 + s.size()));
    }
  }
  std::string lp;
  const uint32_t total = static_cast<uint32_t>(6 + body.size() + 1);
  for (int i = 0; i < 4; ++i) lp.push_back(static_cast<char>((total >> (8 * i)) & 0xff));
  lp.push_back(static_cast<char>(items.size() & 0xff));
  lp.push_back(static_cast<char>(items.size() >> 8));
  lp += body;
  lp.push_back(static_cast<char>(0xff));
  return lp;
}

struct Collect : RdbSink {
  struct Key {
    uint64_t db;
    std::string key;
    Type type;
    uint64_t elements, payload;
    int64_t expire_ms, idle;
    int freq;
  };
  std::vector<Key> keys;
  std::vector<std::pair<std::string, std::string>> aux;
  void OnKey(const KeyInfo& k) override {
    keys.push_back({k.db, std::string(k.key), k.type, k.elements, k.payload_bytes, k.expire_ms,
                    k.idle_s, k.freq});
  }
  void OnAux(std::string_view n, std::string_view v) override {
    aux.emplace_back(std::string(n), std::string(v));
  }
};

std::string Sample() {
  Rdb r;
  r.Byte(250).Str("redis-ver").Str("7.0.15");
  r.Byte(254).Len(0).Byte(251).Len(8).Len(1);
  r.Byte(252).Le(1'900'000'000'000, 8).Byte(0).Str("s:ttl").Str("value");
  r.Byte(0).Str("s:int").Byte(0xc1).Le(12345, 2);  // int16-encoded string
  // LZF string "aaaaaaaaaa": literal 'a', then a back reference of 9
  r.Byte(248).Len(77).Byte(0).Str("s:lzf").Byte(0xc3).Len(5).Len(10);
  r.b += std::string("\x00" "a" "\xe0\x00\x00", 5);
  r.Byte(18).Str("l:qlist").Len(2).Len(2).Str(Listpack({"a", "bb", "7"})).Len(1).Str("plain");
  std::string intset("\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00", 14);
  r.Byte(11).Str("set:int").Str(intset);
  r.Byte(16).Str("h:lp").Str(Listpack({"f1", "v1", "f2", "v2"}));
  r.Byte(17).Str("z:lp").Str(Listpack({"m1", "1", "m2", "2"}));
  r.Byte(249).Byte(5).Byte(5).Str("z:skip").Len(2).Str("a").Le(0, 8).Str("b").Le(0, 8);
  r.Byte(254).Len(3).Byte(0).Str("in:db3").Str("x");
  return r.Finish().b;
}

}  // namespace

TEST_CASE("rdb codec: CRC64 as Redis computes it, and LZF") {
  CHECK(Crc64(0, "123456789") == 0xe9c6d914c4b8d9caULL);
  std::string out;
  CHECK(LzfDecompress(std::string("\x00" "a" "\xe0\x00\x00", 5), 10, out));
  CHECK(out == std::string(10, 'a'));
  out.clear();
  CHECK_FALSE(LzfDecompress(std::string("\x05" "ab", 3), 6, out));  // literal runs past the input
  CHECK(out.empty());
  uint64_t n = 0;
  CHECK(ListpackCount(Listpack({"a", "b", "c"}), &n));
  CHECK(n == 3);
  CHECK_FALSE(ListpackCount("\x07\x00\x00\x00\x01\x00\x00", &n));  // no end byte
}

TEST_CASE("rdb parser: every record of a stream, fed at once or byte by byte") {
  const std::string rdb = Sample();
  for (size_t chunk : {rdb.size(), size_t{1}, size_t{7}}) {
    Collect sink;
    RdbParser p(sink);
    for (size_t i = 0; i < rdb.size(); i += chunk) {
      REQUIRE(p.Feed(std::string_view(rdb).substr(i, chunk)));
    }
    INFO("chunk " << chunk << ": " << p.error());
    REQUIRE(p.done());
    CHECK(p.version() == 10);
    CHECK(p.offset() == rdb.size());
    REQUIRE(sink.aux.size() == 1);
    CHECK(sink.aux[0].second == "7.0.15");
    REQUIRE(sink.keys.size() == 9);
    const auto& k = sink.keys;
    CHECK(k[0].key == "s:ttl");
    CHECK(k[0].expire_ms == 1'900'000'000'000);
    CHECK(k[0].payload == 5);
    CHECK(k[1].key == "s:int");
    CHECK(k[1].expire_ms == -1);  // the TTL belonged to the key before
    CHECK(k[1].payload == 5);     // "12345"
    CHECK(k[2].key == "s:lzf");
    CHECK(k[2].payload == 10);
    CHECK(k[2].idle == 77);
    CHECK((k[3].type == Type::kList && k[3].elements == 4));  // 3 packed + 1 plain
    CHECK((k[4].type == Type::kSet && k[4].elements == 3));
    CHECK((k[5].type == Type::kHash && k[5].elements == 2));
    CHECK((k[6].type == Type::kZset && k[6].elements == 2));
    CHECK((k[7].type == Type::kZset && k[7].elements == 2 && k[7].freq == 5));
    CHECK((k[8].key == "in:db3" && k[8].db == 3));
  }
}

TEST_CASE("rdb parser: a truncated stream waits; corrupt ones fail with the offset") {
  const std::string rdb = Sample();
  {
    Collect sink;
    RdbParser p(sink);
    CHECK(p.Feed(std::string_view(rdb).substr(0, rdb.size() - 3)));
    CHECK_FALSE(p.done());
    CHECK_FALSE(p.failed());
  }
  {
    Rdb bad;
    bad.Byte(0).Str("k").Str("v");
    const std::string b = bad.Finish(false).b;
    Collect sink;
    RdbParser p(sink);
    CHECK_FALSE(p.Feed(b));
    CHECK(p.error().find("CRC64 mismatch") != std::string::npos);
  }
  {
    Collect sink;
    RdbParser p(sink);
    CHECK_FALSE(p.Feed("REDIX0010"));
    CHECK(p.failed());
  }
  {
    Rdb huge;
    huge.Byte(0).Str("k").Len(5'000'000);  // a length past the record limit
    Collect sink;
    RdbParser p(sink, Limits{1 << 20, 1 << 20});
    CHECK_FALSE(p.Feed(huge.b));
    CHECK(p.error().find("limit") != std::string::npos);
    CHECK(p.error().find("offset 9") != std::string::npos);
  }
  {
    Rdb unknown;
    unknown.Byte(99).Str("k");
    Collect sink;
    RdbParser p(sink);
    CHECK_FALSE(p.Feed(unknown.Finish().b));
    CHECK(p.error().find("unknown object type 99") != std::string::npos);
  }
}

}  // namespace keyfence::rdb
