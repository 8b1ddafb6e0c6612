#include "proxy/fleet_limits.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "protocol/slot.h"
#include "proxy/backend/control_link.h"

namespace keyfence::proxy {

namespace {

constexpr int kSilenceMs = 2000;          // then a PING: a dead link is noticed
constexpr int kRefreshEveryMs = 30000;    // the hash read again even without an announcement
constexpr auto kRetryDelay = std::chrono::milliseconds(1000);
constexpr uint32_t kWriteTimeoutMs = 1000;  // per step of a PUT's backend write

std::string Where(const config::Snapshot& s) {
  std::string w = s.cluster_name + "|" + std::to_string(static_cast<int>(s.backend.mode));
  for (const auto& n : s.backend.nodes) w += "|" + n.ToString();
  for (const auto& n : s.backend.sentinel.nodes) w += "|" + n.ToString();
  return w;
}

}  // namespace

FleetLimits::FleetLimits(config::SnapshotPtr snap, MapSource map, Deliver deliver)
    : map_(std::move(map)), deliver_(std::move(deliver)), snap_(std::move(snap)),
      where_(Where(*snap_)) {}

FleetLimits::~FleetLimits() { Stop(); }

std::string FleetLimits::Key(const config::Snapshot& snap) {
  return snap.cluster_name + "@__keyfence:limits";
}

void FleetLimits::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void FleetLimits::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void FleetLimits::Reconfigure(config::SnapshotPtr snap) {
  std::lock_guard l(mu_);
  std::string w = Where(*snap);
  if (w != where_) moved_ = true;
  where_ = std::move(w);
  snap_ = std::move(snap);
}

std::optional<config::Endpoint> FleetLimits::NodeFor(const config::Snapshot& snap) const {
  SlotMapPtr map = map_ ? map_() : nullptr;
  if (snap.backend.mode == config::BackendMode::kStandalone) {
    if (snap.backend.nodes.empty()) return std::nullopt;
    return snap.backend.nodes.front();
  }
  if (!map || map->masters.empty()) return std::nullopt;
  if (snap.backend.mode == config::BackendMode::kSentinel) return map->masters.front();
  const int16_t owner = map->owner[protocol::KeySlot(Key(snap))];
  if (owner < 0) return std::nullopt;
  return map->masters[static_cast<size_t>(owner)];
}

bool FleetLimits::Write(std::initializer_list<std::string_view> change, const std::string& app) {
  config::SnapshotPtr snap;
  {
    std::lock_guard l(mu_);
    snap = snap_;
  }
  const std::optional<config::Endpoint> node = NodeFor(*snap);
  if (!node) return false;
  // The admin request (and so the control thread) waits for this: bounded tighter.
  config::Backend be = snap->backend;
  be.connect_timeout_ms = std::min<uint32_t>(be.connect_timeout_ms, kWriteTimeoutMs);
  std::unique_ptr<ControlLink> link = ControlLink::Open(*node, be, "fleet limits");
  if (!link) return false;
  std::optional<ControlReply> r = link->Command(change);
  if (!r || r->is_error()) {
    spdlog::warn("fleet limits: the backend refused the change of {}: {}", app,
                 r ? r->str : std::string("no reply"));
    return false;
  }
  const std::string key = Key(*snap);
  std::optional<ControlReply> p = link->Command({"PUBLISH", key, app});
  if (!p || p->is_error()) {  // stored: the other instances read it within 30 s
    spdlog::warn("fleet limits: stored the change of {}, but could not announce it", app);
  }
  return true;
}

bool FleetLimits::Put(const std::string& app, const std::string& json) {
  config::SnapshotPtr snap;
  {
    std::lock_guard l(mu_);
    snap = snap_;
  }
  const std::string key = Key(*snap);
  return Write({"HSET", key, app, json}, app);
}

bool FleetLimits::Clear(const std::string& app) {
  config::SnapshotPtr snap;
  {
    std::lock_guard l(mu_);
    snap = snap_;
  }
  const std::string key = Key(*snap);
  return Write({"HDEL", key, app}, app);
}

bool FleetLimits::Refresh(const config::Snapshot& snap) {
  // The key's node now (a failover or reshard may have moved it since the subscription).
  const std::optional<config::Endpoint> node = NodeFor(snap);
  if (!node) return false;
  std::unique_ptr<ControlLink> link = ControlLink::Open(*node, snap.backend, "fleet limits", &stop_);
  if (!link) return false;
  const std::string key = Key(snap);
  std::optional<ControlReply> r = link->Command({"HGETALL", key});
  if (!r || !r->is_array()) {
    spdlog::warn("fleet limits: cannot read {}: {}", key, r ? r->str : std::string("no reply"));
    return false;
  }
  config::Overrides all;
  for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
    const std::string& app = r->elements[i].str;
    if (!config::IsValidName(app) || app.starts_with("__")) {  // not a tenant name: ignored
      spdlog::warn("fleet limits: ignoring field {} of {}: not a tenant name", i / 2, key);
      continue;
    }
    std::vector<config::Diagnostic> errors;
    auto o = config::LimitsOverride::Parse(r->elements[i + 1].str, key + " " + app, &errors);
    if (!o) {  // written by something else than keyfence: left alone, said once per read
      spdlog::warn("fleet limits: ignoring the override of {}: {}", app,
                   errors.empty() ? std::string("invalid") : errors.front().ToString());
      continue;
    }
    all.emplace(app, std::move(*o));
  }
  deliver_(std::move(all));
  return true;
}

void FleetLimits::Hold(const config::SnapshotPtr& snap, const config::Endpoint& node) {
  std::unique_ptr<ControlLink> link =
      ControlLink::Open(node, snap->backend, "fleet limits subscription", &stop_);
  if (!link) return;
  const std::string key = Key(*snap);
  std::optional<ControlReply> ok = link->Command({"SUBSCRIBE", key});
  if (!ok || !ok->is_array()) return;
  if (!Refresh(*snap)) return;  // whatever was announced while this instance was away
  auto last_refresh = std::chrono::steady_clock::now();
  bool ping_out = false;
  while (!stop_ && !moved_) {
    bool silent = false;
    std::optional<ControlReply> r = link->Next(kSilenceMs, &silent);
    if (stop_ || moved_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refresh >= std::chrono::milliseconds(kRefreshEveryMs)) {
      if (!Refresh(*snap)) return;  // subscribe again, on the node of the current map
      last_refresh = now;
    }
    if (silent) {
      if (ping_out) return;  // no answer to the PING: the node is gone
      link->Append({"PING"});
      ping_out = true;
      continue;
    }
    if (!r) return;
    ping_out = false;
    if (r->is_array() && r->elements.size() >= 3 && r->elements[0].str == "message") {
      if (!Refresh(*snap)) return;
      last_refresh = now;
    }
  }
}

void FleetLimits::Loop() {
  while (!stop_) {
    config::SnapshotPtr snap;
    {
      std::lock_guard l(mu_);
      snap = snap_;
      moved_ = false;
    }
    if (std::optional<config::Endpoint> node = NodeFor(*snap)) Hold(snap, *node);
    for (auto left = kRetryDelay; left.count() > 0 && !stop_ && !moved_;
         left -= std::chrono::milliseconds(100)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace keyfence::proxy
