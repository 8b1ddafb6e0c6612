// Cluster topology discovery (control plane, off the request path): asks the
// seed nodes, then the known masters, for CLUSTER SHARDS (falling back to
// CLUSTER SLOTS on servers without it), builds an immutable SlotMap and hands
// it to `publish`. Runs on its own thread because ControlLink calls block (each
// bounded by connect_timeout_ms). Refreshes on request (MOVED, connection
// failure, CLUSTERDOWN: coalesced) and on a timer. Seeds that are down or
// answer garbage are skipped with a log line.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend.h"
#include "proxy/backend/slot_map.h"

namespace keyfence::proxy {

// One node's answer (CLUSTER SHARDS, else CLUSTER SLOTS), or null.
std::shared_ptr<SlotMap> AskSlotMap(const config::Endpoint& ep, const config::Backend& be);
// The first seed's answer, or null: for one-off control work (keyfence analyze).
SlotMapPtr DiscoverSlotMap(const config::Backend& be);

class Topology final : public Discovery {
 public:
  using Publish = std::function<void(SlotMapPtr)>;
  Topology(config::Backend backend, Publish publish);
  ~Topology() override;

  void Start() override;
  void Stop() override;
  // Thread-safe, cheap, coalesced: ask for a refresh soon.
  void RequestRefresh() override;
  // Thread-safe: new seeds/credentials after a config reload.
  void Reconfigure(const config::Backend& backend) override;
  bool ready() const override { return has_map_.load(std::memory_order_relaxed); }

 private:
  void Run();
  SlotMapPtr Discover();
  SlotMapPtr Ask(const config::Endpoint& ep, const config::Backend& be);

  std::mutex mu_;
  std::condition_variable cv_;
  config::Backend backend_;     // mu_
  std::vector<config::Endpoint> known_;  // mu_: masters of the last map
  bool refresh_ = true;         // mu_
  bool stop_ = false;           // mu_
  Publish publish_;
  std::thread thread_;
  std::atomic<bool> has_map_{false};
  uint64_t version_ = 0;
  bool full_ = false;  // the last map had an owner for every slot (topology thread)
};

}  // namespace keyfence::proxy
