#include "proxy/accounting/accountant.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <exception>

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

// A number field of an object, or `def` (missing, null, not a number, not an object).
int64_t Num(const nlohmann::json& j, const char* key, int64_t def = 0) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : def;
}

// A report as this version writes it: {"report": {"finished_at_ms"...},
// "tenants": {app: {"keys", "memory_bytes", ...}}}. Anything else (another
// version's, a corrupt file or key) is refused whole, so that nothing below
// meets a surprise.
bool ValidReport(const nlohmann::json& j) {
  if (!j.is_object()) return false;
  auto r = j.find("report");
  auto t = j.find("tenants");
  if (r == j.end() || !r->is_object() || Num(*r, "finished_at_ms", -1) < 0) return false;
  if (t == j.end() || !t->is_object()) return false;
  for (const auto& [app, f] : t->items()) {
    if (Num(f, "keys", -1) < 0 || Num(f, "memory_bytes", -1) < 0) return false;
  }
  return true;
}

nlohmann::json ParseOrNull(const std::optional<std::string>& text, const char* what) {
  if (!text) return nullptr;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !ValidReport(j)) {
    spdlog::warn("accounting: {} is not a report keyfence can read; ignored", what);
    return nullptr;
  }
  return j;
}

uint64_t FinishedAt(const nlohmann::json& report) {
  if (!report.is_object()) return 0;
  auto r = report.find("report");
  return r == report.end() ? 0 : static_cast<uint64_t>(Num(*r, "finished_at_ms"));
}

bool HasQuota(const config::Tenant& t) {
  return (t.limits.memory_quota_bytes | t.limits.max_keys) != 0;
}

constexpr uint64_t kNoTrigger = UINT64_MAX / 2;

}  // namespace

Accountant::Accountant(config::SnapshotPtr snap, TenantRegistry& tenants, MapSource map)
    : tenants_(tenants), map_source_(std::move(map)), instance_(InstanceName()),
      snap_(std::move(snap)) {
  last_ = ParseOrNull(ReportStore::LoadFile(snap_->accounting.state_dir, "last"), "last.json");
  baseline_ = ParseOrNull(ReportStore::LoadFile(snap_->accounting.state_dir, "baseline"),
                          "baseline.json");
}

Accountant::~Accountant() { Stop(); }

void Accountant::Start() { loop_ = std::thread([this] { Loop(); }); }

void Accountant::Stop() {
  cancel_.store(true);
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
  if (snap.backend.mode != config::BackendMode::kStandalone) {  // cluster, sentinel: discovered
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
    try {
      Turn(snap, run, &next_poll, &next_fleet);
    } catch (const std::exception& e) {  // e.g. a JSON surprise: logged, the loop goes on
      spdlog::error("accounting: {}", e.what());
    }
  }
}

void Accountant::Turn(const config::SnapshotPtr& snap, bool run, uint64_t* next_poll,
                      uint64_t* next_fleet) {
  {
    SlotMapPtr map = map_source_ ? map_source_() : nullptr;
    const std::vector<config::Endpoint> masters = Masters(*snap, map);
    if (run) StartRun(snap, "request");
    const uint64_t mono = MonoMs();
    if (mono >= *next_poll) {
      std::vector<config::Endpoint> nodes = snap->backend.nodes;
      if (map) {
        nodes = map->masters;
        for (const auto& rs : map->replicas) nodes.insert(nodes.end(), rs.begin(), rs.end());
      }
      PollMemory(*snap, nodes);
      *next_poll = mono + kMemoryPollMs;
    }
    if (!masters.empty()) MeasureQuotas(*snap, masters, mono);
    MaybeSchedule(snap);
    if (mono >= *next_fleet) {
      RefreshFromFleet(*snap);
      *next_fleet = mono + kFleetRefreshMs;
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
                               const std::vector<config::Endpoint>& masters, uint64_t mono_ms) {
  for (const config::Tenant& t : snap.tenants) {
    if (!HasQuota(t)) continue;
    TenantQuota& q = tenants_.Get(t.app).quota;
    Measured& m = measured_[t.app];
    if (mono_ms < m.retry_at_ms) continue;
    const bool over = q.over.load();
    const bool never = m.at_ms == 0;
    const uint64_t since = mono_ms - m.at_ms;
    const uint64_t shrinks = q.shrinks.load(std::memory_order_relaxed);
    // At once (at most every kMinMeasureGapMs): the workers ask (a write that
    // may have crossed the quota), or, while over, the tenant cleaned up.
    const bool soon = q.measure_wanted.load(std::memory_order_relaxed) ||
                      (over && shrinks != m.shrinks);
    // Periodically while the figure can have moved: writes since, or over (an
    // expiry frees memory too).
    const bool due = since >= snap.accounting.quota_refresh_ms &&
                     (over || q.written.load() != m.written);
    if (!never && !(soon && since >= kMinMeasureGapMs) && !due) continue;
    q.measure_wanted.store(false, std::memory_order_relaxed);
    const uint64_t w0 = q.written.load(), n0 = q.writes.load();
    m.at_ms = mono_ms;
    m.written = w0;
    m.shrinks = shrinks;
    NamespaceFigures f = MeasureNamespace(masters, snap.backend, t.prefix, &cancel_);
    if (!f.ok) {  // keeps the last verdict; tried again in a while
      if (!m.failing) spdlog::error("quota of tenant {}: {}; the last verdict stands", t.app, f.error);
      m.failing = true;
      m.retry_at_ms = mono_ms + kMeasureRetryMs;
      continue;
    }
    if (m.failing) spdlog::info("quota of tenant {}: measured again", t.app);
    m.failing = false;
    const uint64_t mem = static_cast<uint64_t>(f.memory), keys = static_cast<uint64_t>(f.keys);
    const uint64_t quota = t.limits.memory_quota_bytes, max_keys = t.limits.max_keys;
    const bool now_over = (quota != 0 && mem > quota) || (max_keys != 0 && keys > max_keys);
    q.bytes_trigger.store(quota == 0 ? kNoTrigger : w0 + (quota > mem ? quota - mem : 0));
    q.writes_trigger.store(max_keys == 0 ? kNoTrigger : n0 + (max_keys > keys ? max_keys - keys : 0));
    q.memory_bytes.store(f.memory);
    q.keys.store(f.keys);
    q.measured_at_ms.store(NowMs());
    if (q.over.exchange(now_over) != now_over) {
      if (now_over) {
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
    try {
      RunAnalysis(snap, trigger);
    } catch (const std::exception& e) {
      spdlog::error("accounting: analysis ({}): {}", trigger, e.what());
      runs_failed_.fetch_add(1);
    }
    running_.store(false);
  });
}

void Accountant::RunAnalysis(const config::SnapshotPtr& snap, const std::string& trigger) {
  ReportStore store(*snap, map_source_ ? map_source_() : nullptr);
  // One analysis at a time in the fleet: each is a fork on every master.
  if (!store.Claim("running", instance_, kRunClaimS)) {
    spdlog::warn("accounting: analysis ({}) not started: another keyfence is running one, or "
                 "the backend is unreachable", trigger);
    runs_failed_.fetch_add(1);
    if (trigger == "schedule") schedule_failed_.store(true);
    return;
  }
  const uint64_t started = NowMs(), mono0 = MonoMs();
  spdlog::info("accounting: analysis ({}) started", trigger);
  Analysis a(*snap, snap->accounting.top_keys, static_cast<int64_t>(started));
  AnalyzeBackend(*snap, a, {}, &cancel_);
  store.Release("running", instance_);
  nlohmann::json j = a.ToJson();
  const uint64_t finished = NowMs(), duration = MonoMs() - mono0;
  j["report"] = {{"trigger", trigger},       {"instance", instance_},
                 {"started_at_ms", started}, {"finished_at_ms", finished},
                 {"duration_ms", duration}};
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
               a.nodes().size(), duration);
  runs_ok_.fetch_add(1);
  const std::string text = Dump(j);
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
  // Within the window after `at` (across midnight too), never late into the day.
  if ((minute - at + 1440) % 1440 >= kScheduleWindowMin) return;
  if (schedule_failed_.exchange(false)) {  // another's run was going on: try again later
    scheduled_day_.clear();
    schedule_retry_at_ = MonoMs() + kScheduleRetryMs;
  }
  if (MonoMs() < schedule_retry_at_ || running_.load()) return;
  if (minute < at) {  // the window started yesterday: the run is yesterday's
    const std::time_t y = now - 86400;
    localtime_r(&y, &local);
  }
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
  nlohmann::json last = ParseOrNull(store.Get("last"), "the backend's last report");
  nlohmann::json baseline = ParseOrNull(store.Get("baseline"), "the backend's baseline");
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
      b["tenants"][app] = {{"keys", Num(f, "keys")}, {"memory_bytes", Num(f, "memory_bytes")}};
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
    const nlohmann::json& was = base["tenants"][app];
    const int64_t mem = Num(f, "memory_bytes"), mem0 = Num(was, "memory_bytes");
    nlohmann::json g = {{"memory_bytes", mem - mem0},
                        {"keys", Num(f, "keys") - Num(was, "keys")}};
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
  return Dump(j);
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
      m = Num(last["tenants"][t.app], "memory_bytes");
      k = Num(last["tenants"][t.app], "keys");
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
