// Token bucket (rate + burst) with an injected clock: pure arithmetic, no I/O,
// no threads. One bucket per tenant per worker; the rate of each worker's share
// is set by the owner (issue 4 adds the cross-worker budget).
#pragma once

#include <cstdint>

namespace keyfence::ratelimit {

struct BucketParams {
  double rate_per_sec = 0;  // 0 = unlimited
  double burst = 0;         // 0 = rate_per_sec
};

class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(const BucketParams& p, uint64_t now_ns) { Reconfigure(p, now_ns); }

  // Changes rate and burst without resetting the tokens already earned
  // (capped at the new burst).
  void Reconfigure(const BucketParams& p, uint64_t now_ns);

  // Takes n tokens if available. Returns true if allowed.
  bool TryTake(double n, uint64_t now_ns);

  // Nanoseconds until n tokens will be available (0 if now).
  uint64_t WaitNs(double n, uint64_t now_ns);

  bool unlimited() const { return params_.rate_per_sec <= 0; }
  double tokens() const { return tokens_; }

 private:
  void Refill(uint64_t now_ns);
  BucketParams params_;
  double capacity_ = 0;
  double tokens_ = 0;
  uint64_t last_ns_ = 0;
};

}  // namespace keyfence::ratelimit
