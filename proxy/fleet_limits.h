// Fleet-wide live limits (issue 13, item 3): an override PUT with ?scope=fleet
// is kept in the backend, in a hash under keyfence's reserved namespace
// (`<cluster>@__keyfence:limits`, field = tenant, value = the override's JSON),
// and announced on the channel of the same name. Every instance of the fleet
// (each sidecar) holds a subscription to it and reads the hash again on every
// announcement, on every reconnect and every 30 s, so an instance that was
// away catches up. Tenants cannot reach that key or channel: names starting
// with "__" are reserved. Own thread; Put/Clear block the caller for one
// round trip (admin requests only).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config/config.h"
#include "config/overrides.h"
#include "proxy/backend/slot_map.h"

namespace keyfence::proxy {

class FleetLimits {
 public:
  using MapSource = std::function<SlotMapPtr()>;
  // Called on the FleetLimits thread with the backend's whole set of overrides.
  using Deliver = std::function<void(config::Overrides)>;

  FleetLimits(config::SnapshotPtr snap, MapSource map, Deliver deliver);
  ~FleetLimits();  // Stop()s
  void Start();
  void Stop();
  void Reconfigure(config::SnapshotPtr snap);

  // HSET + PUBLISH / HDEL + PUBLISH. False if the backend did not take it.
  bool Put(const std::string& app, const std::string& json);
  bool Clear(const std::string& app);

  static std::string Key(const config::Snapshot& snap);  // also the channel

 private:
  void Loop();
  // One subscription, until it fails, the backend moves or Stop().
  void Hold(const config::SnapshotPtr& snap, const config::Endpoint& node);
  // Reads the hash on the key's current node and delivers it; false if it could not.
  bool Refresh(const config::Snapshot& snap);
  std::optional<config::Endpoint> NodeFor(const config::Snapshot& snap) const;
  bool Write(std::initializer_list<std::string_view> change, const std::string& app);

  MapSource map_;
  Deliver deliver_;
  mutable std::mutex mu_;
  config::SnapshotPtr snap_;  // mu_
  std::string where_;         // mu_: cluster name + nodes: a change restarts the subscription
  std::atomic<bool> stop_{false};
  std::atomic<bool> moved_{false};
  std::thread thread_;
};

}  // namespace keyfence::proxy
