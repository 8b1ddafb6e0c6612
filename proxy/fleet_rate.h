// Fleet-wide tenant limits (issue 14, limits.scope: fleet): one ops_per_sec and
// one bytes_per_sec budget for every keyfence instance of a cluster_name, kept in
// the backend as a token bucket under keyfence's reserved namespace
// (`<cluster>@__keyfence:{fleet:<tenant>}:ops`, a hash of tokens and time,
// refilled by a Lua script with the server's clock, so instances need no common
// clock). Workers never see the backend: they borrow from the process's
// SharedBucket as for scope instance; this feeder (its own thread) keeps that
// bucket stocked with chunks it takes from the backend's bucket, sized from the
// instance's recent rate (about 250 ms of it), so the backend sees a few calls
// per second per tenant and instance whatever the request rate. Each call also
// counts the live instances (those that asked in the last 3 s). While the
// backend bucket cannot be reached the process bucket refills on its own at the
// fallback share, limit / live instances (the last count seen, else
// limits.fleet_instances), and says so in a log line and a gauge.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "config/config.h"
#include "proxy/backend/slot_map.h"
#include "proxy/base/tenant_state.h"

namespace keyfence::proxy {

class ControlLink;

class FleetRate {
 public:
  using MapSource = std::function<SlotMapPtr()>;
  FleetRate(config::SnapshotPtr snap, TenantRegistry& tenants, MapSource map);
  ~FleetRate();  // Stop()s
  void Start();
  void Stop();
  void Reconfigure(config::SnapshotPtr snap);

  // Prometheus text: keyfence_tenant_fleet_instances, _fleet_fallback, _fleet_rate,
  // keyfence_fleet_bucket_calls_total (per tenant with scope fleet).
  std::string MetricsText() const;
  // {"instances":N,"mode":"shared"|"fallback",...} for /tenants; "" if not fleet.
  std::string TenantJson(const std::string& tenant) const;

  static constexpr uint64_t kTickMs = 20;
  static constexpr double kChunkSeconds = 0.25;   // of the recent rate per call
  static constexpr uint64_t kLiveWindowMs = 3000;  // an instance is live this long after a call

 private:
  struct Budget;  // one tenant's ops or bytes budget
  struct View {   // what the metrics and /tenants show (mu_)
    uint64_t instances = 0;
    bool fallback = false;
    double fleet_rate = 0;  // tokens/s granted fleet-wide, from the bucket's total
    uint64_t calls = 0;
    double local_tokens = 0;
  };
  void Loop();
  void Feed(const config::Snapshot& snap, const config::Tenant& t, bool bytes, uint64_t now_ns);
  ControlLink* LinkFor(const config::Snapshot& snap, const std::string& key,
                       std::string* node_name);
  bool Call(ControlLink* link, const std::string& key, const Budget& b, double rate, double burst,
            double want, double* granted, uint64_t* wait_ms, uint64_t* instances,
            double* total);

  TenantRegistry& tenants_;
  MapSource map_;
  const std::string instance_;  // host:pid:random, this instance's member in the live set
  std::mutex snap_mu_;
  config::SnapshotPtr snap_;  // snap_mu_
  std::map<std::string, std::unique_ptr<Budget>> budgets_;     // feeder thread
  std::map<std::string, std::unique_ptr<ControlLink>> links_;  // feeder thread, by node
  std::map<std::string, std::string> script_sha_;              // feeder thread, by node
  std::set<std::string> failed_nodes_;                         // feeder thread, this pass
  mutable std::mutex view_mu_;
  std::map<std::string, View> views_;  // view_mu_: by tenant (ops)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace keyfence::proxy
