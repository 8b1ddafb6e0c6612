#include "proxy/fleet_rate.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "protocol/slot.h"
#include "proxy/backend/control_link.h"
#include "proxy/base/logging.h"
#include "proxy/net/loop.h"

namespace keyfence::proxy {

namespace {

// KEYS[1]: the bucket (hash: tokens, ts, granted); KEYS[2]: the live instances (zset).
// ARGV: rate, burst, want, instance, live window ms. The server's clock refills.
// Returns {granted, wait_ms, live instances, granted since the bucket was made}.
constexpr const char* kScript = R"(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'granted')
local tokens, ts, total = tonumber(b[1]), tonumber(b[2]), tonumber(b[3]) or 0
if tokens == nil or ts == nil then tokens, ts = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
if now < ts then now = ts end  -- a new master's clock behind: nothing credited twice
local g = math.max(0, math.min(want, tokens))
tokens = tokens - g
total = total + g
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now, 'granted', tostring(total))
redis.call('PEXPIRE', KEYS[1], 60000)
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], 60000)
local wait = 0
if g < want then wait = math.ceil((want - g) * 1000 / rate) end
return {tostring(g), wait, redis.call('ZCARD', KEYS[2]), tostring(total)}
)";

constexpr uint64_t kRetryMs = 500;       // after a failed call
constexpr uint64_t kMinWaitMs = 20;      // after a short grant
constexpr int kCallTimeoutMs = 250;      // the feeder never waits long on the backend

std::string InstanceId() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + std::to_string(rd());
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

}  // namespace

struct FleetRate::Budget {
  std::string app;
  bool bytes = false;
  std::string key, live_key;
  double last_taken = 0;
  uint64_t last_ns = 0;
  uint64_t last_shortfalls = 0;
  double demand = 0;          // tokens/s, smoothed
  uint64_t next_ask_ns = 0;
  bool contacted = false;     // a call has succeeded (the bucket is fed by grants)
  bool fallback = false;      // the backend bucket cannot be reached
  uint64_t instances = 0;     // live, at the last call
  double total = 0;           // the bucket's granted total at the last rate sample
  uint64_t total_at_ns = 0;
  double fleet_rate = 0;
  uint64_t calls = 0;
  uint64_t last_call_ns = 0;
};

FleetRate::FleetRate(config::SnapshotPtr snap, TenantRegistry& tenants, MapSource map)
    : tenants_(tenants), map_(std::move(map)), instance_(InstanceId()), snap_(std::move(snap)) {}

FleetRate::~FleetRate() { Stop(); }

void FleetRate::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void FleetRate::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void FleetRate::Reconfigure(config::SnapshotPtr snap) {
  std::lock_guard l(snap_mu_);
  snap_ = std::move(snap);
}

void FleetRate::Loop() {
  while (!stop_) {
    config::SnapshotPtr snap;
    {
      std::lock_guard l(snap_mu_);
      snap = snap_;
    }
    failed_nodes_.clear();
    std::set<std::string> live;
    for (const config::Tenant& t : snap->tenants) {
      if (t.limits.scope != config::LimitScope::kFleet) continue;
      if (t.limits.ops_per_sec > 0) Feed(*snap, t, false, Loop::NowNs());
      if (t.limits.bytes_per_sec > 0) Feed(*snap, t, true, Loop::NowNs());
      live.insert(t.app + "/ops");
      live.insert(t.app + "/bytes");
      if (stop_) return;
    }
    // A tenant that left scope fleet (or the config): its state goes, so that coming
    // back starts afresh (first contact, shares); its metrics and /tenants entry too.
    for (auto it = budgets_.begin(); it != budgets_.end();) {
      if (live.count(it->first)) {
        ++it;
        continue;
      }
      if (!it->second->bytes) {
        std::lock_guard l(view_mu_);
        views_.erase(it->second->app);
      }
      it = budgets_.erase(it);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
  }
}

ControlLink* FleetRate::LinkFor(const config::Snapshot& snap, const std::string& key,
                                std::string* node_name) {
  const config::Endpoint* node = nullptr;
  SlotMapPtr map = map_ ? map_() : nullptr;
  if (snap.backend.mode == config::BackendMode::kStandalone) {
    if (!snap.backend.nodes.empty()) node = &snap.backend.nodes.front();
  } else if (map && !map->masters.empty()) {
    const int16_t owner = snap.backend.mode == config::BackendMode::kSentinel
                              ? 0
                              : map->owner[protocol::KeySlot(key)];
    if (owner >= 0) node = &map->masters[static_cast<size_t>(owner)];
  }
  if (node == nullptr) return nullptr;
  const std::string name = node->ToString();
  *node_name = name;
  if (failed_nodes_.count(name)) return nullptr;
  auto it = links_.find(name);
  if (it != links_.end() && it->second) return it->second.get();
  config::Backend be = snap.backend;
  be.connect_timeout_ms = std::min<uint32_t>(be.connect_timeout_ms, kCallTimeoutMs);
  std::unique_ptr<ControlLink> link = ControlLink::Open(*node, be, "fleet limits bucket", &stop_);
  if (!link) return nullptr;
  std::optional<ControlReply> sha = link->Command({"SCRIPT", "LOAD", kScript});
  if (!sha || !sha->is_string()) return nullptr;
  script_sha_[name] = sha->str;
  return (links_[name] = std::move(link)).get();
}

bool FleetRate::Call(ControlLink* link, const std::string& key, const Budget& b, double rate,
                     double burst, double want, double* granted, uint64_t* wait_ms,
                     uint64_t* instances, double* total) {
  const std::string& sha = script_sha_[link->node()];
  const std::string r = Num(rate), bu = Num(burst), w = Num(want),
                    live = std::to_string(kLiveWindowMs);
  std::optional<ControlReply> reply =
      link->Command({"EVALSHA", sha, "2", key, b.live_key, r, bu, w, instance_, live});
  if (reply && reply->is_error() && reply->str.starts_with("NOSCRIPT")) {
    reply = link->Command({"EVAL", kScript, "2", key, b.live_key, r, bu, w, instance_, live});
  }
  if (!reply || !reply->is_array() || reply->elements.size() != 4) {
    if (reply && reply->is_error()) {
      spdlog::debug("fleet bucket {}: {}", key, reply->str);
    }
    return false;
  }
  try {
    *granted = std::stod(reply->elements[0].str);
    *wait_ms = static_cast<uint64_t>(std::max<int64_t>(0, reply->elements[1].integer));
    *instances = static_cast<uint64_t>(std::max<int64_t>(0, reply->elements[2].integer));
    *total = std::stod(reply->elements[3].str);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

void FleetRate::Feed(const config::Snapshot& snap, const config::Tenant& t, bool bytes,
                     uint64_t now) {
  const std::string id = t.app + (bytes ? "/bytes" : "/ops");
  std::unique_ptr<Budget>& slot = budgets_[id];
  if (!slot) {
    slot = std::make_unique<Budget>();
    slot->app = t.app;
    slot->bytes = bytes;
    const std::string base = snap.cluster_name + "@__keyfence:{fleet:" + t.app + "}:";
    slot->key = base + (bytes ? "bytes" : "ops");
    slot->live_key = base + (bytes ? "live:bytes" : "live:ops");
    slot->last_ns = now;
  }
  Budget& b = *slot;
  TenantShared& ts = tenants_.Get(t.app);
  ratelimit::SharedBucket& bucket = bytes ? ts.bytes : ts.ops;
  const double rate = bucket.rate();
  if (rate <= 0 || !bucket.fed()) return;
  const double burst = bucket.capacity();

  // The instance's demand: what its workers took, smoothed; a shortfall means
  // they wanted more than there was.
  const double taken = bucket.taken();
  const double dt = static_cast<double>(now - b.last_ns) / 1e9;
  if (dt > 0) {
    const double used = std::max(0.0, taken - b.last_taken) / dt;
    b.demand = b.demand * 0.7 + used * 0.3;
  }
  b.last_taken = taken;
  b.last_ns = now;
  const uint64_t shorts = bucket.shortfalls();
  const bool starving = shorts != b.last_shortfalls;
  b.last_shortfalls = shorts;

  const double floor = std::max(1.0, rate * 0.01);
  double target = std::max(floor, b.demand * kChunkSeconds);
  if (starving) target = std::max(target, rate * 0.05);
  target = std::min(target, std::max(1.0, burst));
  const double level = bucket.tokens();
  const double n_share = static_cast<double>(
      std::max<uint64_t>(1, b.instances ? b.instances : t.limits.fleet_instances));
  if (b.fallback) bucket.SetFedRefill(rate / n_share, now);  // a reload may change the share
  // A call when the stock runs low, and at least once a second (a heartbeat that keeps
  // the instance in the live set); in fallback every kRetryMs whatever the stock.
  const bool heartbeat = now - b.last_call_ns >= 1'000'000'000;
  if (now < b.next_ask_ns) return;
  if (!b.fallback && !heartbeat && level >= target / 2) return;
  if (snap.backend.mode != config::BackendMode::kStandalone && (!map_ || !map_())) {
    return;  // no slot map yet: not a failure (the pre-contact share applies meanwhile)
  }

  double granted = 0, total = 0;
  uint64_t wait_ms = 0, instances = 0;
  std::string node;
  ControlLink* link = LinkFor(snap, b.key, &node);
  // A node that failed in this pass is not tried again for the next budget: every
  // budget on it goes to its fallback at once instead of waiting out a timeout each.
  const bool ok = link != nullptr && !failed_nodes_.count(node) &&
                  Call(link, b.key, b, rate, burst, std::max(0.0, target - std::max(0.0, level)),
                       &granted, &wait_ms, &instances, &total);
  ++b.calls;
  b.last_call_ns = now;
  if (!ok) {
    if (!node.empty()) {
      failed_nodes_.insert(node);
      links_.erase(node);  // reopened at the next call
    }
    if (!b.fallback) {
      b.fallback = true;
      const double n = n_share;
      bucket.SetFedRefill(rate / n, now);
      LogEvent(spdlog::level::warn, "fleet bucket unreachable: local share",
               {{"tenant", t.app}, {"budget", bytes ? "bytes_per_sec" : "ops_per_sec"},
                {"share_per_sec", static_cast<uint64_t>(rate / n)},
                {"instances", static_cast<uint64_t>(n)}});
    }
    b.next_ask_ns = now + kRetryMs * 1000000;
  } else {
    if (b.fallback || !b.contacted) {
      bucket.SetFedRefill(0, now);  // from now on only grants
      if (b.fallback) {
        LogEvent(spdlog::level::warn, "fleet bucket reachable again: shared budget",
                 {{"tenant", t.app}, {"budget", bytes ? "bytes_per_sec" : "ops_per_sec"}});
      }
      b.fallback = false;
      b.contacted = true;
    }
    bucket.Deposit(granted);
    b.instances = instances;
    if (b.total_at_ns == 0 || total < b.total) {
      b.total = total;
      b.total_at_ns = now;
    } else if (now - b.total_at_ns >= 1'000'000'000) {
      b.fleet_rate = (total - b.total) / (static_cast<double>(now - b.total_at_ns) / 1e9);
      b.total = total;
      b.total_at_ns = now;
    }
    b.next_ask_ns = granted + 1e-9 < target - level
                        ? now + std::max(kMinWaitMs, wait_ms) * 1000000
                        : 0;
  }
  if (!bytes) {
    std::lock_guard l(view_mu_);
    View& v = views_[t.app];
    v.instances = b.instances;
    v.fallback = b.fallback;
    v.fleet_rate = b.fleet_rate;
    v.calls = b.calls;
    v.local_tokens = bucket.tokens();
  }
}

std::string FleetRate::MetricsText() const {
  std::lock_guard l(view_mu_);
  if (views_.empty()) return "";
  std::string inst =
      "# HELP keyfence_tenant_fleet_instances keyfence instances sharing the tenant's fleet "
      "budget (live: asked in the last 3 s).\n# TYPE keyfence_tenant_fleet_instances gauge\n";
  std::string fb =
      "# HELP keyfence_tenant_fleet_fallback 1 while the fleet bucket cannot be reached and "
      "this instance enforces limit / instances on its own.\n"
      "# TYPE keyfence_tenant_fleet_fallback gauge\n";
  std::string rate =
      "# HELP keyfence_tenant_fleet_rate Operations per second the fleet bucket granted to "
      "every instance together (the fleet-wide accepted rate).\n"
      "# TYPE keyfence_tenant_fleet_rate gauge\n";
  std::string calls =
      "# HELP keyfence_fleet_bucket_calls_total Calls of this instance to the tenant's fleet "
      "bucket in the backend.\n# TYPE keyfence_fleet_bucket_calls_total counter\n";
  for (const auto& [app, v] : views_) {
    const std::string lab = "{tenant=\"" + app + "\"} ";
    inst += "keyfence_tenant_fleet_instances" + lab + std::to_string(v.instances) + "\n";
    fb += "keyfence_tenant_fleet_fallback" + lab + (v.fallback ? "1" : "0") + "\n";
    rate += "keyfence_tenant_fleet_rate" + lab + Num(v.fleet_rate) + "\n";
    calls += "keyfence_fleet_bucket_calls_total" + lab + std::to_string(v.calls) + "\n";
  }
  return inst + fb + rate + calls;
}

std::string FleetRate::TenantJson(const std::string& tenant) const {
  std::lock_guard l(view_mu_);
  auto it = views_.find(tenant);
  if (it == views_.end()) return "";
  const View& v = it->second;
  return "{\"instances\":" + std::to_string(v.instances) + ",\"mode\":\"" +
         (v.fallback ? "fallback" : "shared") + "\",\"fleet_rate\":" + Num(v.fleet_rate) +
         ",\"local_tokens\":" + Num(v.local_tokens) + ",\"bucket_calls\":" +
         std::to_string(v.calls) + "}";
}

}  // namespace keyfence::proxy
