#include "proxy/base/hotkeys.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>

namespace keyfence::proxy {

namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t FreshSeed() {
  static std::atomic<uint64_t> counter{0};
  const uint64_t t =
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return t ^ (counter.fetch_add(1, std::memory_order_relaxed) * 0xd1342543de82ef95ull);
}

// The lowest bit of each complete kSampleBits-bit group of a 64-bit word.
constexpr uint64_t GroupLowBits(unsigned bits) {
  uint64_t m = 0;
  for (unsigned i = 0; i + bits <= 64; i += bits) m |= uint64_t{1} << i;
  return m;
}

}  // namespace

HotKeys::HotKeys(size_t capacity, uint64_t seed) : capacity_(capacity) {
  rng_ = SplitMix64(seed != 0 ? seed : FreshSeed());
  if (rng_ == 0) rng_ = 0x2545f4914f6cdd1dull;  // xorshift needs a non-zero state
  skip_ = NextGap();
  entries_.reserve(capacity_);
}

// Every group of kSampleBits random bits is one request's Bernoulli(2^-b)
// trial (sampled: all its bits zero); the gap is the position of the first
// sampled one, so requests are sampled independently and the gap is exactly
// geometric. A 64-bit draw covers 64/b requests (21 for b = 3).
uint32_t HotKeys::NextGap() {
  constexpr unsigned b = kSampleBits;
  constexpr unsigned kGroups = 64 / b;
  constexpr uint64_t kLow = GroupLowBits(b);
  uint32_t gap = 0;
  for (;;) {
    const uint64_t r = NextRandom();
    uint64_t any = 0;
    for (unsigned i = 0; i < b; ++i) any |= r >> i;
    const uint64_t hit = ~any & kLow;
    if (hit != 0) return gap + static_cast<uint32_t>(std::countr_zero(hit)) / b + 1;
    gap += kGroups;
  }
}

void HotKeys::Record(std::string_view key, uint64_t weight) {
  if (capacity_ == 0) return;
  total_ += weight;
  const absl::string_view k(key.data(), key.size());
  auto it = index_.find(k);
  if (it != index_.end()) {
    entries_[it->second].count += weight;
    return;
  }
  if (entries_.size() < capacity_) {
    entries_.push_back({std::string(key), weight, 0});
    const std::string& stored = entries_.back().key;
    index_.emplace(absl::string_view(stored.data(), stored.size()), entries_.size() - 1);
    min_hint_ = std::min(min_hint_, weight);
    return;
  }
  // Space-Saving: the new key replaces the least counted one and inherits its
  // count (an upper bound on the new key's true count), remembered as its error.
  const size_t min = MinEntry();
  Entry& e = entries_[min];
  index_.erase(absl::string_view(e.key.data(), e.key.size()));
  e.key.assign(key);  // reuses the string's capacity
  e.error = e.count;
  e.count += weight;
  index_.emplace(absl::string_view(e.key.data(), e.key.size()), min);
}

size_t HotKeys::MinEntry() {
  const size_t n = entries_.size();
  size_t best = cursor_ < n ? cursor_ : 0;
  for (size_t step = 0, i = best; step < n; ++step, i = i + 1 == n ? 0 : i + 1) {
    if (entries_[i].count <= min_hint_) {
      best = i;
      break;
    }
    if (entries_[i].count < entries_[best].count) best = i;
  }
  min_hint_ = entries_[best].count;  // the least count (found, or after a full pass)
  cursor_ = best + 1 == n ? 0 : best + 1;
  return best;
}

void HotKeys::Decay() {
  for (Entry& e : entries_) {
    e.count /= 2;
    e.error /= 2;  // count >= error still holds
  }
  total_ /= 2;
  min_hint_ /= 2;
}

std::vector<std::pair<std::string, uint64_t>> HotKeys::Top(size_t n) const {
  std::vector<std::pair<std::string, uint64_t>> v;
  for (const Entry& e : entries_) {
    if (e.count > e.error) v.emplace_back(e.key, e.count - e.error);
  }
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

void BigKeys::Record(std::string_view key, uint64_t bytes) {
  key = key.substr(0, kMaxKeyBytes);
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.bytes = std::max(e.bytes, bytes);
      ++e.count;
      return;
    }
  }
  if (entries_.size() < capacity_) {
    entries_.push_back({std::string(key), bytes, 1});
    return;
  }
  // Full: the smallest (then the least seen) entry gives way to a bigger key.
  auto smallest = std::min_element(entries_.begin(), entries_.end(), [](const Entry& a,
                                                                        const Entry& b) {
    return a.bytes != b.bytes ? a.bytes < b.bytes : a.count < b.count;
  });
  if (bytes <= smallest->bytes) return;
  smallest->key.assign(key);
  smallest->bytes = bytes;
  smallest->count = 1;
}

std::vector<BigKeys::Entry> BigKeys::Top(size_t n) const {
  std::vector<Entry> v = entries_;
  std::sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
    if (a.bytes != b.bytes) return a.bytes > b.bytes;
    if (a.count != b.count) return a.count > b.count;
    return a.key < b.key;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

}  // namespace keyfence::proxy
