// TokenBucket with an injected clock (plain nanoseconds): burst, refill,
// reconfiguration without reset, unlimited buckets, WaitNs.
#include "ratelimit/token_bucket.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

namespace keyfence::ratelimit {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
// A realistic steady_clock reading: never 0.
constexpr uint64_t kT0 = 123 * kSec;

BucketParams Params(double rate, double burst = 0) {
  BucketParams p;
  p.rate_per_sec = rate;
  p.burst = burst;
  return p;
}

// How many single tokens can be taken right now.
int Drain(TokenBucket& b, uint64_t now) {
  int n = 0;
  while (n < 1'000'000 && b.TryTake(1, now)) ++n;
  return n;
}

TEST_CASE("token_bucket: a new bucket allows its burst, then rejects") {
  TokenBucket b(Params(10, 5), kT0);
  CHECK(b.tokens() == Approx(5));
  for (int i = 0; i < 5; ++i) CHECK(b.TryTake(1, kT0));
  CHECK_FALSE(b.TryTake(1, kT0));
  CHECK_FALSE(b.TryTake(1, kT0));
  CHECK(b.tokens() == Approx(0).margin(1e-9));
}

TEST_CASE("token_bucket: burst 0 means a burst of one second's rate") {
  TokenBucket b(Params(10), kT0);
  CHECK(Drain(b, kT0) == 10);
}

TEST_CASE("token_bucket: the clock may start at zero") {
  TokenBucket b(Params(10, 3), 0);
  CHECK(Drain(b, 0) == 3);
  CHECK(Drain(b, 100 * kMs) == 1);
}

TEST_CASE("token_bucket: tokens refill at the configured rate") {
  TokenBucket b(Params(10, 5), kT0);
  REQUIRE(Drain(b, kT0) == 5);
  CHECK_FALSE(b.TryTake(1, kT0 + 50 * kMs));  // half a token
  CHECK(b.TryTake(1, kT0 + 100 * kMs));
  CHECK_FALSE(b.TryTake(1, kT0 + 100 * kMs));
  CHECK(Drain(b, kT0 + 400 * kMs) == 3);
  CHECK(Drain(b, kT0 + 1400 * kMs) == 5);  // capped at the burst
}

TEST_CASE("token_bucket: idle time never earns more than the burst") {
  TokenBucket b(Params(100, 20), kT0);
  CHECK(Drain(b, kT0 + 3600 * kSec) == 20);
}

TEST_CASE("token_bucket: a steady stream at the rate is never rejected") {
  // 1000/s, one request per millisecond for 10 s: floating-point refills of
  // exactly one token must not drift below one.
  TokenBucket b(Params(1000, 1), kT0);
  int rejected = 0;
  for (uint64_t i = 0; i < 10'000; ++i) {
    if (!b.TryTake(1, kT0 + i * kMs)) ++rejected;
  }
  CHECK(rejected == 0);
  CHECK_FALSE(b.TryTake(1, kT0 + 9'999 * kMs));
}

TEST_CASE("token_bucket: fractional takes (byte buckets)") {
  TokenBucket b(Params(1000, 1000), kT0);
  CHECK(b.TryTake(999.5, kT0));
  CHECK(b.TryTake(0.5, kT0));
  CHECK_FALSE(b.TryTake(0.5, kT0));
  CHECK(b.TryTake(0.5, kT0 + kMs / 2));
  CHECK_FALSE(b.TryTake(1001, kT0 + 10 * kSec));  // more than the burst: never
  CHECK(b.TryTake(1000, kT0 + 10 * kSec));
}

TEST_CASE("token_bucket: a clock that goes backwards earns nothing") {
  TokenBucket b(Params(10, 5), kT0);
  REQUIRE(Drain(b, kT0) == 5);
  CHECK_FALSE(b.TryTake(1, kT0 - kSec));
  CHECK_FALSE(b.TryTake(1, kT0));
  CHECK(b.TryTake(1, kT0 + 100 * kMs));
}

TEST_CASE("token_bucket: Reconfigure keeps the tokens already earned") {
  TokenBucket b(Params(10, 10), kT0);
  for (int i = 0; i < 7; ++i) REQUIRE(b.TryTake(1, kT0));
  b.Reconfigure(Params(100, 50), kT0);
  CHECK(b.tokens() == Approx(3));  // not reset to the new burst
  CHECK(Drain(b, kT0) == 3);
  // The new rate applies from now on.
  CHECK(Drain(b, kT0 + 100 * kMs) == 10);
  CHECK(Drain(b, kT0 + 10 * kSec) == 50);
}

TEST_CASE("token_bucket: Reconfigure caps the tokens at a smaller burst") {
  TokenBucket b(Params(10, 10), kT0);
  b.Reconfigure(Params(10, 4), kT0);
  CHECK(b.tokens() == Approx(4));
  CHECK(Drain(b, kT0) == 4);
}

TEST_CASE("token_bucket: Reconfigure first settles what the old rate earned") {
  TokenBucket b(Params(10, 10), kT0);
  REQUIRE(Drain(b, kT0) == 10);
  // 500 ms at the old rate (5 tokens), then a rate of 1/s.
  b.Reconfigure(Params(1, 10), kT0 + 500 * kMs);
  CHECK(b.tokens() == Approx(5));
  CHECK(Drain(b, kT0 + 500 * kMs) == 5);
  CHECK_FALSE(b.TryTake(1, kT0 + 1400 * kMs));
  CHECK(b.TryTake(1, kT0 + 1500 * kMs));
}

TEST_CASE("token_bucket: rate 0 is unlimited") {
  TokenBucket b(Params(0), kT0);
  CHECK(b.unlimited());
  for (int i = 0; i < 100'000; ++i) REQUIRE(b.TryTake(1, kT0));
  CHECK(b.TryTake(1e12, kT0));
  CHECK(b.WaitNs(1e12, kT0) == 0);
  TokenBucket d;  // default-constructed: unlimited too
  CHECK(d.unlimited());
  CHECK(d.TryTake(5, 0));
  TokenBucket limited(Params(10, 1), kT0);
  CHECK_FALSE(limited.unlimited());
  limited.Reconfigure(Params(0), kT0);
  CHECK(limited.unlimited());
  CHECK(Drain(limited, kT0) == 1'000'000);
}

// BUG (reported): a bucket that starts unlimited (rate 0: limits.ops_per_sec 0)
// and is reconfigured to a limit on a config reload starts EMPTY instead of
// full, so the tenant's first requests after the reload are rejected. The
// "first configuration" test in Reconfigure() only works when the clock read 0
// at construction. Input: TokenBucket(rate 0, now=123 s), then Reconfigure(rate
// 10, burst 5, now=124 s). Expected 5 tokens; actual 0.
TEST_CASE("token_bucket: a limit added on reload starts with a full burst", "[bug]") {
  TokenBucket b(Params(0), kT0);
  b.Reconfigure(Params(10, 5), kT0 + kSec);
  CHECK(b.tokens() == Approx(5));
  CHECK(Drain(b, kT0 + kSec) == 5);
}

TEST_CASE("token_bucket: WaitNs is the time until n tokens, without taking them") {
  TokenBucket b(Params(10, 5), kT0);
  CHECK(b.WaitNs(1, kT0) == 0);
  CHECK(b.WaitNs(5, kT0) == 0);
  REQUIRE(Drain(b, kT0) == 5);
  CHECK(b.WaitNs(1, kT0) == 100 * kMs);
  CHECK(b.WaitNs(2, kT0) == 200 * kMs);
  CHECK(b.WaitNs(1, kT0 + 50 * kMs) == 50 * kMs);
  CHECK(b.WaitNs(1, kT0 + 50 * kMs) == 50 * kMs);  // asking does not consume
  CHECK(b.WaitNs(1, kT0 + 100 * kMs) == 0);
  CHECK(b.TryTake(1, kT0 + 100 * kMs));
}

// BUG (reported): WaitNs truncates the wait to whole nanoseconds instead of
// rounding up, so a caller that sleeps WaitNs and then takes (on_limit: delay)
// is still short by up to rate*1e-9 tokens, more than TryTake's 1e-9 slack
// once the rate exceeds 1/s. Input: rate 7/s, burst 1, take 1 at t; WaitNs(1,
// t) = 142857142 (1/7 s is 142857142.86 ns); TryTake(1, t + 142857142) is
// expected true, actual false. Above 1e9/s WaitNs even returns 0 while no
// token is available.
TEST_CASE("token_bucket: after waiting WaitNs, the take succeeds", "[bug]") {
  {
    TokenBucket b(Params(7, 1), kT0);
    REQUIRE(b.TryTake(1, kT0));
    const uint64_t wait = b.WaitNs(1, kT0);
    CHECK(wait >= 142857142);
    CHECK(wait <= 142857143);
    CHECK(b.TryTake(1, kT0 + wait));
  }
  int failures = 0;
  std::string first;
  for (double rate : {1.0, 3.0, 7.0, 10.0, 333.0, 1000.0, 12345.6, 1e6, 2.5e9}) {
    for (double n : {1.0, 0.3, 2.0, 17.0}) {
      TokenBucket b(Params(rate, 20), kT0);
      uint64_t now = kT0;
      for (int round = 0; round < 50; ++round) {
        while (b.TryTake(n, now)) {
        }
        const uint64_t wait = b.WaitNs(n, now);
        now += wait;
        if (wait == 0 || !b.TryTake(n, now)) {
          if (failures++ == 0) {
            first = "rate " + std::to_string(rate) + " n " + std::to_string(n) + " wait " +
                    std::to_string(wait);
          }
          b.TryTake(n, now + 1000);  // resynchronise
        }
        now += 1 + static_cast<uint64_t>(round) * 7;  // vary the phase
      }
    }
  }
  INFO("first failure: " << first);
  CHECK(failures == 0);
}

}  // namespace
}  // namespace keyfence::ratelimit
