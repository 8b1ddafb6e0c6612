#include "ratelimit/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace keyfence::ratelimit {

void TokenBucket::Reconfigure(const BucketParams& p, uint64_t now_ns) {
  // A bucket that had no limit (or none yet) starts full under a new limit.
  bool first = capacity_ == 0 || unlimited();
  if (!first) Refill(now_ns);
  params_ = p;
  capacity_ = p.burst > 0 ? p.burst : p.rate_per_sec;
  tokens_ = first ? capacity_ : std::min(tokens_, capacity_);
  last_ns_ = now_ns;
}

void TokenBucket::Refill(uint64_t now_ns) {
  if (now_ns <= last_ns_) return;
  double dt = static_cast<double>(now_ns - last_ns_) / 1e9;
  tokens_ = std::min(capacity_, tokens_ + dt * params_.rate_per_sec);
  last_ns_ = now_ns;
}

bool TokenBucket::TryTake(double n, uint64_t now_ns) {
  if (unlimited()) return true;
  Refill(now_ns);
  if (tokens_ + 1e-9 < n) return false;
  tokens_ -= n;
  return true;
}

uint64_t TokenBucket::WaitNs(double n, uint64_t now_ns) {
  if (unlimited()) return 0;
  Refill(now_ns);
  if (tokens_ >= n) return 0;
  // Rounded up (and at least 1 ns), so that waiting WaitNs() and then taking
  // succeeds.
  double ns = std::ceil((n - tokens_) / params_.rate_per_sec * 1e9);
  return std::max<uint64_t>(1, static_cast<uint64_t>(ns));
}

}  // namespace keyfence::ratelimit
