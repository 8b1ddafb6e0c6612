// The tenant-wide bucket shared by workers: limits hold across workers within
// one borrowed chunk each, reconfiguration keeps tokens, debts block.
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "ratelimit/shared_bucket.h"

using keyfence::ratelimit::BorrowingBucket;
using keyfence::ratelimit::SharedBucket;

namespace {
constexpr uint64_t kSec = 1000000000ull;
}

TEST_CASE("shared bucket: unlimited when the rate is 0") {
  SharedBucket s;
  s.Configure(0, 0, kSec);
  BorrowingBucket b(&s);
  for (int i = 0; i < 100000; ++i) REQUIRE(b.TryTake(1, kSec));
  CHECK(b.WaitNs(1) == 0);
}

TEST_CASE("shared bucket: two workers together get the burst, then the rate") {
  SharedBucket s;
  s.Configure(1000, 100, kSec);  // 1000/s, burst 100
  BorrowingBucket w1(&s), w2(&s);
  int ok = 0;
  for (int i = 0; i < 200; ++i) {
    ok += w1.TryTake(1, kSec);
    ok += w2.TryTake(1, kSec);
  }
  CHECK(ok == 100);  // exactly the burst: borrowed chunks are handed back on failure
  // one second later: 1000 more tokens, capped at the burst of 100
  ok = 0;
  for (int i = 0; i < 200; ++i) {
    ok += w1.TryTake(1, 2 * kSec);
    ok += w2.TryTake(1, 2 * kSec);
  }
  CHECK(ok == 100);
  // 50 ms later: 50 tokens
  ok = 0;
  for (int i = 0; i < 100; ++i) ok += w1.TryTake(1, 2 * kSec + kSec / 20);
  CHECK(ok == Approx(50).margin(1));
}

TEST_CASE("shared bucket: reconfigure keeps the tokens earned, capped at the new burst") {
  SharedBucket s;
  s.Configure(100, 100, kSec);
  BorrowingBucket b(&s);
  for (int i = 0; i < 60; ++i) REQUIRE(b.TryTake(1, kSec));
  s.Configure(200, 20, kSec);  // fewer tokens allowed: capped at 20
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += b.TryTake(1, kSec);
  CHECK(ok <= 20 + 2);  // + what the worker had already borrowed
  CHECK(ok >= 18);
}

TEST_CASE("shared bucket: a new limit on a tenant that had none starts full") {
  SharedBucket s;
  s.Configure(0, 0, 5 * kSec);
  s.Configure(10, 5, 6 * kSec);
  BorrowingBucket b(&s);
  int ok = 0;
  for (int i = 0; i < 20; ++i) ok += b.TryTake(1, 6 * kSec);
  CHECK(ok == 5);
}

TEST_CASE("shared bucket: charged bytes become a debt that blocks until repaid") {
  SharedBucket s;
  s.Configure(1000, 1000, kSec);  // bytes/s
  BorrowingBucket b(&s);
  b.Charge(3000, kSec);  // a big reply
  CHECK_FALSE(b.TryTake(1, kSec));
  CHECK(b.WaitNs(1) >= 2 * kSec);
  CHECK_FALSE(b.TryTake(1, 2 * kSec + kSec / 2));
  CHECK(b.TryTake(1, 3 * kSec + kSec / 100));
}

TEST_CASE("shared bucket: concurrent workers never exceed the tokens available") {
  SharedBucket s;
  s.Configure(1e9, 100000, kSec);  // effectively only the burst within one instant
  std::vector<std::thread> threads;
  std::atomic<int> granted{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      BorrowingBucket b(&s);
      int mine = 0;
      for (int i = 0; i < 50000; ++i) mine += b.TryTake(1, kSec);
      granted += mine;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(granted.load() == 100000);
}

TEST_CASE("shared_bucket: a fed bucket (scope fleet) holds only what is deposited") {
  using keyfence::ratelimit::SharedBucket;
  const uint64_t s = 1'000'000'000;
  SharedBucket b;
  b.SetFed(true, 0, 0);
  b.Configure(1000, 1000, 0);  // a new fed limit starts empty, not full
  CHECK(b.tokens() == 0);
  CHECK(b.Take(10, 5 * s) == 0);  // time alone adds nothing
  CHECK(b.shortfalls() == 1);
  b.Deposit(300);
  CHECK(b.Take(200, 5 * s) == Approx(200));
  CHECK(b.Take(200, 5 * s) == Approx(100));  // what is left, and a shortfall
  CHECK(b.shortfalls() == 2);
  CHECK(b.taken() == Approx(300));
  b.Deposit(5000);
  CHECK(b.tokens() == Approx(1000));  // never above the burst
  // the fallback share refills with time; back to grants only stops that
  b.Take(1000, 5 * s);
  b.SetFed(true, 250, 5 * s);
  CHECK(b.Take(1000, 7 * s) == Approx(500));
  b.SetFed(true, 0, 7 * s);
  CHECK(b.Take(1000, 9 * s) == 0);
  // a reload keeps it fed; scope instance again refills at the rate
  b.Configure(1000, 1000, 9 * s);
  CHECK(b.fed());
  b.SetFed(false, 0, 9 * s);
  CHECK(b.Take(1000, 10 * s) == Approx(1000));
}

TEST_CASE("shared_bucket: a delayed request on a fed bucket waits at least the feeder's tick") {
  using keyfence::ratelimit::BorrowingBucket;
  using keyfence::ratelimit::SharedBucket;
  SharedBucket fed, plain;
  fed.SetFed(true, 0, 0);
  fed.Configure(100000, 100000, 0);
  plain.Configure(100000, 1, 0);
  BorrowingBucket a(&fed), b(&plain);
  CHECK_FALSE(a.TryTake(1, 1));
  CHECK(a.WaitNs(1) >= BorrowingBucket::kFedMinWaitNs);
  CHECK(b.TryTake(1, 1));
  CHECK_FALSE(b.TryTake(1, 1));
  CHECK(b.WaitNs(1) < BorrowingBucket::kFedMinWaitNs);  // unfed: as before
}
