#include "proxy/base/metrics.h"

#include "proxy/base/process_metrics.h"

#include <optional>

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <utility>

namespace keyfence::proxy {

namespace {

constexpr std::array<std::string_view, kNumRejectReasons> kRejectLabels = {
    "ratelimit", "denied", "key_rule", "auth", "protocol", "too_large", "script_timeout",
    "quota"};

constexpr RejectReason kAllRejectReasons[] = {RejectReason::kRateLimit, RejectReason::kDenied,
                                              RejectReason::kKeyRule,   RejectReason::kAuth,
                                              RejectReason::kProtocol,  RejectReason::kTooLarge, RejectReason::kScriptTimeout,
                                              RejectReason::kQuota};
static_assert(std::size(kAllRejectReasons) == kNumRejectReasons);

// One tenant's counters summed over every worker.
struct Folded {
  std::vector<uint64_t> requests;  // by command id
  std::vector<uint64_t> ns, failed, rejected_cmd;  // by command id
  std::vector<uint64_t> denied_cmd, key_rule_cmd;  // by command id
  std::array<uint64_t, kNumErrorCodes> errors{};
  uint64_t hits = 0, misses = 0, net_in = 0, net_out = 0;
  std::array<uint64_t, kNumRejectReasons> rejected{};
  std::array<uint64_t, kNumLatencyBuckets> buckets{};  // non-cumulative
  uint64_t sum_ns = 0;
  uint64_t big_requests = 0, big_replies = 0;
  int64_t connections = 0;
  uint64_t connections_received = 0;
};

using FoldedMap = std::map<std::string, Folded, std::less<>>;

// Every tenant's counters summed over the workers (only `only`'s if given).
FoldedMap FoldTenants(const std::vector<std::unique_ptr<WorkerMetrics>>& workers,
                      size_t num_commands, std::optional<std::string_view> only = std::nullopt) {
  FoldedMap out;
  for (const auto& worker : workers) {
    worker->ForEachTenant([&](const std::string& name, const TenantCounters& c) {
      if (only && name != *only) return;
      auto [it, inserted] = out.try_emplace(name);
      Folded& f = it->second;
      if (inserted) {
        f.requests.assign(num_commands, 0);
        f.denied_cmd.assign(num_commands, 0);
        f.key_rule_cmd.assign(num_commands, 0);
      }
      const size_t n = std::min(num_commands, c.num_commands());
      for (size_t i = 0; i < n; ++i) {
        f.requests[i] += c.requests(i);
        f.denied_cmd[i] += c.command_refused(i, false);
        f.key_rule_cmd[i] += c.command_refused(i, true);
      }
      if (only) {  // INFO's figures, for one tenant
        if (inserted) {
          f.ns.assign(num_commands, 0);
          f.failed.assign(num_commands, 0);
          f.rejected_cmd.assign(num_commands, 0);
        }
        for (size_t i = 0; i < n; ++i) {
          f.ns[i] += c.command_ns(i);
          f.failed[i] += c.command_failed(i);
          f.rejected_cmd[i] += c.command_rejected(i);
        }
        for (size_t i = 0; i < kNumErrorCodes; ++i) f.errors[i] += c.errors(i);
        f.hits += c.hits();
        f.misses += c.misses();
        f.net_in += c.net_in();
        f.net_out += c.net_out();
      }
      for (RejectReason r : kAllRejectReasons) {
        f.rejected[static_cast<size_t>(r)] += c.rejected(r);
      }
      for (size_t i = 0; i < kNumLatencyBuckets; ++i) f.buckets[i] += c.latency_bucket(i);
      f.sum_ns += c.latency_sum_ns();
      f.big_requests += c.big(false);
      f.big_replies += c.big(true);
      f.connections += c.connections();
      f.connections_received += c.connections_received();
    });
  }
  return out;
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

prometheus::ClientMetric& AddSample(prometheus::MetricFamily& family,
                                    std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric& m = family.metric.emplace_back();
  m.label = std::move(labels);
  return m;
}

void AddCounter(prometheus::MetricFamily& family,
                std::vector<prometheus::ClientMetric::Label> labels, uint64_t value) {
  AddSample(family, std::move(labels)).counter.value = static_cast<double>(value);
}

void AddGauge(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels,
              double value) {
  AddSample(family, std::move(labels)).gauge.value = value;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

// One tenant's latency histogram from its folded bucket counts.
template <typename Buckets>
void AddLatencyHistogram(prometheus::ClientMetric& hist, const Buckets& buckets, uint64_t sum_ns) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kNumLatencyBuckets; ++i) {
    cumulative += buckets[i];
    prometheus::ClientMetric::Bucket& b = hist.histogram.bucket.emplace_back();
    b.cumulative_count = cumulative;
    b.upper_bound = i < kLatencyBucketsSeconds.size() ? kLatencyBucketsSeconds[i]
                                                      : std::numeric_limits<double>::infinity();
  }
  hist.histogram.sample_count = cumulative;
  hist.histogram.sample_sum = static_cast<double>(sum_ns) / 1e9;
}

}  // namespace

std::string_view RejectReasonLabel(RejectReason reason) {
  const auto i = static_cast<size_t>(reason);
  return i < kRejectLabels.size() ? kRejectLabels[i] : std::string_view("unknown");
}

TenantCounters::TenantCounters(size_t num_commands)
    : num_commands_(num_commands),
      requests_(new OwnedCounter[num_commands]),
      per_command_(new PerCommand[num_commands]) {}

size_t ErrorCodeIndex(std::string_view text) {
  std::string_view code = text.substr(0, text.find_first_of(" \r"));
  for (size_t i = 0; i + 1 < kNumErrorCodes; ++i) {
    if (kErrorCodes[i] == code) return i;
  }
  return kNumErrorCodes - 1;
}

TenantCounters& WorkerMetrics::ForTenant(std::string_view tenant) {
  std::lock_guard lock(mu_);
  auto it = tenants_.find(tenant);
  if (it == tenants_.end()) {
    it = tenants_.emplace(std::string(tenant), std::make_unique<TenantCounters>(num_commands_))
             .first;
  }
  return *it->second;
}

void WorkerMetrics::CountBackendError(std::string_view node, std::string_view kind) {
  std::lock_guard lock(mu_);
  ++backend_errors_[{std::string(node), std::string(kind)}];
}

MetricsRegistry::MetricsRegistry(std::vector<std::string> command_names)
    : command_labels_(std::move(command_names)) {
  for (std::string& name : command_labels_) name = Lower(std::move(name));
}

MetricsRegistry::~MetricsRegistry() = default;

WorkerMetrics& MetricsRegistry::AddWorker() {
  std::lock_guard lock(workers_mu_);
  workers_.push_back(std::make_unique<WorkerMetrics>(command_labels_.size()));
  return *workers_.back();
}

std::vector<prometheus::MetricFamily> MetricsRegistry::Collect() const {
  using prometheus::MetricType;
  FoldedMap tenants;
  uint64_t moved = 0;
  uint64_t ask = 0;
  uint64_t accept_errors = 0;
  std::map<std::pair<std::string, std::string>, uint64_t> backend_errors;
  {
    std::lock_guard lock(workers_mu_);
    tenants = FoldTenants(workers_, command_labels_.size());
    for (const auto& worker : workers_) {
      moved += worker->redirects(RedirectType::kMoved);
      ask += worker->redirects(RedirectType::kAsk);
      accept_errors += worker->accept_errors();
      worker->ForEachBackendError(
          [&](const std::string& node, const std::string& kind, uint64_t count) {
            backend_errors[{node, kind}] += count;
          });
    }
  }

  auto requests =
      Family("keyfence_requests_total", "Requests received from clients, by tenant and command.",
             MetricType::Counter);
  auto rejected =
      Family("keyfence_rejected_total", "Requests refused by keyfence, by tenant and reason.",
             MetricType::Counter);
  auto duration = Family("keyfence_request_duration_seconds",
                         "Time from receiving a request to queueing its reply, by tenant.",
                         MetricType::Histogram);
  auto big = Family("keyfence_big_values_total",
                    "Requests and replies larger than big_value_bytes, by tenant and direction.",
                    MetricType::Counter);
  auto connections = Family("keyfence_client_connections",
                            "Client connections currently open, by tenant.", MetricType::Gauge);
  for (const auto& [tenant, f] : tenants) {
    for (size_t id = 0; id < f.requests.size(); ++id) {
      if (f.requests[id] == 0) continue;
      AddCounter(requests, {{"tenant", tenant}, {"command", command_labels_[id]}}, f.requests[id]);
    }
    for (RejectReason r : kAllRejectReasons) {
      const uint64_t total = f.rejected[static_cast<size_t>(r)];
      const std::string reason(RejectReasonLabel(r));
      if (r != RejectReason::kDenied && r != RejectReason::kKeyRule) {
        AddCounter(rejected, {{"tenant", tenant}, {"reason", reason}}, total);
        continue;
      }
      // Denials and key-rule hits by command; what no command carries (a
      // dedicated-connection cap, say) as command="none".
      const auto& by = r == RejectReason::kDenied ? f.denied_cmd : f.key_rule_cmd;
      uint64_t named = 0;
      for (size_t id = 0; id < by.size(); ++id) {
        if (by[id] == 0) continue;
        named += by[id];
        AddCounter(rejected,
                   {{"tenant", tenant}, {"reason", reason}, {"command", command_labels_[id]}},
                   by[id]);
      }
      // Always there (also at 0), so that the series never vanishes and comes back.
      AddCounter(rejected, {{"tenant", tenant}, {"reason", reason}, {"command", "none"}},
                 total - std::min(total, named));
    }
    AddLatencyHistogram(AddSample(duration, {{"tenant", tenant}}), f.buckets, f.sum_ns);
    AddGauge(connections, {{"tenant", tenant}}, static_cast<double>(f.connections));
    AddCounter(big, {{"tenant", tenant}, {"direction", "request"}}, f.big_requests);
    AddCounter(big, {{"tenant", tenant}, {"direction", "reply"}}, f.big_replies);
  }

  auto redirects = Family("keyfence_backend_redirects_total",
                          "Cluster redirections followed (MOVED, ASK).", MetricType::Counter);
  AddCounter(redirects, {{"type", "moved"}}, moved);
  AddCounter(redirects, {{"type", "ask"}}, ask);

  auto accepts = Family("keyfence_accept_errors_total",
                        "Failed accept() calls (at the fd limit: accepting pauses with backoff).",
                        MetricType::Counter);
  AddCounter(accepts, {}, accept_errors);

  auto errors = Family("keyfence_backend_errors_total", "Backend failures, by node and kind.",
                       MetricType::Counter);
  for (const auto& [key, count] : backend_errors) {
    AddCounter(errors, {{"node", key.first}, {"kind", key.second}}, count);
  }

  auto reloads = Family("keyfence_config_reloads_total", "Config reload attempts, by result.",
                        MetricType::Counter);
  AddCounter(reloads, {{"result", "ok"}}, reloads_ok_.load(std::memory_order_relaxed));
  AddCounter(reloads, {{"result", "error"}}, reloads_error_.load(std::memory_order_relaxed));

  auto version =
      Family("keyfence_config_version", "Version number of the running config.", MetricType::Gauge);
  AddGauge(version, {}, static_cast<double>(config_version_.load(std::memory_order_relaxed)));
  auto last_ok = Family("keyfence_config_last_reload_successful",
                        "1 if the last reload attempt succeeded (or none was made), 0 while the "
                        "file on disk is one the running keyfence refused.",
                        MetricType::Gauge);
  AddGauge(last_ok, {}, last_reload_ok_.load(std::memory_order_relaxed) ? 1 : 0);
  auto info = Family("keyfence_config_info",
                     "The running config's identity: SHA-256 of the effective config.",
                     MetricType::Gauge);
  auto build = Family("keyfence_build_info", "The keyfence build: version and git revision.",
                      MetricType::Gauge);
  {
    std::lock_guard l(info_mu_);
    AddGauge(info, {{"hash", config_hash_}}, 1);
    AddGauge(build, {{"version", build_version_}, {"revision", build_revision_}}, 1);
  }

  std::vector<prometheus::MetricFamily> out;
  for (auto* family :
       {&requests, &rejected, &duration, &connections, &big, &redirects, &accepts, &errors,
        &reloads, &version, &last_ok, &info, &build}) {
    // A family without samples would print a bare HELP/TYPE header; leave it out.
    if (!family->metric.empty()) out.push_back(std::move(*family));
  }
  for (auto& family : ProcessFamilies()) out.push_back(std::move(family));
  return out;
}

std::string MetricsRegistry::SerializeText() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

std::vector<TenantTotals> MetricsRegistry::TenantTotals() const {
  FoldedMap tenants;
  {
    std::lock_guard lock(workers_mu_);
    tenants = FoldTenants(workers_, command_labels_.size());
  }
  std::vector<proxy::TenantTotals> out;
  out.reserve(tenants.size());
  for (const auto& [tenant, f] : tenants) {
    proxy::TenantTotals& t = out.emplace_back();
    t.tenant = tenant;
    t.connections = f.connections;
    for (uint64_t n : f.requests) t.requests += n;
    t.rejected_by_reason = f.rejected;
    for (uint64_t n : f.rejected) t.rejected += n;
    t.connections_received = f.connections_received;
  }
  return out;
}

TenantTotals MetricsRegistry::TotalsFor(std::string_view tenant) const {
  FoldedMap tenants;
  {
    std::lock_guard lock(workers_mu_);
    tenants = FoldTenants(workers_, command_labels_.size(), tenant);
  }
  proxy::TenantTotals t;
  t.tenant = std::string(tenant);
  auto it = tenants.find(tenant);
  if (it == tenants.end()) return t;
  const Folded& f = it->second;
  t.connections = f.connections;
  for (uint64_t n : f.requests) t.requests += n;
  t.requests_by_command = f.requests;
  t.rejected_by_reason = f.rejected;
  for (uint64_t n : f.rejected) t.rejected += n;
  t.connections_received = f.connections_received;
  t.ns_by_command = f.ns;
  t.failed_by_command = f.failed;
  t.rejected_by_command = f.rejected_cmd;
  t.errors_by_code = f.errors;
  t.hits = f.hits;
  t.misses = f.misses;
  t.net_in = f.net_in;
  t.net_out = f.net_out;
  return t;
}

}  // namespace keyfence::proxy
