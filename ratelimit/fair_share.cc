#include "ratelimit/fair_share.h"

#include <algorithm>
#include <cmath>

namespace keyfence::ratelimit {

namespace {

constexpr double kWindowSec = static_cast<double>(FairShare::kWindowNs) / 1e9;

// Stats word: epoch tag | capped | satisfied | satisfied tokens.
constexpr int kTagShift = 48, kCappedShift = 36, kSatShift = 24;
constexpr uint64_t kTagMask = 0xffff, kNMask = 0xfff, kUsedMask = 0xffffff;

uint64_t Field(uint64_t v, int shift, uint64_t mask) { return (v >> shift) & mask; }

// A connection counts as satisfied (its demand met) when at most this part of
// its requests in the window were refused.
constexpr double kSatisfiedRefused = 0.1;

}  // namespace

void FairShare::Join(uint64_t epoch) {
  std::atomic<uint64_t>& slot = active_[epoch & 1];
  uint64_t cur = slot.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    uint64_t e = cur >> kCountBits;
    if (e > epoch) return;  // a late clock reading: the slot has moved on
    uint64_t n = e == epoch ? (cur & kCountMask) : 0;
    if (n == kCountMask) return;
    next = (epoch << kCountBits) | (n + 1);
  } while (!slot.compare_exchange_weak(cur, next, std::memory_order_relaxed));
}

uint32_t FairShare::Active(uint64_t epoch) const {
  uint64_t n = 1;
  for (uint64_t e : {epoch, epoch - 1}) {
    uint64_t v = active_[e & 1].load(std::memory_order_relaxed);
    if ((v >> kCountBits) == e) n = std::max(n, v & kCountMask);
  }
  return static_cast<uint32_t>(n);
}

void FairShare::Publish(uint64_t epoch, bool capped, double used) {
  std::atomic<uint64_t>& slot = stats_[epoch & 3];
  const uint64_t tag = epoch & kTagMask;
  const uint64_t add = static_cast<uint64_t>(std::clamp(used, 0.0, double(kUsedMask)));
  uint64_t cur = slot.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    uint64_t v = Field(cur, kTagShift, kTagMask) == tag ? cur : tag << kTagShift;
    uint64_t c = Field(v, kCappedShift, kNMask);
    uint64_t s = Field(v, kSatShift, kNMask);
    uint64_t u = Field(v, 0, kUsedMask);
    if (capped) {
      c = std::min(kNMask, c + 1);
    } else {
      s = std::min(kNMask, s + 1);
      u = std::min(kUsedMask, u + add);
    }
    next = (tag << kTagShift) | (c << kCappedShift) | (s << kSatShift) | u;
  } while (!slot.compare_exchange_weak(cur, next, std::memory_order_relaxed));
}

FairShare::Stats FairShare::StatsOf(uint64_t epoch) const {
  uint64_t v = stats_[epoch & 3].load(std::memory_order_relaxed);
  Stats st;
  if (Field(v, kTagShift, kTagMask) != (epoch & kTagMask)) return st;
  st.capped = static_cast<uint32_t>(Field(v, kCappedShift, kNMask));
  st.satisfied = static_cast<uint32_t>(Field(v, kSatShift, kNMask));
  st.satisfied_used = static_cast<double>(Field(v, 0, kUsedMask));
  return st;
}

double FairShare::ShareOf(double rate, uint64_t epoch) const {
  if (!Contended(epoch)) return 0;
  const uint32_t active = Active(epoch);
  if (active <= 1) return 0;
  const double window = rate * kWindowSec;
  const double equal = window / active;
  // Max-min: what the satisfied connections of the window before last left,
  // split between the others (the capped ones, and active ones not counted
  // there: new connections are assumed greedy). Never below the equal split.
  const Stats st = StatsOf(epoch - 2);
  uint32_t known = st.capped + st.satisfied;
  uint32_t greedy = st.capped + (active > known ? active - known : 0);
  if (st.satisfied == 0 || greedy == 0) return equal;
  return std::max(equal, (window - st.satisfied_used) / greedy);
}

void ConnShare::Roll(uint64_t epoch, FairShare& fair) {
  if (epoch == epoch_ + 1) {
    // Publish the finished window (only when it was contended: otherwise
    // nothing reads it).
    if (share_ > 0) fair.Publish(epoch_, refused_ > kSatisfiedRefused * (cur_ + refused_), cur_);
    prev_ = cur_;
  } else {
    prev_ = 0;
  }
  cur_ = 0;
  share_ = 0;
  refused_ = 0;
  epoch_ = epoch;
  fair.Join(epoch);
}

double ConnShare::Used(uint64_t now_ns) const {
  const uint64_t epoch = FairShare::Epoch(now_ns);
  const double left = 1.0 - static_cast<double>(now_ns - epoch * FairShare::kWindowNs) /
                                static_cast<double>(FairShare::kWindowNs);
  if (epoch == epoch_) return prev_ * left + cur_;
  if (epoch == epoch_ + 1) return cur_ * left;
  return 0;
}

namespace {
// Tokens any connection may take, over its share or not: the bucket (this
// worker's balance and the shared tokens) full but for one token, so that the
// refill would be lost otherwise. Below that they are kept for connections
// under their share, bursty ones (pipelines) included.
bool Surplus(const BorrowingBucket& bucket, double n, uint64_t now_ns) {
  return bucket.Available(now_ns) >= std::max(n, bucket.capacity() - 1);
}
}  // namespace

bool ConnShare::TryTake(BorrowingBucket& bucket, FairShare& fair, double n, uint64_t now_ns) {
  const uint64_t epoch = FairShare::Epoch(now_ns);
  if (epoch != epoch_) Roll(epoch, fair);
  if (fair.Contended(epoch)) {
    const double share = fair.ShareOf(bucket.rate(), epoch);
    if (share > 0) {
      share_ = share;
      if (Used(now_ns) >= share && !Surplus(bucket, n, now_ns)) {
        refused_ += n;
        fair.NoteRefusal(epoch);
        return false;
      }
    }
  }
  if (!bucket.TryTake(n, now_ns)) {
    refused_ += n;
    fair.NoteRefusal(epoch);
    return false;
  }
  cur_ += n;
  return true;
}

uint64_t ConnShare::WaitNs(const BorrowingBucket& bucket, const FairShare& fair, double n,
                           uint64_t now_ns) const {
  const uint64_t wait = bucket.WaitNs(n);
  const uint64_t epoch = FairShare::Epoch(now_ns);
  const double share = fair.ShareOf(bucket.rate(), epoch);
  if (share <= 0 || Used(now_ns) < share) return wait;
  // Until the sliding usage decays under the share: within this window it
  // falls by prev/W per ns (only the previous window's part decays), in the
  // next one by cur/W.
  const double w = static_cast<double>(FairShare::kWindowNs);
  const uint64_t start = epoch * FairShare::kWindowNs;
  const double in_window = static_cast<double>(now_ns - start) / w;  // 0..1
  const double prev = epoch == epoch_ ? prev_ : (epoch == epoch_ + 1 ? cur_ : 0);
  const double cur = epoch == epoch_ ? cur_ : 0;
  uint64_t share_wait;
  if (cur < share && prev > 0) {
    const double at = 1.0 - (share - cur) / prev;  // where Used == share in this window
    share_wait = static_cast<uint64_t>(std::ceil(std::max(0.0, at - in_window) * w)) + 1;
  } else {
    const double at = cur > 0 ? std::max(0.0, 1.0 - share / cur) : 0.0;  // in the next one
    share_wait = (start + FairShare::kWindowNs - now_ns) +
                 static_cast<uint64_t>(std::ceil(at * w)) + 1;
  }
  return std::max(wait, share_wait);
}

}  // namespace keyfence::ratelimit
