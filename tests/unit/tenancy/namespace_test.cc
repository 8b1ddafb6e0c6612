// Tenant namespaces: P+K with the hash-tag rule, its exact inverse, and the
// slot property of DESIGN.md "Namespaces".
#include "tenancy/namespace.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <string_view>

#include "protocol/slot.h"
#include "tenancy_test_util.h"

namespace keyfence::tenancy {
namespace {

using testing::kPrefix;
using namespace std::literals;

std::string Backend(std::string_view key, std::string_view prefix = kPrefix) {
  std::string out;
  AppendBackendKey(out, prefix, key);
  CHECK(out.size() == BackendKeyLength(prefix, key));
  return out;
}

// Client key of a backend name, or "<foreign>" (and nothing appended) if outside.
std::string Client(std::string_view backend, std::string_view prefix = kPrefix) {
  std::string out = "keep";
  if (!AppendClientKey(out, prefix, backend)) {
    CHECK(out == "keep");
    return "<foreign>";
  }
  return out.substr(4);
}

std::string ClientChannel(std::string_view backend, std::string_view prefix = kPrefix) {
  std::string out;
  if (!AppendClientChannel(out, prefix, backend)) {
    CHECK(out.empty());
    return "<foreign>";
  }
  return out;
}

// Random keys over a small alphabet rich in braces, colons and bytes that
// need care (NUL, CR, LF, 0xff), sometimes embedding the prefix text itself.
std::string RandomKey(std::mt19937& rng) {
  static constexpr std::string_view kAlphabet = "{}{}{}ab:@\0\r\n\xff"sv;
  std::uniform_int_distribution<int> len(0, 12);
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  std::uniform_int_distribution<int> coin(0, 9);
  std::string k;
  for (int n = len(rng); n > 0; --n) {
    if (coin(rng) == 0) {
      k.append(kPrefix);
    } else {
      k.push_back(kAlphabet[pick(rng)]);
    }
  }
  return k;
}

TEST_CASE("namespace: a key without a hash tag gets the prefix in front") {
  CHECK(Backend("key") == "shop@orders:key");
  CHECK(Backend("user:42:cart") == "shop@orders:user:42:cart");
  CHECK(Backend("") == "shop@orders:");
  CHECK(HashTagInsertPos("key") == std::string_view::npos);
}

TEST_CASE("namespace: hash tag gets the prefix inside the braces") {
  CHECK(Backend("user:{42}:cart") == "shop@orders:user:{shop@orders:42}:cart");
  CHECK(Backend("{42}") == "shop@orders:{shop@orders:42}");
  CHECK(HashTagInsertPos("user:{42}:cart") == 6);
  // Only the first '{' and the next '}' count.
  CHECK(Backend("{a}{b}") == "shop@orders:{shop@orders:a}{b}");
  CHECK(Backend("{{x}}") == "shop@orders:{shop@orders:{x}}");
  CHECK(Backend("}{x}") == "shop@orders:}{shop@orders:x}");
}

TEST_CASE("namespace: empty or unclosed hash tags are not tags") {
  CHECK(Backend("a{}b") == "shop@orders:a{}b");
  CHECK(Backend("{}") == "shop@orders:{}");
  CHECK(Backend("a{}b{c}") == "shop@orders:a{}b{c}");  // first '{' has an empty tag
  CHECK(Backend("{abc") == "shop@orders:{abc");
  CHECK(Backend("abc}") == "shop@orders:abc}");
  CHECK(HashTagInsertPos("a{}b") == std::string_view::npos);
  CHECK(HashTagInsertPos("{abc") == std::string_view::npos);
}

TEST_CASE("namespace: a key that contains the prefix text is still just a key") {
  CHECK(Backend("shop@orders:x") == "shop@orders:shop@orders:x");
  CHECK(Client("shop@orders:shop@orders:x") == "shop@orders:x");
  CHECK(Backend("a{shop@orders:b}") == "shop@orders:a{shop@orders:shop@orders:b}");
  CHECK(Client("shop@orders:a{shop@orders:shop@orders:b}") == "a{shop@orders:b}");
  CHECK(Backend("{shop@orders:}") == "shop@orders:{shop@orders:shop@orders:}");
  CHECK(Client("shop@orders:{shop@orders:shop@orders:}") == "{shop@orders:}");
}

TEST_CASE("namespace: binary keys are copied byte for byte") {
  const std::string key = "a\0b\r\n{\xff\0}\x80"s;
  const std::string backend = "shop@orders:a\0b\r\n{shop@orders:\xff\0}\x80"s;
  CHECK(Backend(key) == backend);
  CHECK(Client(backend) == key);
}

TEST_CASE("namespace: AppendBackendKey and AppendClientKey append to the buffer") {
  std::string out = "$";
  AppendBackendKey(out, kPrefix, "{t}k");
  CHECK(out == "$shop@orders:{shop@orders:t}k");
  out = "#";
  CHECK(AppendClientKey(out, kPrefix, "shop@orders:{shop@orders:t}k"));
  CHECK(out == "#{t}k");
}

TEST_CASE("namespace: stripping is the exact inverse of the rewrite") {
  CHECK(Client("shop@orders:key") == "key");
  CHECK(Client("shop@orders:user:{shop@orders:42}:cart") == "user:{42}:cart");
  CHECK(Client("shop@orders:a{}b") == "a{}b");
  CHECK(Client("shop@orders:{abc") == "{abc");
  CHECK(Client("shop@orders:") == "");

  std::mt19937 rng(20240611);
  for (int i = 0; i < 20000; ++i) {
    const std::string k = RandomKey(rng);
    const std::string b = Backend(k);
    INFO("key " << ::Catch::Detail::stringify(k));
    REQUIRE(b.compare(0, kPrefix.size(), kPrefix) == 0);
    REQUIRE(Client(b) == k);
  }
}

TEST_CASE("namespace: names outside the namespace are rejected") {
  CHECK(Client("shop@billing:key") == "<foreign>");
  CHECK(Client("shop@orders2:key") == "<foreign>");
  CHECK(Client("other@orders:key") == "<foreign>");
  CHECK(Client("key") == "<foreign>");
  CHECK(Client("") == "<foreign>");
  CHECK(Client("shop@orders") == "<foreign>");
  CHECK(Client("SHOP@ORDERS:key") == "<foreign>");
  CHECK(Client("{shop@orders:x}") == "<foreign>");
  // Another tenant's tagged key, even one whose tag holds our prefix.
  CHECK(Client("shop@billing:{shop@orders:x}") == "<foreign>");
  CHECK(Client("shop@orders:x", "shop@billing:") == "<foreign>");
}

TEST_CASE("namespace: channels are P+C without the hash-tag rule") {
  std::string out;
  AppendBackendChannel(out, kPrefix, "news:{eu}");
  CHECK(out == "shop@orders:news:{eu}");
  CHECK(ClientChannel("shop@orders:news:{eu}") == "news:{eu}");
  CHECK(ClientChannel("shop@orders:") == "");
  CHECK(ClientChannel("shop@billing:news") == "<foreign>");
  CHECK(ClientChannel("news") == "<foreign>");
  CHECK(ClientChannel("shop@orders") == "<foreign>");
}

TEST_CASE("namespace: the backend slot is CRC16(P + hashpart(K))") {
  auto slot_of = [](std::string_view s) {
    return static_cast<uint16_t>(protocol::Crc16(s.data(), s.size()) & (protocol::kNumSlots - 1));
  };
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const std::string k = RandomKey(rng);
    INFO("key " << ::Catch::Detail::stringify(k));
    const std::string hashed = std::string(kPrefix) + std::string(protocol::HashPart(k));
    REQUIRE(protocol::KeySlot(Backend(k)) == slot_of(hashed));
  }
}

TEST_CASE("namespace: keys that share a slot directly share one through keyfence") {
  // DESIGN.md: `lock` and `x:{lock}` stay together.
  CHECK(protocol::HashPart("lock") == protocol::HashPart("x:{lock}"));
  CHECK(protocol::KeySlot(Backend("lock")) == protocol::KeySlot(Backend("x:{lock}")));
  CHECK(protocol::KeySlot(Backend("{user1}:a")) == protocol::KeySlot(Backend("b{user1}")));
  CHECK(protocol::KeySlot(Backend("user1")) == protocol::KeySlot(Backend("c:{user1}:d{e}")));

  // Generated pairs: a tag-free hash part h, used bare and as a tag.
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> len(1, 10);
  std::uniform_int_distribution<int> ch('a', 'z');
  auto word = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(ch(rng)));
    return s;
  };
  for (int i = 0; i < 5000; ++i) {
    const std::string h = word(len(rng));
    const std::string tagged = word(len(rng) - 1) + "{" + h + "}" + word(len(rng) - 1) + "}{";
    INFO(h << " / " << tagged);
    REQUIRE(protocol::HashPart(tagged) == h);
    REQUIRE(protocol::KeySlot(Backend(h)) == protocol::KeySlot(Backend(tagged)));
    // And through another tenant, the same pair is together too (elsewhere).
    REQUIRE(protocol::KeySlot(Backend(h, "shop@billing:")) ==
            protocol::KeySlot(Backend(tagged, "shop@billing:")));
  }
}

TEST_CASE("namespace: keys in different slots directly stay apart when hash parts differ") {
  // Different hash parts hash differently through keyfence exactly as often as
  // CRC16 of different strings collides: spot-check a few fixed pairs.
  CHECK(protocol::KeySlot(Backend("{a}x")) != protocol::KeySlot(Backend("{b}x")));
  CHECK(protocol::KeySlot(Backend("{a}1")) == protocol::KeySlot(Backend("{a}2")));
}

}  // namespace
}  // namespace keyfence::tenancy
