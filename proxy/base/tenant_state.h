// State kept per tenant across config reloads (DESIGN.md: limits change on
// reload without resetting buckets or connection counts).
//
// TenantShared: one per tenant name for the whole process (rate-limit buckets,
// the connections' fair shares of ops/s, the connection count), created on
// first use and reconfigured in place by the control thread on every snapshot.
// TenantLocal: one per tenant per worker (borrowing views of the buckets,
// hot-key sketch, metric counters).
#pragma once

#include <atomic>

#include "absl/container/flat_hash_set.h"
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "config/config.h"
#include "proxy/base/decision_throttle.h"
#include "proxy/base/hotkeys.h"
#include "proxy/base/metrics.h"
#include "ratelimit/fair_share.h"
#include "ratelimit/shared_bucket.h"

namespace keyfence::proxy {

// The last walk of a tenant's namespace (INFO keyspace and memory).
struct KeyspaceFigures {
  int64_t keys = 0;
  int64_t expires = 0;     // keys with a TTL
  int64_t avg_ttl_ms = 0;  // over the keys with a TTL
  int64_t memory = 0;      // MEMORY USAGE summed (extrapolated past `inspected`)
  int64_t inspected = 0;   // keys whose TTL and MEMORY USAGE were read
  uint64_t as_of_ns = 0;   // when the walk ended (Loop::NowNs); 0: never
};

// limits.memory_quota_bytes / max_keys (issue 11). The accountant (control
// side) measures the namespace and publishes `over` and the triggers; workers
// count what they forward of denyoom commands and ask for a measurement once
// the count passes a trigger (the quota is then possibly crossed).
struct TenantQuota {
  std::atomic<uint64_t> written{0};     // bytes of denyoom requests forwarded (monotonic)
  std::atomic<uint64_t> writes{0};      // keys of denyoom requests forwarded (monotonic)
  std::atomic<uint64_t> shrinks{0};     // other writes forwarded (DEL, EXPIRE, *REM...): a cleanup
  std::atomic<uint64_t> bytes_trigger{0};   // `written` past this: measure now
  std::atomic<uint64_t> writes_trigger{0};  // `writes` past this: measure now
  std::atomic<bool> over{false};        // the last measurement is over a quota
  std::atomic<bool> measure_wanted{true};
  // The last measurement (also keyfence_tenant_memory_bytes / _keys); -1: none.
  std::atomic<int64_t> memory_bytes{-1};
  std::atomic<int64_t> keys{-1};
  std::atomic<uint64_t> measured_at_ms{0};  // Unix ms

  // Worker side: a denyoom request of `bytes` naming `keys` keys is forwarded.
  void Count(uint64_t bytes, uint64_t keys) {
    const uint64_t w = written.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    const uint64_t n = writes.fetch_add(keys, std::memory_order_relaxed) + keys;
    if (w > bytes_trigger.load(std::memory_order_relaxed) ||
        n > writes_trigger.load(std::memory_order_relaxed)) {
      measure_wanted.store(true, std::memory_order_relaxed);
    }
  }
};

struct TenantShared {
  ratelimit::SharedBucket ops;
  ratelimit::FairShare ops_fair;  // the connections' shares of `ops`
  ratelimit::SharedBucket bytes;
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> dedicated{0};  // dedicated backend connections of its clients
  std::atomic<int64_t> blocked{0};    // its clients waiting in a blocking command (INFO)
  std::atomic<int64_t> buffered{0};   // unread reply bytes of its clients (those over kTenantBufferFloor)
  // The tenant's own script namespace: SHAs it loaded or ran (lower case).
  // INFO keyspace/memory (taken by INFO only): the last walk, and whether a
  // walk is running (one at a time per tenant).
  std::mutex keyspace_mu;
  KeyspaceFigures keyspace;  // keyspace_mu
  uint64_t keyspace_walk_started_ns = 0;  // keyspace_mu; 0: no walk running
  // CONFIG SET notify-keyspace-events of the tenant (tenancy::NotifyFlag
  // bits; -1: the backend's, backend.notify_keyspace_events).
  std::atomic<int64_t> notify_flags{-1};
  TenantQuota quota;
  DecisionThrottle decisions;  // the decision log's lines of this tenant
  std::mutex scripts_mu;
  absl::flat_hash_set<std::string> scripts;  // scripts_mu
};

// Thread-safe registry (a mutex taken at connect/auth and reload time only).
class TenantRegistry {
 public:
  TenantShared& Get(const std::string& tenant);
  // Null when the tenant has never been used or configured.
  TenantShared* Find(const std::string& tenant);
  // Applies a snapshot's limits to every configured tenant (control thread).
  void Apply(const config::Snapshot& snap, uint64_t now_ns);

 private:
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<TenantShared>> tenants_;
};

// Worker-local.
struct TenantLocal {
  TenantShared* shared = nullptr;
  TenantCounters* counters = nullptr;
  ratelimit::BorrowingBucket ops;
  ratelimit::BorrowingBucket bytes;
  HotKeys hot;
  uint64_t big_log_ns = 0;  // last big-value log line (at most one a second)
};

}  // namespace keyfence::proxy
