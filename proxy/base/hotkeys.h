// Hot keys and big keys of one tenant on one worker (client-side key names).
// Worker-local; Top() copies are taken on the worker thread.
//
// Hot keys: requests are SAMPLED AT RANDOM, each one independently with
// probability p = 1/kSampleEvery (a geometric skip counter drawn from a
// xorshift64 generator), and every sample is recorded with weight
// kSampleEvery into a Space-Saving top-K sketch (K = capacity, 64) whose
// counts halve every few seconds (Decay: old heat fades). Access patterns
// cannot line up with the sampler (the old 1-in-8 counter never saw a key that
// was every other request of an alternating pipeline and weighted cold keys
// eight times over).
//
// Error bound of a reported count c for a key with f true (decayed) requests:
//   * sampling: the key's sampled weight F = kSampleEvery * Binomial(f, p) is
//     unbiased, with standard deviation sqrt(f * (kSampleEvery - 1)), i.e. a
//     relative error of about 1/sqrt(f * p) = 1/sqrt(expected samples)
//     (10 % at 100 samples = 800 requests);
//   * Space-Saving over the N total sampled weight recorded: every key whose
//     F > N/K is in the table; an entry's count overestimates F by at most its
//     inherited `error` <= N/K. Top() reports c = count - error, the part
//     recorded for this key itself:  F - N/K <= c <= F.
//   Together: f - N/K - z*sqrt(f*(kSampleEvery-1)) <= c <= f + z*sqrt(f*(kSampleEvery-1))
//   with probability of the normal z (z = 4: all but 6 in 100,000). A key seen
//   once is reported with at most kSampleEvery (one sample), never with an
//   inherited count.
//
// Cost: Observe() is one decrement and compare of the skip counter when the
// request is not sampled (7 in 8); the RNG, the gap and the table update run
// only for a sampled request. The table's index views the entries' own key
// strings (no allocation per eviction) and the least entry is searched from a
// remembered lower bound (ties found without a full pass). Measured (callgrind,
// 1 worker, GET -P 16 -c 50 over 100,000 keys): the sketch costs ~75
// instructions per request amortized, about 33 of them per sample for the gap.
//
// Big keys (BigKeys): the largest replies seen per key (key -> largest size,
// count), the BigKeys::kCapacity biggest keys kept. Lives next to the hot keys
// so that each tenant's per-worker state (TenantLocal::hot) carries it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/strings/string_view.h>

namespace keyfence::proxy {

// Keys whose replies went over big_value_bytes: per key the largest reply and
// how many big replies it gave. When full, a new key replaces the entry with
// the smallest size if it is bigger (so the biggest keys stay). Fed only with
// big values (rare: each is over big_value_bytes), so a linear table is enough.
class BigKeys {
 public:
  static constexpr size_t kCapacity = 32;
  // Stored key names are cut at this length (the slot copy and the table).
  static constexpr size_t kMaxKeyBytes = 256;
  // After a big value, requests of the tenant (on this worker) carry their
  // first key in the reply slot this long, to name the key of a big reply.
  static constexpr uint64_t kCaptureNs = 600ull * 1000000000;  // 10 minutes

  struct Entry {
    std::string key;
    uint64_t bytes = 0;  // the largest value seen
    uint64_t count = 0;  // big values seen
  };

  explicit BigKeys(size_t capacity = kCapacity) : capacity_(capacity) {}
  void Record(std::string_view key, uint64_t bytes);
  // Largest first (then the most frequent, then by name).
  std::vector<Entry> Top(size_t n) const;
  size_t size() const { return entries_.size(); }

  // Whether requests should carry their first key now (a big value was seen
  // within kCaptureNs); Arm() on every big value.
  bool capturing(uint64_t now_ns) const { return now_ns < capture_until_ns_; }
  void Arm(uint64_t now_ns) { capture_until_ns_ = now_ns + kCaptureNs; }

 private:
  size_t capacity_;
  std::vector<Entry> entries_;
  uint64_t capture_until_ns_ = 0;
};

class HotKeys {
 public:
  // Sampling probability 2^-kSampleBits; a sample counts kSampleEvery requests.
  static constexpr unsigned kSampleBits = 3;
  static constexpr uint32_t kSampleEvery = 1u << kSampleBits;

  // `seed` 0: a seed of its own (distinct per instance).
  explicit HotKeys(size_t capacity = 64, uint64_t seed = 0);
  // The index views the entries' own key strings.
  HotKeys(const HotKeys&) = delete;
  HotKeys& operator=(const HotKeys&) = delete;

  // The request path: samples `key` at random (see above) into the sketch.
  void Observe(std::string_view key) {
    if (Sampled()) Record(key, kSampleEvery);
  }
  // Whether this request is sampled (Observe() without the record).
  bool Sampled() {
    if (--skip_ != 0) return false;
    skip_ = NextGap();
    return true;
  }

  // Space-Saving update with `weight` (exact counting when weight is 1 and
  // every request is recorded).
  void Record(std::string_view key, uint64_t weight = 1);
  void Decay();
  // The top n keys by reported count (count - inherited error; zeros left out).
  std::vector<std::pair<std::string, uint64_t>> Top(size_t n) const;
  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }
  // The total weight recorded (N in the bound above; decays with the counts).
  uint64_t total() const { return total_; }

  BigKeys big;  // this tenant's big keys on this worker

 private:
  uint64_t NextRandom() {  // xorshift64
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }
  // A Geometric(2^-kSampleBits) draw on 1, 2, ...: the requests until the next sample.
  uint32_t NextGap();
  // An entry with the least count (the Space-Saving victim).
  size_t MinEntry();

  struct Entry {
    std::string key;
    uint64_t count;
    uint64_t error;  // inherited from the evicted entry (Space-Saving overestimate)
  };
  size_t capacity_;
  std::vector<Entry> entries_;  // reserved to capacity_: never moves
  // key (a view of entries_[i].key) -> i: no key copy, no allocation per eviction.
  absl::flat_hash_map<absl::string_view, size_t> index_;
  uint64_t total_ = 0;
  // MinEntry(): no count is below min_hint_ (so an entry at min_hint_ is a
  // least one); the search goes on from cursor_ (ties are found in O(1) amortized).
  uint64_t min_hint_ = 0;
  size_t cursor_ = 0;
  uint64_t rng_;
  uint32_t skip_;  // requests until the next sample (1: the next one)
};

}  // namespace keyfence::proxy
