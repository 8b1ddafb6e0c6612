// Rate limit of the decision log (issue 13): at most one line a second per
// tenant and reason, across every worker (one throttle per tenant, in
// TenantShared, and one for connections that have not authenticated yet). The
// line that is written says how many like it were not. Lock-free; touched only
// when a request is refused, never on the common path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "proxy/base/metrics.h"

namespace keyfence::proxy {

class DecisionThrottle {
 public:
  static constexpr uint64_t kIntervalNs = 1'000'000'000;

  // True when this decision gets a line; *suppressed: how many were not
  // logged since the previous line of the same reason.
  bool Admit(RejectReason reason, uint64_t now_ns, uint64_t* suppressed) {
    Slot& s = slots_[static_cast<size_t>(reason)];
    uint64_t next = s.next_ns.load(std::memory_order_relaxed);
    if (now_ns < next ||
        !s.next_ns.compare_exchange_strong(next, now_ns + kIntervalNs, std::memory_order_relaxed)) {
      s.suppressed.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    *suppressed = s.suppressed.exchange(0, std::memory_order_relaxed);
    return true;
  }

 private:
  struct Slot {
    std::atomic<uint64_t> next_ns{0};
    std::atomic<uint64_t> suppressed{0};
  };
  std::array<Slot, kNumRejectReasons> slots_;
};

}  // namespace keyfence::proxy
