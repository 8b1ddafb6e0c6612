// Hot-key sampling and the Space-Saving top-K, fed exactly as the dispatcher
// feeds them (HotKeys::Observe for every keyed request), with access patterns
// that defeated the old deterministic 1-in-8 sampler; and the big-key table.
#include "proxy/base/hotkeys.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace keyfence::proxy {
namespace {

constexpr double kZ = 4.0;  // the bound's normal quantile (hotkeys.h)

// The documented bound for a key with f true requests in a stream recorded as
// `total` sampled weight into a table of `k` entries.
double Bound(double f, uint64_t total, size_t k) {
  return static_cast<double>(total) / static_cast<double>(k) +
         kZ * std::sqrt(f * (HotKeys::kSampleEvery - 1)) + HotKeys::kSampleEvery;
}

struct Run {
  HotKeys hot;
  std::map<std::string, uint64_t> truth;
  explicit Run(uint64_t seed) : hot(64, seed) {}
  void Request(const std::string& key) {
    hot.Observe(key);
    ++truth[key];
  }
  uint64_t Reported(const std::string& key) const {
    for (auto& [k, c] : hot.Top(64)) {
      if (k == key) return c;
    }
    return 0;
  }
  size_t Rank(const std::string& key) const {
    auto top = hot.Top(64);
    for (size_t i = 0; i < top.size(); ++i) {
      if (top[i].first == key) return i;
    }
    return top.size();
  }
  // Every key's estimate is within the bound; cold keys (seen at most
  // `cold_max` times) are reported with at most one sample per request.
  void CheckAll(uint64_t cold_max) const {
    for (auto& [k, c] : hot.Top(64)) {
      const double f = static_cast<double>(truth.at(k));
      INFO("key " << k << " true " << f << " reported " << c);
      CHECK(std::abs(static_cast<double>(c) - f) <= Bound(f, hot.total(), hot.capacity()));
      if (truth.at(k) <= cold_max) CHECK(c <= truth.at(k) * HotKeys::kSampleEvery);
    }
  }
};

std::string Cold(uint64_t i) { return "cold:" + std::to_string(i); }

}  // namespace

TEST_CASE("the sampler samples about one request in kSampleEvery, with geometric gaps") {
  HotKeys hot(64, 42);
  constexpr int kN = 800000;
  int sampled = 0, even = 0;
  std::vector<int> gaps(64, 0);
  int last = -1;
  for (int i = 0; i < kN; ++i) {
    if (!hot.Sampled()) continue;
    ++sampled;
    if (i % 2 == 0) ++even;
    int gap = i - last;
    last = i;
    if (gap < 64) ++gaps[gap];
  }
  const double expect = static_cast<double>(kN) / HotKeys::kSampleEvery;  // 100,000
  CHECK(std::abs(sampled - expect) < 5 * std::sqrt(expect));
  // No parity preference (the old counter sampled only every 8th position).
  CHECK(std::abs(even - sampled / 2.0) < 5 * std::sqrt(sampled / 4.0));
  // P(gap = g) = p (1-p)^(g-1): the first gaps in the expected proportions.
  const double p = 1.0 / HotKeys::kSampleEvery;
  for (int g = 1; g <= 8; ++g) {
    const double e = sampled * p * std::pow(1 - p, g - 1);
    INFO("gap " << g);
    CHECK(std::abs(gaps[g] - e) < 5 * std::sqrt(e));
  }
}

TEST_CASE("a strictly alternating hot/cold pipeline shows the hot key with its count") {
  for (uint64_t seed : {1u, 2u, 3u}) {
    Run r(seed);
    constexpr uint64_t kN = 200000;
    for (uint64_t i = 0; i < kN; ++i) r.Request(i % 2 == 0 ? "hot" : Cold(i));
    INFO("seed " << seed);
    REQUIRE(r.Rank("hot") == 0);
    const double f = kN / 2;
    CHECK(std::abs(static_cast<double>(r.Reported("hot")) - f) <= Bound(f, r.hot.total(), 64));
    // Relative error ~ 1/sqrt(expected samples = 12,500): under 4 %.
    CHECK(std::abs(static_cast<double>(r.Reported("hot")) - f) < 0.04 * f);
    r.CheckAll(1);
    // Every other entry is a key seen once: at most one sample's weight.
    auto top = r.hot.Top(64);
    for (size_t i = 1; i < top.size(); ++i) CHECK(top[i].second <= HotKeys::kSampleEvery);
  }
}

TEST_CASE("a hot key every 8th request exactly (the old sampler's blind spot) is found") {
  for (uint64_t phase = 0; phase < HotKeys::kSampleEvery; ++phase) {
    Run r(100 + phase);
    constexpr uint64_t kN = 400000;
    for (uint64_t i = 0; i < kN; ++i) {
      r.Request(i % HotKeys::kSampleEvery == phase ? "hot" : Cold(i));
    }
    INFO("phase " << phase);
    REQUIRE(r.Rank("hot") == 0);
    const double f = static_cast<double>(r.truth["hot"]);
    CHECK(std::abs(static_cast<double>(r.Reported("hot")) - f) <= Bound(f, r.hot.total(), 64));
    r.CheckAll(1);
  }
}

TEST_CASE("hot keys at different rates under a uniform cold background keep their order") {
  Run r(7);
  uint64_t x = 12345;
  for (uint64_t i = 0; i < 500000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const uint64_t u = (x >> 33) % 100;
    if (u < 20) {
      r.Request("a");  // 20 %
    } else if (u < 30) {
      r.Request("b");  // 10 %
    } else if (u < 35) {
      r.Request("c");  // 5 %
    } else {
      r.Request(Cold((x >> 13) % 100000));  // 65 % over 100,000 keys
    }
  }
  CHECK(r.Rank("a") == 0);
  CHECK(r.Rank("b") == 1);
  CHECK(r.Rank("c") == 2);
  r.CheckAll(30);
}

TEST_CASE("bursts: keys hot in short bursts are found, one-off keys stay small") {
  Run r(11);
  uint64_t cold = 0;
  // 200 rounds: a burst of 64 requests of one of 4 burst keys, then 256 one-off keys.
  for (int round = 0; round < 200; ++round) {
    const std::string burst = "burst:" + std::to_string(round % 4);
    for (int i = 0; i < 64; ++i) r.Request(burst);
    for (int i = 0; i < 256; ++i) r.Request(Cold(cold++));
  }
  for (int b = 0; b < 4; ++b) {
    const std::string key = "burst:" + std::to_string(b);
    INFO(key);
    CHECK(r.Rank(key) < 4);
  }
  r.CheckAll(1);
}

TEST_CASE("a key seen once after the table filled is not reported with an inherited count") {
  HotKeys hot(4, 5);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 100; ++j) hot.Record("warm:" + std::to_string(i), HotKeys::kSampleEvery);
  }
  hot.Record("once", HotKeys::kSampleEvery);  // evicts a warm key, inherits 800
  auto top = hot.Top(8);
  bool found = false;
  for (auto& [k, c] : top) {
    if (k == "once") {
      found = true;
      CHECK(c == HotKeys::kSampleEvery);
    } else {
      CHECK(c == 100 * HotKeys::kSampleEvery);
    }
  }
  CHECK(found);
  CHECK(top.back().first == "once");
}

TEST_CASE("Space-Saving guarantees hold under churn: lower bounds, heavy keys present") {
  HotKeys hot(64, 3);
  std::map<std::string, uint64_t> truth;
  uint64_t x = 99;
  for (int i = 0; i < 300000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    // Skewed: key j with probability ~ 1/j over 5000 keys.
    const double u = static_cast<double>(x >> 11) / 9007199254740992.0;
    const auto j = static_cast<uint64_t>(std::exp(u * std::log(5000.0)));
    const std::string key = "k" + std::to_string(j);
    hot.Record(key);
    ++truth[key];
  }
  const uint64_t n_over_k = hot.total() / hot.capacity();
  std::map<std::string, uint64_t> reported;
  for (auto& [k, c] : hot.Top(64)) reported[k] = c;
  for (auto& [k, c] : reported) {
    INFO(k);
    CHECK(c <= truth[k]);               // never more than its own weight
    CHECK(c + n_over_k >= truth[k]);    // at most N/K below it
  }
  for (auto& [k, f] : truth) {
    if (f > n_over_k) CHECK(reported.count(k) == 1);  // every heavy key is there
  }
}

TEST_CASE("exact counting (weight 1, every request) is exact while the keys fit") {
  HotKeys hot(8, 1);
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j <= i; ++j) hot.Record("k" + std::to_string(i));
  }
  auto top = hot.Top(3);
  REQUIRE(top.size() == 3);
  CHECK(top[0] == std::pair<std::string, uint64_t>{"k7", 8});
  CHECK(top[1] == std::pair<std::string, uint64_t>{"k6", 7});
  CHECK(top[2] == std::pair<std::string, uint64_t>{"k5", 6});
  hot.Decay();
  CHECK(hot.Top(1)[0].second == 4);
  for (int i = 0; i < 4; ++i) hot.Decay();
  CHECK(hot.Top(8).empty());  // faded out
}

TEST_CASE("big keys keep the largest size and a count per key, the biggest keys when full") {
  BigKeys big(3);
  big.Record("a", 2000000);
  big.Record("a", 1500000);
  big.Record("b", 3000000);
  big.Record("c", 1200000);
  auto top = big.Top(10);
  REQUIRE(top.size() == 3);
  CHECK(top[0].key == "b");
  CHECK(top[1].key == "a");
  CHECK(top[1].bytes == 2000000);
  CHECK(top[1].count == 2);
  big.Record("small", 1100000);  // smaller than all: not kept
  CHECK(big.Top(10).back().key == "c");
  big.Record("d", 5000000);  // replaces the smallest (c)
  top = big.Top(10);
  REQUIRE(top.size() == 3);
  CHECK(top[0].key == "d");
  CHECK(top[0].count == 1);
  CHECK(top[2].key == "a");
  CHECK(big.Top(1).size() == 1);
  // Long names are cut.
  big.Record(std::string(1000, 'x'), 9000000);
  CHECK(big.Top(1)[0].key.size() == BigKeys::kMaxKeyBytes);
}

TEST_CASE("big keys arm the key capture for kCaptureNs") {
  BigKeys big;
  CHECK_FALSE(big.capturing(1000));
  big.Arm(1000);
  CHECK(big.capturing(1000));
  CHECK(big.capturing(1000 + BigKeys::kCaptureNs - 1));
  CHECK_FALSE(big.capturing(1000 + BigKeys::kCaptureNs));
}

}  // namespace keyfence::proxy
