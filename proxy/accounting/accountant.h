// The accountant (issue 11): keyfence's control-side loop for memory, on a
// thread of its own (never a worker, never the admin thread):
//  - every kMemoryPollMs, INFO memory of every backend node (the memory tiers'
//    keyfence_backend_used_memory_bytes / _maxmemory_bytes);
//  - the quotas: each tenant with memory_quota_bytes or max_keys has its
//    namespace measured every accounting.quota_refresh_ms, and at once (at
//    most every kMinMeasureGapMs) when its workers ask for it: they count what
//    they forward of denyoom commands and ask once that count could have
//    crossed the quota (TenantQuota); the measurement sets `over`;
//  - the analyses (run.h): daily at accounting.schedule (one instance of the
//    fleet: a claim in the backend) and on POST /analyze, on one more thread.
//    The last report, and the scheduled one as the off-peak baseline, are
//    kept in memory, in accounting.state_dir and in the backend
//    (store.h), from where every instance refreshes its copy.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "proxy/accounting/measure.h"
#include "proxy/backend/slot_map.h"
#include "proxy/base/tenant_state.h"

namespace keyfence::proxy::accounting {

constexpr int kMemoryPollMs = 5000;
constexpr int kMinMeasureGapMs = 500;
constexpr int kMeasureRetryMs = 5000;  // after a failed measurement
constexpr int kFleetRefreshMs = 30000;  // and when /namespaces is asked
constexpr int kFleetWaitMs = 1500;      // how long /namespaces waits for that refresh
constexpr int kTickMs = 100;
constexpr int kScheduleRetryMs = 60000;  // after the scheduled run found another one going on
constexpr int kRunClaimS = 6 * 3600;     // the fleet-wide "running" claim (released at the end)
constexpr int kScheduleWindowMin = 10;  // a scheduled run starts within this of its time, or not that day

class Accountant {
 public:
  using MapSource = std::function<SlotMapPtr()>;  // the cluster's last slot map (or null)
  Accountant(config::SnapshotPtr snap, TenantRegistry& tenants, MapSource map);
  ~Accountant();  // Stop()s

  void Start();
  void Stop();
  void Reconfigure(config::SnapshotPtr snap);
  // POST /analyze: false when a run is already going on here.
  bool RequestRun();
  // GET /namespaces.
  std::string NamespacesJson();
  // The memory tiers' and tenants' gauges (Prometheus text).
  std::string MetricsText();

 private:
  void Loop();
  void Turn(const config::SnapshotPtr& snap, bool run, uint64_t* next_poll, uint64_t* next_fleet);
  void PollMemory(const config::Snapshot& snap, const std::vector<config::Endpoint>& nodes);
  void MeasureQuotas(const config::Snapshot& snap, const std::vector<config::Endpoint>& masters,
                     uint64_t now_ms);
  void MaybeSchedule(const config::SnapshotPtr& snap);
  void RefreshFromFleet(const config::Snapshot& snap);
  void StartRun(config::SnapshotPtr snap, std::string trigger);  // unless one is running
  void RunAnalysis(const config::SnapshotPtr& snap, const std::string& trigger);
  std::vector<config::Endpoint> Masters(const config::Snapshot& snap, SlotMapPtr map) const;

  TenantRegistry& tenants_;
  MapSource map_source_;
  const std::string instance_;  // host name and pid: who ran an analysis, who holds a claim

  std::mutex mu_;
  std::condition_variable cv_;
  config::SnapshotPtr snap_;     // mu_
  bool stop_ = false;            // mu_
  bool run_requested_ = false;   // mu_
  bool fleet_wanted_ = false;    // mu_: /namespaces wants the backend's copy
  uint64_t fleet_seq_ = 0;       // mu_: refreshes done
  uint64_t fleet_at_ms_ = 0;     // mu_: the last one (monotonic)
  nlohmann::json last_;          // mu_: last report (null: none)
  nlohmann::json baseline_;      // mu_: last scheduled report (null: none)
  std::vector<NodeMemory> memory_;  // mu_
  struct Measured {
    uint64_t at_ms = 0;    // last measurement started (monotonic ms); 0: never
    uint64_t written = 0;  // TenantQuota::written then
    uint64_t shrinks = 0;  // TenantQuota::shrinks then
    uint64_t retry_at_ms = 0;  // after a failed measurement (backend down): not before
    bool failing = false;      // logged once per failure streak
  };
  std::map<std::string, Measured> measured_;  // loop thread: per tenant with a quota
  std::string scheduled_day_;    // loop thread: "YYYY-MM-DD" of the last scheduled run
  uint64_t schedule_retry_at_ = 0;  // loop thread: monotonic ms

  std::atomic<bool> running_{false};
  std::atomic<bool> cancel_{false};          // Stop(): analyses and measurements end early
  std::atomic<bool> schedule_failed_{false};  // the scheduled run could not start: try again
  std::atomic<uint64_t> runs_ok_{0}, runs_failed_{0};
  std::thread loop_;
  std::thread run_;  // the analysis (joined before the next one)
};

}  // namespace keyfence::proxy::accounting
