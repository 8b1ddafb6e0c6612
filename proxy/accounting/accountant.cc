#include "proxy/accounting/accountant.h"

#include <unistd.h>

#include <chrono>
#include <ctime>

#include <spdlog/spdlog.h>

#include "proxy/accounting/analysis.h"
#include "proxy/accounting/run.h"
#include "proxy/accounting/store.h"

namespace keyfence::proxy::accounting {

namespace {

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

uint64_t MonoMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string InstanceName() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

nlohmann::json ParseOrNull(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_discarded() || !j.is_object() ? nlohmann::json(nullptr) : j;
}

uint64_t FinishedAt(const nlohmann::json& report) {
  if (!report.is_object() || !report.contains("report")) return 0;
  return report["report"].value("finished_at_ms", uint64_t{0});
}

bool HasQuota(const config::Tenant& t) {
  return (t.limits.memory_quota_bytes | t.limits.max_keys) != 0;
}

constexpr uint64_t kNoTrigger = UINT64_MAX / 2;

}  // namespace

Accountant::Accountant(config::SnapshotPtr snap, TenantRegistry& tenants, MapSource map)
    : tenants_(tenants), map_source_(std::move(map)), instance_(InstanceName()),
      snap_(std::move(snap)) {
  last_ = ParseOrNull(ReportStore::LoadFile(snap_->accounting.state_dir, "last"));
  baseline_ = ParseOrNull(ReportStore::LoadFile(snap_->accounting.state_dir, "baseline"));
}

Accountant::~Accountant() { Stop(); }

void Accountant::Start() { loop_ = std::thread([this] { Loop(); }); }

void Accountant::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  if (run_.joinable()) run_.join();
}

void Accountant::Reconfigure(config::SnapshotPtr snap) {
  std::lock_guard lock(mu_);
  snap_ = std::move(snap);
}

bool Accountant::RequestRun() {
  if (running_.load()) return false;
  {
    std::lock_guard lock(mu_);
    run_requested_ = true;
  }
  cv_.notify_all();
  return true;
}

std::vector<config::Endpoint> Accountant::Masters(const config::Snapshot& snap,
                                                  SlotMapPtr map) const {
  if (snap.backend.mode == config::BackendMode::kCluster) {
    return map ? map->masters : std::vector<config::Endpoint>{};
  }
  if (snap.backend.nodes.empty()) return {};
  return {snap.backend.nodes.front()};
}

void Accountant::Loop() {
  uint64_t next_poll = 0, next_fleet = 0;
  for (;;) {
    config::SnapshotPtr snap;
    bool run = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(kTickMs),
                   [this] { return stop_ || run_requested_ || fleet_wanted_; });
      if (stop_) return;
      snap = snap_;
      run = std::exchange(run_requested_, false);
      if (std::exchange(fleet_wanted_, false)) next_fleet = 0;
    }
    SlotMapPtr map = map_source_ ? map_source_() : nullptr;
    const std::vector<config::Endpoint> masters = Masters(*snap, map);
    if (run) StartRun(snap, "request");
    const uint64_t mono = MonoMs();
    if (mono >= next_poll) {
      std::vector<config::Endpoint> nodes = snap->backend.nodes;
      if (map) {
        nodes = map->masters;
        for (const auto& rs : map->replicas) nodes.insert(nodes.end(), rs.begin(), rs.end());
      }
      PollMemory(*snap, nodes);
      next_poll = mono + kMemoryPollMs;
    }
    if (!masters.empty()) MeasureQuotas(*snap, masters, NowMs());
    MaybeSchedule(snap);
    if (mono >= next_fleet) {
      RefreshFromFleet(*snap);
      next_fleet = mono + kFleetRefreshMs;
    }
  }
}

void Accountant::PollMemory(const config::Snapshot& snap,
                            const std::vector<config::Endpoint>& nodes) {
  std::vector<NodeMemory> out;
  for (const config::Endpoint& n : nodes) out.push_back(accounting::PollMemory(n, snap.backend));
  std::lock_guard lock(mu_);
  memory_ = std::move(out);
}

void Accountant::MeasureQuotas(const config::Snapshot& snap,
                               const std::vector<config::Endpoint>& masters, uint64_t now_ms) {
  for (const config::Tenant& t : snap.tenants) {
    if (!HasQuota(t)) continue;
    TenantQuota& q = tenants_.Get(t.app).quota;
    Measured& m = measured_[t.app];
    const bool wanted = q.measure_wanted.load(std::memory_order_relaxed);
    // Periodically while the figure can have moved: writes since, or over
    // (a cleanup by DEL, an expiry), or never measured.
    const bool due = now_ms - m.at_ms >= snap.accounting.quota_refresh_ms &&
                     (q.over.load() || q.written.load() != m.written || m.at_ms == 0);
    if (!(wanted && now_ms - m.at_ms >= kMinMeasureGapMs) && !due) continue;
    if (now_ms < m.retry_at_ms) continue;
    q.measure_wanted.store(false, std::memory_order_relaxed);
    const uint64_t w0 = q.written.load(), n0 = q.writes.load();
    m.at_ms = now_ms;
    m.written = w0;
    NamespaceFigures f = MeasureNamespace(masters, snap.backend, t.prefix);
    if (!f.ok) {  // keeps the last verdict; tried again in a while
      m.retry_at_ms = now_ms + kMeasureRetryMs;
      continue;
    }
    const uint64_t mem = static_cast<uint64_t>(f.memory), keys = static_cast<uint64_t>(f.keys);
    const uint64_t quota = t.limits.memory_quota_bytes, max_keys = t.limits.max_keys;
    const bool over = (quota != 0 && mem > quota) || (max_keys != 0 && keys > max_keys);
    q.bytes_trigger.store(quota == 0 ? kNoTrigger : w0 + (quota > mem ? quota - mem : 0));
    q.writes_trigger.store(max_keys == 0 ? kNoTrigger : n0 + (max_keys > keys ? max_keys - keys : 0));
    q.memory_bytes.store(f.memory);
    q.keys.store(f.keys);
    q.measured_at_ms.store(now_ms);
    if (q.over.exchange(over) != over) {
      if (over) {
        spdlog::warn("tenant {} is over its quota ({} bytes of {}, {} keys of {}): its writes "
                     "get -OOM", t.app, mem, quota, keys, max_keys);
      } else {
        spdlog::info("tenant {} is back under its quota ({} bytes, {} keys)", t.app, mem, keys);
      }
    }
  }
}

void Accountant::StartRun(config::SnapshotPtr snap, std::string trigger) {
  if (running_.exchange(true)) return;
  if (run_.joinable()) run_.join();  // the previous run, finished
  run_ = std::thread([this, snap = std::move(snap), trigger = std::move(trigger)] {
    RunAnalysis(snap, trigger);
    running_.store(false);
  });
}

void Accountant::RunAnalysis(const config::SnapshotPtr& snap, const std::string& trigger) {
  ReportStore store(*snap, map_source_ ? map_source_() : nullptr);
  // One analysis at a time in the fleet: each is a fork on every master.
  if (!store.Claim("running", instance_, 3600)) {
    spdlog::warn("accounting: analysis ({}) not started: another keyfence is running one, or "
                 "the backend is unreachable", trigger);
    runs_failed_.fetch_add(1);
    return;
  }
  const uint64_t started = NowMs();
  spdlog::info("accounting: analysis ({}) started", trigger);
  Analysis a(*snap, snap->accounting.top_keys, static_cast<int64_t>(started));
  AnalyzeBackend(*snap, a);
  store.Release("running");
  nlohmann::json j = a.ToJson();
  const uint64_t finished = NowMs();
  j["report"] = {{"trigger", trigger},       {"instance", instance_},
                 {"started_at_ms", started}, {"finished_at_ms", finished},
                 {"duration_ms", finished - started}};
  if (!a.complete()) {
    for (const NodeRun& n : a.nodes()) {
      if (!n.error.empty()) spdlog::error("accounting: {}: {}", n.node, n.error);
    }
    spdlog::error("accounting: analysis ({}) incomplete; the last report is kept", trigger);
    runs_failed_.fetch_add(1);
    return;
  }
  uint64_t keys = 0;
  for (const NodeRun& n : a.nodes()) keys += n.keys;
  spdlog::info("accounting: analysis ({}) done: {} keys on {} masters in {} ms", trigger, keys,
               a.nodes().size(), finished - started);
  runs_ok_.fetch_add(1);
  const std::string text = j.dump();
  const bool baseline = trigger == "schedule";
  {
    std::lock_guard lock(mu_);
    last_ = j;
    if (baseline) baseline_ = j;
  }
  ReportStore::SaveFile(snap->accounting.state_dir, "last", text);
  store.Put("last", text);
  if (baseline) {
    ReportStore::SaveFile(snap->accounting.state_dir, "baseline", text);
    store.Put("baseline", text);
  }
}

void Accountant::MaybeSchedule(const config::SnapshotPtr& snap) {
  const int at = snap->accounting.schedule_minute;
  if (at < 0) return;
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  const int minute = local.tm_hour * 60 + local.tm_min;
  if (minute < at || minute >= at + kScheduleWindowMin) return;  // never late into the day
  char day[16];
  std::strftime(day, sizeof day, "%Y-%m-%d", &local);
  if (scheduled_day_ == day) return;
  scheduled_day_ = day;
  ReportStore store(*snap, map_source_ ? map_source_() : nullptr);
  if (!store.Claim(std::string("scheduled:") + day, instance_, 2 * 86400)) {
    spdlog::info("accounting: the scheduled analysis of {} is another keyfence's", day);
    return;
  }
  StartRun(snap, "schedule");
}

void Accountant::RefreshFromFleet(const config::Snapshot& snap) {
  ReportStore store(snap, map_source_ ? map_source_() : nullptr);
  nlohmann::json last = ParseOrNull(store.Get("last"));
  nlohmann::json baseline = ParseOrNull(store.Get("baseline"));
  {
    std::lock_guard lock(mu_);
    if (FinishedAt(last) > FinishedAt(last_)) last_ = std::move(last);
    if (FinishedAt(baseline) > FinishedAt(baseline_)) baseline_ = std::move(baseline);
    ++fleet_seq_;
    fleet_at_ms_ = MonoMs();
  }
  cv_.notify_all();
}

std::string Accountant::NamespacesJson() {
  config::SnapshotPtr snap;
  nlohmann::json j, base;
  {
    // Another instance may have run an analysis: the backend's copy first,
    // unless just read (bounded wait: the cache is served if the backend is slow).
    std::unique_lock lock(mu_);
    if (MonoMs() - fleet_at_ms_ > 1000) {
      const uint64_t seq = fleet_seq_;
      fleet_wanted_ = true;
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::milliseconds(kFleetWaitMs),
                   [&] { return fleet_seq_ != seq || stop_; });
    }
    snap = snap_;
    j = last_.is_object() ? last_ : nlohmann::json{{"tenants", nlohmann::json::object()},
                                                    {"unowned", {{"keys", 0}, {"memory_bytes", 0}}},
                                                    {"report", nullptr}};
    base = baseline_;
  }
  j["running"] = running_.load();
  if (base.is_object()) {
    nlohmann::json b = {{"report", base["report"]}, {"tenants", nlohmann::json::object()}};
    for (const auto& [app, f] : base["tenants"].items()) {
      b["tenants"][app] = {{"keys", f["keys"]}, {"memory_bytes", f["memory_bytes"]}};
    }
    j["baseline"] = std::move(b);
  } else {
    j["baseline"] = nullptr;
  }
  for (auto& [app, f] : j["tenants"].items()) {
    if (!base.is_object() || !base["tenants"].contains(app)) {
      f["growth"] = nullptr;
      continue;
    }
    const auto& was = base["tenants"][app];
    const int64_t mem = f["memory_bytes"].get<int64_t>(), mem0 = was["memory_bytes"].get<int64_t>();
    nlohmann::json g = {{"memory_bytes", mem - mem0},
                        {"keys", f["keys"].get<int64_t>() - was["keys"].get<int64_t>()}};
    g["memory_ratio"] = mem0 > 0 ? nlohmann::json(static_cast<double>(mem) / mem0) : nullptr;
    f["growth"] = std::move(g);
  }
  nlohmann::json quotas = nlohmann::json::object();
  for (const config::Tenant& t : snap->tenants) {
    if (!HasQuota(t)) continue;
    TenantQuota& q = tenants_.Get(t.app).quota;
    quotas[t.app] = {{"memory_quota_bytes", t.limits.memory_quota_bytes},
                     {"max_keys", t.limits.max_keys},
                     {"memory_bytes", q.memory_bytes.load()},
                     {"keys", q.keys.load()},
                     {"over", q.over.load()},
                     {"measured_at_ms", q.measured_at_ms.load()}};
  }
  j["quotas"] = std::move(quotas);
  return j.dump();
}

std::string Accountant::MetricsText() {
  config::SnapshotPtr snap;
  std::vector<NodeMemory> memory;
  nlohmann::json last;
  {
    std::lock_guard lock(mu_);
    snap = snap_;
    memory = memory_;
    last = last_;
  }
  std::string used =
      "# HELP keyfence_backend_used_memory_bytes used_memory of each backend node (INFO memory).\n"
      "# TYPE keyfence_backend_used_memory_bytes gauge\n";
  std::string max =
      "# HELP keyfence_backend_maxmemory_bytes maxmemory of each backend node (0: no limit).\n"
      "# TYPE keyfence_backend_maxmemory_bytes gauge\n";
  for (const NodeMemory& n : memory) {
    if (!n.ok) continue;
    used += "keyfence_backend_used_memory_bytes{node=\"" + n.node + "\"} " +
            std::to_string(n.used) + "\n";
    max += "keyfence_backend_maxmemory_bytes{node=\"" + n.node + "\"} " +
           std::to_string(n.maxmemory) + "\n";
  }
  std::string mem =
      "# HELP keyfence_tenant_memory_bytes Memory of each tenant's keys: the last quota "
      "measurement, else the last analysis.\n# TYPE keyfence_tenant_memory_bytes gauge\n";
  std::string keys =
      "# HELP keyfence_tenant_keys Keys of each tenant (as keyfence_tenant_memory_bytes).\n"
      "# TYPE keyfence_tenant_keys gauge\n";
  std::string quota =
      "# HELP keyfence_tenant_memory_quota_bytes limits.memory_quota_bytes of each tenant "
      "(0: none).\n# TYPE keyfence_tenant_memory_quota_bytes gauge\n";
  std::string over =
      "# HELP keyfence_tenant_over_quota 1 while the tenant's writes get -OOM.\n"
      "# TYPE keyfence_tenant_over_quota gauge\n";
  for (const config::Tenant& t : snap->tenants) {
    const std::string label = "{tenant=\"" + t.app + "\"} ";
    TenantQuota& q = tenants_.Get(t.app).quota;
    int64_t m = q.memory_bytes.load(), k = q.keys.load();
    if (m < 0 && last.is_object() && last["tenants"].contains(t.app)) {
      m = last["tenants"][t.app]["memory_bytes"].get<int64_t>();
      k = last["tenants"][t.app]["keys"].get<int64_t>();
    }
    if (m >= 0) {
      mem += "keyfence_tenant_memory_bytes" + label + std::to_string(m) + "\n";
      keys += "keyfence_tenant_keys" + label + std::to_string(k) + "\n";
    }
    quota += "keyfence_tenant_memory_quota_bytes" + label +
             std::to_string(t.limits.memory_quota_bytes) + "\n";
    over += "keyfence_tenant_over_quota" + label + (q.over.load() ? "1" : "0") + "\n";
  }
  std::string runs =
      "# HELP keyfence_accounting_runs_total Analyses run by this instance, by result.\n"
      "# TYPE keyfence_accounting_runs_total counter\n"
      "keyfence_accounting_runs_total{result=\"ok\"} " + std::to_string(runs_ok_.load()) + "\n"
      "keyfence_accounting_runs_total{result=\"failed\"} " + std::to_string(runs_failed_.load()) +
      "\n# HELP keyfence_accounting_last_report_timestamp_seconds When the last report (of any "
      "instance) was finished.\n# TYPE keyfence_accounting_last_report_timestamp_seconds gauge\n"
      "keyfence_accounting_last_report_timestamp_seconds " +
      std::to_string(FinishedAt(last) / 1000) + "\n";
  return used + max + mem + keys + quota + over + runs;
}

}  // namespace keyfence::proxy::accounting
