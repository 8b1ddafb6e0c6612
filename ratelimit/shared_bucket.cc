#include "ratelimit/shared_bucket.h"

#include <algorithm>
#include <cmath>

namespace keyfence::ratelimit {

void SharedBucket::Configure(double rate_per_sec, double burst, uint64_t now_ns) {
  bool was_unlimited = unlimited();
  double cap = burst > 0 ? burst : rate_per_sec;
  if (!was_unlimited) Refill(now_ns);
  rate_.store(rate_per_sec, std::memory_order_relaxed);
  capacity_.store(cap, std::memory_order_relaxed);
  if (!fed()) refill_.store(rate_per_sec, std::memory_order_relaxed);
  int64_t cap_micro = static_cast<int64_t>(cap * kScale);
  if (was_unlimited && fed()) {
    micro_tokens_.store(0, std::memory_order_relaxed);  // the fleet grants its tokens
  } else if (was_unlimited) {
    micro_tokens_.store(cap_micro, std::memory_order_relaxed);  // a new limit starts full
  } else {
    int64_t cur = micro_tokens_.load(std::memory_order_relaxed);
    while (cur > cap_micro &&
           !micro_tokens_.compare_exchange_weak(cur, cap_micro, std::memory_order_relaxed)) {
    }
  }
  last_ns_.store(now_ns, std::memory_order_relaxed);
}

void SharedBucket::SetFedRefill(double refill_per_sec, uint64_t now_ns) {
  std::lock_guard l(fed_mu_);
  if (!fed()) return;
  if (refill_.load(std::memory_order_relaxed) == refill_per_sec) return;
  if (!unlimited()) Refill(now_ns);
  refill_.store(refill_per_sec, std::memory_order_relaxed);
}

void SharedBucket::SetFed(bool fed, double refill_per_sec, uint64_t now_ns) {
  std::lock_guard l(fed_mu_);
  if (!unlimited()) Refill(now_ns);  // what the old refill earned so far
  fed_.store(fed, std::memory_order_relaxed);
  refill_.store(fed ? refill_per_sec : rate(), std::memory_order_relaxed);
}

void SharedBucket::Deposit(double n) {
  const int64_t add = static_cast<int64_t>(n * kScale);
  const int64_t cap_micro = static_cast<int64_t>(capacity() * kScale);
  int64_t cur = micro_tokens_.load(std::memory_order_relaxed);
  int64_t next;
  do {
    next = std::min(std::max(cur, cap_micro), cur + add);  // never above the burst
  } while (!micro_tokens_.compare_exchange_weak(cur, next, std::memory_order_relaxed));
}

void SharedBucket::Refill(uint64_t now_ns) {
  uint64_t last = last_ns_.load(std::memory_order_relaxed);
  if (now_ns <= last) return;
  // Whoever advances the clock adds the tokens for that interval.
  if (!last_ns_.compare_exchange_strong(last, now_ns, std::memory_order_relaxed)) return;
  double add = static_cast<double>(now_ns - last) / 1e9 * refill_.load(std::memory_order_relaxed);
  int64_t add_micro = static_cast<int64_t>(add * kScale);
  int64_t cap_micro = static_cast<int64_t>(capacity() * kScale);
  int64_t cur = micro_tokens_.load(std::memory_order_relaxed);
  int64_t next;
  do {
    next = std::min(cap_micro, cur + add_micro);
    if (next <= cur) return;
  } while (!micro_tokens_.compare_exchange_weak(cur, next, std::memory_order_relaxed));
}

double SharedBucket::Take(double want, uint64_t now_ns) {
  if (unlimited()) return want;
  Refill(now_ns);
  int64_t want_micro = static_cast<int64_t>(want * kScale);
  int64_t cur = micro_tokens_.load(std::memory_order_relaxed);
  int64_t grant;
  do {
    grant = std::min(want_micro, cur);
    if (grant <= 0) {
      shortfalls_.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
  } while (!micro_tokens_.compare_exchange_weak(cur, cur - grant, std::memory_order_relaxed));
  taken_micro_.fetch_add(grant, std::memory_order_relaxed);
  if (grant < want_micro) shortfalls_.fetch_add(1, std::memory_order_relaxed);
  return static_cast<double>(grant) / kScale;
}

void SharedBucket::Charge(double n, uint64_t now_ns) {
  if (unlimited()) return;
  Refill(now_ns);
  micro_tokens_.fetch_sub(static_cast<int64_t>(n * kScale), std::memory_order_relaxed);
  taken_micro_.fetch_add(static_cast<int64_t>(n * kScale), std::memory_order_relaxed);
}

double SharedBucket::tokens() const {
  return static_cast<double>(micro_tokens_.load(std::memory_order_relaxed)) / kScale;
}

double SharedBucket::Available(uint64_t now_ns) const {
  double t = tokens();
  uint64_t last = last_ns_.load(std::memory_order_relaxed);
  if (now_ns > last) {
    t = std::min(capacity(), t + static_cast<double>(now_ns - last) / 1e9 *
                                     refill_.load(std::memory_order_relaxed));
  }
  return t;
}

bool BorrowingBucket::TryTake(double n, uint64_t now_ns) {
  if (unlimited()) return true;
  if (local_ >= n) {
    local_ -= n;
    return true;
  }
  // Borrow what is missing plus about 5 ms of the rate (never more than a
  // quarter of the burst), so most requests stay local.
  double chunk = std::clamp(shared_->rate() / 200.0, 1.0, std::max(1.0, shared_->capacity() / 4));
  double need = n - local_;
  double got = shared_->Take(need + chunk - 1, now_ns);
  local_ += got;
  if (local_ >= n) {
    local_ -= n;
    return true;
  }
  // Not enough: give back what we hold so other workers can use it.
  if (local_ > 0) {
    shared_->Charge(-local_, now_ns);
    local_ = 0;
  }
  return false;
}

void BorrowingBucket::Charge(double n, uint64_t now_ns) {
  if (unlimited()) return;
  local_ -= n;
  if (local_ < 0) {
    shared_->Charge(-local_, now_ns);  // the debt moves to the shared bucket
    local_ = 0;
  }
}

uint64_t BorrowingBucket::WaitNs(double n) const {
  if (unlimited()) return 0;
  // A debt (negative shared tokens) lengthens the wait.
  double missing = n - std::max(0.0, local_) - shared_->tokens();
  if (missing <= 0) return 0;
  const uint64_t ns = static_cast<uint64_t>(std::ceil(missing / shared_->rate() * 1e9));
  // A fed bucket (scope fleet) gets its tokens in chunks from the feeder, not at the
  // fleet-wide rate: waking sooner than the feeder can deliver only costs wake-ups.
  return shared_->fed() ? std::max(ns, kFedMinWaitNs) : ns;
}

}  // namespace keyfence::ratelimit
