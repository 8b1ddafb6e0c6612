// Prometheus metrics for keyfence, counted per worker and folded at scrape time.
//
// Request-path counting takes no lock and does no shared atomic read-modify-write:
// every worker thread owns one WorkerMetrics, and each counter in it is written by that
// thread only, with a relaxed load followed by a relaxed store (not fetch_add). The
// scraper (MetricsRegistry::Collect, on the control thread) reads the same atomics with
// relaxed loads and sums them across workers. prometheus-cpp's Counter/Histogram
// objects are never touched on the request path (its histograms lock per observation).
//
// Ownership: MetricsRegistry owns every WorkerMetrics, and each WorkerMetrics owns its
// TenantCounters. Nothing is destroyed before the registry, so references handed out by
// AddWorker() and ForTenant() stay valid for the registry's lifetime. Tenants removed by
// a config reload simply stop counting (their series stay, frozen).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keyfence::proxy {

// Why a request was refused. Label values (RejectReasonLabel): ratelimit, denied,
// key_rule, auth, protocol, too_large.
enum class RejectReason : uint8_t {
  kRateLimit, kDenied, kKeyRule, kAuth, kProtocol, kTooLarge,
  kScriptTimeout,  // a script ended by keyfence at limits.max_script_ms
  kQuota,          // limits.memory_quota_bytes / max_keys
};
inline constexpr size_t kNumRejectReasons = 8;
std::string_view RejectReasonLabel(RejectReason reason);

// Cluster redirections followed by the router. Label values: moved, ask.
enum class RedirectType : uint8_t { kMoved, kAsk };

// keyfence_request_duration_seconds upper bounds (the +Inf bucket is implicit).
inline constexpr std::array<double, 15> kLatencyBucketsSeconds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5};
// The same bounds in nanoseconds; a sample v lands in the first bucket with v <= bound.
inline constexpr std::array<uint64_t, 15> kLatencyBucketsNs = {
    50'000,      100'000,     250'000,     500'000,       1'000'000,
    2'500'000,   5'000'000,   10'000'000,  25'000'000,    50'000'000,
    100'000'000, 250'000'000, 500'000'000, 1'000'000'000, 2'500'000'000};
// Finite buckets plus +Inf.
inline constexpr size_t kNumLatencyBuckets = kLatencyBucketsNs.size() + 1;

// The error codes INFO errorstats counts by name (the first word of an error
// reply); any other code counts under the last entry, "OTHER".
inline constexpr std::array<std::string_view, 27> kErrorCodes = {
    "ERR",        "WRONGTYPE", "NOPERM",   "EXECABORT", "NOSCRIPT",   "BUSY",
    "BUSYKEY",    "NOAUTH",    "WRONGPASS", "TRYAGAIN", "CROSSSLOT",  "CLUSTERDOWN",
    "LOADING",    "MASTERDOWN", "MISCONF", "NOREPLICAS", "OOM",       "READONLY",
    "UNBLOCKED",  "NOGROUP",   "NOTBUSY",  "NOPROTO",   "RATELIMIT",  "UNKILLABLE",
    "INVALIDOBJ", "MAXCLIENTS", "OTHER"};
inline constexpr size_t kNumErrorCodes = kErrorCodes.size();
// The kErrorCodes index of an error's text ("CODE message").
size_t ErrorCodeIndex(std::string_view text);

// A counter with exactly one writer thread. Add() is a relaxed load + relaxed store, so
// it costs what a plain increment costs; readers on other threads see a recent value.
class OwnedCounter {
 public:
  void Add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Load() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// The counters of one tenant on one worker.
// Worker-local: the mutators below are called by the owning worker thread only; the
// accessors may be called from any thread (the scraper).
struct alignas(64) TenantCounters {
 public:
  explicit TenantCounters(size_t num_commands);
  TenantCounters(const TenantCounters&) = delete;
  TenantCounters& operator=(const TenantCounters&) = delete;

  // Counts one request of command `cmd_id` (the protocol command table's dense id).
  // Ids >= num_commands are ignored.
  void CountRequest(uint16_t cmd_id) {
    if (cmd_id < num_commands_) requests_[cmd_id].Add();
  }
  // A reply of command `cmd_id` after `ns` (INFO commandstats usec).
  void CountCommandTime(uint16_t cmd_id, uint64_t ns) {
    if (cmd_id < num_commands_) per_command_[cmd_id].ns.Add(ns);
  }
  // An error reply, its text without the '-' (INFO errorstats; failed_calls of
  // `cmd_id`, none if >= num_commands).
  void CountErrorReply(uint16_t cmd_id, std::string_view text) {
    errors_[ErrorCodeIndex(text)].Add();
    if (cmd_id < num_commands_) per_command_[cmd_id].failed.Add();
  }
  // A refusal of command `cmd_id` by keyfence (INFO commandstats rejected_calls;
  // denials and key-rule hits also by command in keyfence_rejected_total).
  void CountCommandRejected(uint16_t cmd_id, RejectReason reason) {
    if (cmd_id >= num_commands_) return;
    PerCommand& c = per_command_[cmd_id];
    c.rejected.Add();
    if (reason == RejectReason::kDenied) c.denied.Add();
    if (reason == RejectReason::kKeyRule) c.key_rule.Add();
  }
  // A read whose reply shows whether the key existed (INFO keyspace_hits/misses).
  void CountLookup(bool hit) { (hit ? hits_ : misses_).Add(); }
  // Bytes read from / written to the tenant's clients (INFO net_input/output_bytes).
  void CountNetIn(size_t n) { net_in_.Add(n); }
  void CountNetOut(size_t n) { net_out_.Add(n); }
  void CountRejected(RejectReason reason) { rejected_[static_cast<size_t>(reason)].Add(); }
  // Records one request's duration in nanoseconds.
  void ObserveLatencyNs(uint64_t ns) {
    latency_buckets_[LatencyBucket(ns)].Add();
    latency_sum_ns_.Add(ns);
  }
  // The first bucket whose bound is >= ns (kLatencyBucketsNs.size(): +Inf):
  // a branch-free binary search over the 15 bounds (2^4 - 1).
  static size_t LatencyBucket(uint64_t ns) {
    static_assert(kLatencyBucketsNs.size() == 15, "the search below takes 2^4 - 1 bounds");
    const auto& b = kLatencyBucketsNs;
    size_t i = 0;
    i += static_cast<size_t>(b[i + 7] < ns) * 8;
    i += static_cast<size_t>(b[i + 3] < ns) * 4;
    i += static_cast<size_t>(b[i + 1] < ns) * 2;
    i += static_cast<size_t>(b[i] < ns);
    return i;
  }
  // A request (reply=false) or reply (reply=true) over big_value_bytes.
  void CountBig(bool reply) { big_[reply ? 1 : 0].Add(); }
  uint64_t big(bool reply) const { return big_[reply ? 1 : 0].Load(); }
  // A connection bound to the tenant (INFO total_connections_received).
  void CountConnectionReceived() { connections_received_.Add(); }
  uint64_t connections_received() const { return connections_received_.Load(); }
  // Adjusts the client connection gauge (+1 on connect/auth, -1 on close/re-auth).
  void AddConnection(int delta) {
    connections_.store(connections_.load(std::memory_order_relaxed) + delta,
                       std::memory_order_relaxed);
  }

  // Scrape-side reads (relaxed loads; any thread).
  size_t num_commands() const { return num_commands_; }
  uint64_t requests(size_t cmd_id) const { return requests_[cmd_id].Load(); }
  uint64_t rejected(RejectReason reason) const {
    return rejected_[static_cast<size_t>(reason)].Load();
  }
  // Non-cumulative count of bucket `i` in [0, kNumLatencyBuckets); the last is +Inf.
  uint64_t latency_bucket(size_t i) const { return latency_buckets_[i].Load(); }
  uint64_t latency_sum_ns() const { return latency_sum_ns_.Load(); }
  int64_t connections() const { return connections_.load(std::memory_order_relaxed); }
  uint64_t command_ns(size_t cmd_id) const { return per_command_[cmd_id].ns.Load(); }
  uint64_t command_failed(size_t cmd_id) const { return per_command_[cmd_id].failed.Load(); }
  uint64_t command_rejected(size_t cmd_id) const { return per_command_[cmd_id].rejected.Load(); }
  // Denials (reason denied) or key-rule hits (key_rule) of the command.
  uint64_t command_refused(size_t cmd_id, bool key_rule) const {
    return (key_rule ? per_command_[cmd_id].key_rule : per_command_[cmd_id].denied).Load();
  }
  uint64_t errors(size_t code) const { return errors_[code].Load(); }
  uint64_t hits() const { return hits_.Load(); }
  uint64_t misses() const { return misses_.Load(); }
  uint64_t net_in() const { return net_in_.Load(); }
  uint64_t net_out() const { return net_out_.Load(); }

 private:
  struct PerCommand {
    OwnedCounter ns, failed, rejected, denied, key_rule;
  };
  const size_t num_commands_;
  std::unique_ptr<OwnedCounter[]> requests_;
  std::unique_ptr<PerCommand[]> per_command_;
  std::array<OwnedCounter, kNumErrorCodes> errors_;
  OwnedCounter hits_, misses_, net_in_, net_out_;
  std::array<OwnedCounter, kNumRejectReasons> rejected_;
  // The sample count is the sum of the buckets, so count and +Inf always agree.
  std::array<OwnedCounter, kNumLatencyBuckets> latency_buckets_;
  OwnedCounter latency_sum_ns_;
  std::array<OwnedCounter, 2> big_;  // [request, reply]
  OwnedCounter connections_received_;
  std::atomic<int64_t> connections_{0};
};

// All counters of one worker thread.
// Thread affinity: ForTenant() and CountBackendError() are thread-safe (mutex; call them
// at connect/auth time or on error paths, never per request). CountRedirect() and every
// TenantCounters mutator belong to the owning worker thread.
class WorkerMetrics {
 public:
  explicit WorkerMetrics(size_t num_commands) : num_commands_(num_commands) {}
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // Returns this worker's counters for `tenant`, creating them on first use. The
  // reference stays valid for the registry's lifetime; cache it in the session.
  TenantCounters& ForTenant(std::string_view tenant);

  // Counts a backend failure (cold path; takes a mutex). `kind` is a short token such as
  // "connect", "timeout", "io", "protocol".
  void CountBackendError(std::string_view node, std::string_view kind);

  // Owner thread only.
  void CountRedirect(RedirectType type) { (type == RedirectType::kMoved ? moved_ : ask_).Add(); }
  // accept() failed (EMFILE at the fd limit, ENOBUFS, ...): keyfence_accept_errors_total.
  void CountAcceptError() { accept_errors_.Add(); }
  uint64_t accept_errors() const { return accept_errors_.Load(); }

  // Scrape side: calls fn(name, counters) for every tenant, under the map mutex.
  template <typename Fn>
  void ForEachTenant(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [name, counters] : tenants_) fn(name, *counters);
  }
  // Scrape side: calls fn(node, kind, count) for every backend error series.
  template <typename Fn>
  void ForEachBackendError(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [key, count] : backend_errors_) fn(key.first, key.second, count);
  }
  uint64_t redirects(RedirectType type) const {
    return (type == RedirectType::kMoved ? moved_ : ask_).Load();
  }

 private:
  const size_t num_commands_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<TenantCounters>, std::less<>> tenants_;  // mu_
  std::map<std::pair<std::string, std::string>, uint64_t> backend_errors_;       // mu_
  OwnedCounter moved_;
  OwnedCounter ask_;
  OwnedCounter accept_errors_;
};

// Per-tenant totals across workers, for GET /tenants.
struct TenantTotals {
  std::string tenant;
  int64_t connections = 0;
  uint64_t requests = 0;
  uint64_t rejected = 0;
  std::array<uint64_t, kNumRejectReasons> rejected_by_reason{};  // indexed by RejectReason
  uint64_t connections_received = 0;
  std::vector<uint64_t> requests_by_command;  // by command id (TotalsFor only)
  // INFO's figures (TotalsFor only): by command id, by kErrorCodes index.
  std::vector<uint64_t> ns_by_command, failed_by_command, rejected_by_command;
  std::array<uint64_t, kNumErrorCodes> errors_by_code{};
  uint64_t hits = 0, misses = 0, net_in = 0, net_out = 0;
};

// Owns the per-worker metrics and renders them as Prometheus families.
// Thread affinity: AddWorker() at startup (before workers run); SetConfigVersion() and
// CountReload() from the control thread; Collect()/SerializeText()/TenantTotals() from
// any thread (they only take the per-worker map mutexes and read atomics).
class MetricsRegistry : public prometheus::Collectable {
 public:
  // `command_names[id]` is the name of command id `id` (ids 0..N-1), any case; the
  // command label is its lower-case form.
  explicit MetricsRegistry(std::vector<std::string> command_names);
  ~MetricsRegistry() override;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Adds one worker's counters; the reference stays valid for the registry's lifetime.
  WorkerMetrics& AddWorker();

  void SetConfigVersion(uint64_t version) {
    config_version_.store(version, std::memory_order_relaxed);
  }
  void CountReload(bool ok) {
    (ok ? reloads_ok_ : reloads_error_).fetch_add(1, std::memory_order_relaxed);
    last_reload_ok_.store(ok, std::memory_order_relaxed);
  }
  // keyfence_config_info{hash} (the running config's IdentityHash).
  void SetConfigHash(std::string hash) {
    std::lock_guard l(info_mu_);
    config_hash_ = std::move(hash);
  }
  // keyfence_build_info{version,revision}.
  void SetBuildInfo(std::string version, std::string revision) {
    std::lock_guard l(info_mu_);
    build_version_ = std::move(version);
    build_revision_ = std::move(revision);
  }

  // Folds every worker's counters into the keyfence_* families (see DESIGN.md, Metrics).
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Collect() rendered in the Prometheus text exposition format 0.0.4.
  std::string SerializeText() const;
  // Totals per known tenant, sorted by tenant name.
  std::vector<proxy::TenantTotals> TenantTotals() const;
  // One tenant's totals with its requests by command (INFO; a cold path).
  proxy::TenantTotals TotalsFor(std::string_view tenant) const;

 private:
  std::vector<std::string> command_labels_;  // lower-case, indexed by command id
  mutable std::mutex workers_mu_;
  std::vector<std::unique_ptr<WorkerMetrics>> workers_;  // workers_mu_
  std::atomic<uint64_t> config_version_{0};
  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_error_{0};
  std::atomic<bool> last_reload_ok_{true};  // the last attempt (none yet: the start's load)
  mutable std::mutex info_mu_;
  std::string config_hash_;                     // info_mu_
  std::string build_version_, build_revision_;  // info_mu_
};

}  // namespace keyfence::proxy
