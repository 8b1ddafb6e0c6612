// The decision log's rate limit: one line a second per reason, the others counted.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "proxy/base/decision_throttle.h"

using keyfence::proxy::DecisionThrottle;
using keyfence::proxy::RejectReason;

TEST_CASE("decision throttle: one line a second per reason, carrying the count of the rest") {
  DecisionThrottle t;
  uint64_t suppressed = 99;
  const uint64_t s = 1'000'000'000;
  CHECK(t.Admit(RejectReason::kDenied, 10 * s, &suppressed));
  CHECK(suppressed == 0);
  for (int i = 0; i < 500; ++i) CHECK_FALSE(t.Admit(RejectReason::kDenied, 10 * s + i, &suppressed));
  CHECK(t.Admit(RejectReason::kRateLimit, 10 * s, &suppressed));  // another reason: its own line
  CHECK_FALSE(t.Admit(RejectReason::kDenied, 11 * s - 1, &suppressed));
  CHECK(t.Admit(RejectReason::kDenied, 11 * s, &suppressed));
  CHECK(suppressed == 501);
}

TEST_CASE("decision throttle: across threads exactly one admitted per interval") {
  DecisionThrottle t;
  std::atomic<int> admitted{0};
  std::atomic<uint64_t> counted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 10000; ++j) {
        uint64_t s = 0;
        if (t.Admit(RejectReason::kDenied, 5, &s)) {
          admitted.fetch_add(1);
          counted.fetch_add(s);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(admitted == 1);
  uint64_t rest = 0;
  CHECK(t.Admit(RejectReason::kDenied, 5 + DecisionThrottle::kIntervalNs, &rest));
  CHECK(rest + admitted == 40000);
}
