// The process: the control thread (signals, config reload, admin HTTP,
// backend readiness probe) and the workers. Builds and publishes config
// snapshots; workers pick them up between requests.
#pragma once

#include "proxy/backend/acl_users.h"

#include "absl/container/flat_hash_map.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>

#include "config/config.h"
#include "config/overrides.h"
#include "proxy/admin/admin_server.h"
#include "proxy/config_watcher.h"
#include "proxy/backend/backend.h"
#include "proxy/base/metrics.h"
#include "proxy/session/session_host.h"
#include "proxy/base/tenant_state.h"

namespace keyfence::proxy {

class Worker;
class UnixListener;
class FleetLimits;
class FleetRate;
namespace accounting {
class Accountant;
}

class Server {
 public:
  Server(std::string config_path, config::SnapshotPtr initial);
  ~Server();

  // Binds listeners and admin, runs until SIGTERM/SIGINT, drains, returns the exit code.
  int Run();

  // Global client cap (max_clients); called by workers at accept/close time.
  bool TryAddClient();
  void RemoveClient();
  // Connections that have not authenticated yet (gateway listeners), per
  // client address (limits.max_unauthenticated_per_ip) and in total (half of
  // max_clients, so they never take every slot). Thread-safe (a mutex: at
  // connect and AUTH time only).
  bool TryAddUnauthenticated(const std::string& addr, uint32_t per_addr, uint64_t total);
  void RemoveUnauthenticated(const std::string& addr);

  // Reloads the config file: (true, json with the version) or (false, errors).
  std::pair<bool, std::string> Reload();
  // keyfence_build_info{version,revision} (main knows the revision).
  void SetBuildInfo(std::string version, std::string revision) {
    metrics_->SetBuildInfo(std::move(version), std::move(revision));
  }
  TenantRegistry& tenants() { return tenants_; }
  AclUsers& acl() { return acl_; }
  const MetricsRegistry& registry() const { return *metrics_; }
  // Any worker thread: runs `visit` on every worker's thread, then `done` with
  // the answers (in worker order) on `origin`'s thread.
  // Runs fn(worker) on worker `index`'s thread (nothing if there is none).
  void PostToWorker(uint64_t index, std::function<void(Worker&)> fn);
  void AskAllWorkers(Worker& origin, SessionHost::SessionVisit visit,
                     std::function<void(std::vector<std::string>)> done);
  // Thread-safe; no-op in standalone mode.
  void RequestTopologyRefresh();

 private:
  // backend.acl: the nodes whose tenant users are set now (configured, or of the topology).
  std::vector<config::Endpoint> AclNodes(const config::Snapshot& snap) const;
  AclUsers acl_;
  mutable std::mutex map_mu_;
  SlotMapPtr last_map_;  // map_mu_
  std::mutex unauth_mu_;
  absl::flat_hash_map<std::string, uint32_t> unauth_by_addr_;  // unauth_mu_
  uint64_t unauth_total_ = 0;                                  // unauth_mu_
  void Publish(config::SnapshotPtr snap);
  void ProbeBackend();
  static std::vector<std::string> TlsFiles(const config::Snapshot& snap);
  void WaitSignal();
  std::string TenantsJson();
  std::pair<int, std::string> HotKeysJson(std::string_view tenant);
  std::vector<std::pair<std::string, uint64_t>> HotKeys(const std::string& tenant, size_t n);
  std::string HotKeysMetricText();
  // GET /bigkeys: the tenant's big keys merged over workers (largest size, summed count).
  std::pair<int, std::string> BigKeysJson(std::string_view tenant);
  // server_limits.cc: live limits (PUT / DELETE /tenants/<name>/limits).
  std::pair<int, std::string> TenantLimits(bool put, std::string_view tenant,
                                           std::string_view body, std::string_view query);
  config::Overrides MergedOverrides() const;
  config::SnapshotPtr Effective(const config::SnapshotPtr& file, uint64_t version) const;
  void KeepOverrides(const config::Snapshot& old_file, const config::Snapshot& new_file);
  void PublishEffective(const std::string& why);
  void OnFleetOverrides(config::Overrides fleet);
  std::string DriftJson() const;
  std::string ConfigJson();

  std::string config_path_;
  config::SnapshotPtr snapshot_;  // control thread only: the running config
  config::SnapshotPtr file_snapshot_;  // control thread: the file's, before the overrides
  config::Overrides instance_overrides_;  // control thread: PUT on this instance
  config::Overrides fleet_overrides_;     // control thread: PUT ?scope=fleet (the backend's)
  std::unique_ptr<FleetLimits> fleet_;
  std::unique_ptr<FleetRate> fleet_rate_;  // limits.scope: fleet (issue 14)
  std::mutex snapshot_mu_;        // guards snapshot_ for the admin /config reader
  boost::asio::io_context control_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer probe_timer_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<Discovery> topology_;  // null: nothing to discover (standalone)
  std::unique_ptr<accounting::Accountant> accountant_;
  std::vector<std::unique_ptr<UnixListener>> unix_listeners_;  // removed at exit
  std::unique_ptr<MetricsRegistry> metrics_;
  TenantRegistry tenants_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int64_t> clients_{0};
  std::atomic<int64_t> max_clients_{0};  // snapshot_->max_clients, for the workers
  std::atomic<bool> backend_ok_{false};
  std::atomic<bool> listening_{false};
  uint64_t next_version_;
};

}  // namespace keyfence::proxy
