#include "proxy/base/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace keyfence::proxy {
namespace {

// Command ids used below: 0 GET, 1 SET, 2 CLIENT|KILL.
std::vector<std::string> CommandNames() { return {"GET", "SET", "CLIENT|KILL"}; }

const prometheus::MetricFamily* FindFamily(const std::vector<prometheus::MetricFamily>& families,
                                           const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool HasLabels(const prometheus::ClientMetric& m,
               const std::vector<prometheus::ClientMetric::Label>& labels) {
  for (const auto& want : labels) {
    bool found = false;
    for (const auto& have : m.label) found = found || have == want;
    if (!found) return false;
  }
  return true;
}

const prometheus::ClientMetric* FindMetric(
    const std::vector<prometheus::MetricFamily>& families, const std::string& name,
    const std::vector<prometheus::ClientMetric::Label>& labels) {
  const prometheus::MetricFamily* f = FindFamily(families, name);
  if (f == nullptr) return nullptr;
  for (const auto& m : f->metric) {
    if (HasLabels(m, labels)) return &m;
  }
  return nullptr;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Fills a registry with two workers' worth of traffic.
void PopulateTwoWorkers(MetricsRegistry& registry) {
  WorkerMetrics& w1 = registry.AddWorker();
  WorkerMetrics& w2 = registry.AddWorker();
  TenantCounters& orders1 = w1.ForTenant("orders");
  TenantCounters& orders2 = w2.ForTenant("orders");
  TenantCounters& billing2 = w2.ForTenant("billing");
  w1.ForTenant("idle");  // known tenant, never used

  for (int i = 0; i < 3; ++i) orders1.CountRequest(0);
  for (int i = 0; i < 2; ++i) orders2.CountRequest(0);
  orders2.CountRequest(1);
  billing2.CountRequest(2);
  billing2.CountRequest(999);  // out of range: ignored

  orders1.CountRejected(RejectReason::kRateLimit);
  orders2.CountRejected(RejectReason::kRateLimit);
  orders2.CountRejected(RejectReason::kKeyRule);
  billing2.CountRejected(RejectReason::kTooLarge);

  orders1.ObserveLatencyNs(40'000);         // le 0.00005
  orders1.ObserveLatencyNs(50'000);         // le 0.00005 (bound is inclusive)
  orders2.ObserveLatencyNs(700'000);        // le 0.001
  orders2.ObserveLatencyNs(3'000'000'000);  // +Inf

  orders1.AddConnection(+1);
  orders1.AddConnection(+1);
  orders2.AddConnection(+1);
  orders1.AddConnection(-1);
  billing2.AddConnection(+1);
  billing2.AddConnection(-1);

  w1.CountRedirect(RedirectType::kMoved);
  w2.CountRedirect(RedirectType::kMoved);
  w2.CountRedirect(RedirectType::kMoved);
  w1.CountBackendError("10.0.0.1:6379", "timeout");
  w2.CountBackendError("10.0.0.1:6379", "timeout");
  w2.CountBackendError("10.0.0.2:6379", "connect");

  registry.SetConfigVersion(7);
  registry.CountReload(true);
  registry.CountReload(true);
  registry.CountReload(false);
}

TEST_CASE("metrics: reject reason labels match DESIGN.md") {
  CHECK(RejectReasonLabel(RejectReason::kRateLimit) == "ratelimit");
  CHECK(RejectReasonLabel(RejectReason::kDenied) == "denied");
  CHECK(RejectReasonLabel(RejectReason::kKeyRule) == "key_rule");
  CHECK(RejectReasonLabel(RejectReason::kAuth) == "auth");
  CHECK(RejectReasonLabel(RejectReason::kProtocol) == "protocol");
  CHECK(RejectReasonLabel(RejectReason::kTooLarge) == "too_large");
}

TEST_CASE("metrics: ForTenant returns the same counters for the same name") {
  MetricsRegistry registry(CommandNames());
  WorkerMetrics& w = registry.AddWorker();
  TenantCounters& a = w.ForTenant("orders");
  w.ForTenant("billing");
  CHECK(&a == &w.ForTenant(std::string_view("orders")));
  CHECK(&a != &w.ForTenant("billing"));
}

TEST_CASE("metrics: counters fold across two workers") {
  MetricsRegistry registry(CommandNames());
  PopulateTwoWorkers(registry);
  const auto families = registry.Collect();

  SECTION("requests per tenant and lower-case command; zero series omitted") {
    const auto* get =
        FindMetric(families, "keyfence_requests_total", {{"tenant", "orders"}, {"command", "get"}});
    REQUIRE(get != nullptr);
    CHECK(get->counter.value == 5);
    const auto* set =
        FindMetric(families, "keyfence_requests_total", {{"tenant", "orders"}, {"command", "set"}});
    REQUIRE(set != nullptr);
    CHECK(set->counter.value == 1);
    const auto* kill = FindMetric(families, "keyfence_requests_total",
                                  {{"tenant", "billing"}, {"command", "client|kill"}});
    REQUIRE(kill != nullptr);
    CHECK(kill->counter.value == 1);
    CHECK(FindMetric(families, "keyfence_requests_total",
                     {{"tenant", "orders"}, {"command", "client|kill"}}) == nullptr);
    CHECK(FindMetric(families, "keyfence_requests_total", {{"tenant", "idle"}}) == nullptr);
    CHECK(FindFamily(families, "keyfence_requests_total")->metric.size() == 3);
  }

  SECTION("rejections: every reason for every tenant") {
    const auto* rl = FindMetric(families, "keyfence_rejected_total",
                                {{"tenant", "orders"}, {"reason", "ratelimit"}});
    REQUIRE(rl != nullptr);
    CHECK(rl->counter.value == 2);
    const auto* kr = FindMetric(families, "keyfence_rejected_total",
                                {{"tenant", "orders"}, {"reason", "key_rule"}});
    REQUIRE(kr != nullptr);
    CHECK(kr->counter.value == 1);
    const auto* auth =
        FindMetric(families, "keyfence_rejected_total", {{"tenant", "idle"}, {"reason", "auth"}});
    REQUIRE(auth != nullptr);
    CHECK(auth->counter.value == 0);
    CHECK(FindFamily(families, "keyfence_rejected_total")->metric.size() == 3 * kNumRejectReasons);
  }

  SECTION("histogram buckets are cumulative and end in +Inf == count") {
    const auto* h =
        FindMetric(families, "keyfence_request_duration_seconds", {{"tenant", "orders"}});
    REQUIRE(h != nullptr);
    CHECK(FindFamily(families, "keyfence_request_duration_seconds")->type ==
          prometheus::MetricType::Histogram);
    const auto& buckets = h->histogram.bucket;
    REQUIRE(buckets.size() == kNumLatencyBuckets);
    CHECK(h->histogram.sample_count == 4);
    CHECK(h->histogram.sample_sum == Approx(3.00079).epsilon(1e-9));
    CHECK(buckets[0].upper_bound == 0.00005);
    CHECK(buckets[0].cumulative_count == 2);
    CHECK(buckets[3].upper_bound == 0.0005);
    CHECK(buckets[3].cumulative_count == 2);
    CHECK(buckets[4].upper_bound == 0.001);
    CHECK(buckets[4].cumulative_count == 3);
    CHECK(buckets[14].upper_bound == 2.5);
    CHECK(buckets[14].cumulative_count == 3);
    CHECK(std::isinf(buckets[15].upper_bound));
    CHECK(buckets[15].cumulative_count == 4);
    for (size_t i = 1; i < buckets.size(); ++i) {
      CHECK(buckets[i].cumulative_count >= buckets[i - 1].cumulative_count);
      CHECK(buckets[i].upper_bound > buckets[i - 1].upper_bound);
    }
    const auto* idle =
        FindMetric(families, "keyfence_request_duration_seconds", {{"tenant", "idle"}});
    REQUIRE(idle != nullptr);
    CHECK(idle->histogram.sample_count == 0);
  }

  SECTION("connection gauge for every known tenant, including zero") {
    const auto* orders =
        FindMetric(families, "keyfence_client_connections", {{"tenant", "orders"}});
    REQUIRE(orders != nullptr);
    CHECK(orders->gauge.value == 2);
    const auto* billing =
        FindMetric(families, "keyfence_client_connections", {{"tenant", "billing"}});
    REQUIRE(billing != nullptr);
    CHECK(billing->gauge.value == 0);
    const auto* idle = FindMetric(families, "keyfence_client_connections", {{"tenant", "idle"}});
    REQUIRE(idle != nullptr);
    CHECK(idle->gauge.value == 0);
  }

  SECTION("backend, reload and version families") {
    const auto* moved =
        FindMetric(families, "keyfence_backend_redirects_total", {{"type", "moved"}});
    REQUIRE(moved != nullptr);
    CHECK(moved->counter.value == 3);
    const auto* ask = FindMetric(families, "keyfence_backend_redirects_total", {{"type", "ask"}});
    REQUIRE(ask != nullptr);
    CHECK(ask->counter.value == 0);
    const auto* timeout = FindMetric(families, "keyfence_backend_errors_total",
                                     {{"node", "10.0.0.1:6379"}, {"kind", "timeout"}});
    REQUIRE(timeout != nullptr);
    CHECK(timeout->counter.value == 2);
    CHECK(FindFamily(families, "keyfence_backend_errors_total")->metric.size() == 2);
    const auto* ok = FindMetric(families, "keyfence_config_reloads_total", {{"result", "ok"}});
    REQUIRE(ok != nullptr);
    CHECK(ok->counter.value == 2);
    const auto* err = FindMetric(families, "keyfence_config_reloads_total", {{"result", "error"}});
    REQUIRE(err != nullptr);
    CHECK(err->counter.value == 1);
    const auto* version = FindMetric(families, "keyfence_config_version", {});
    REQUIRE(version != nullptr);
    CHECK(version->gauge.value == 7);
  }

  SECTION("every family has HELP text") {
    for (const auto& f : families) {
      INFO(f.name);
      CHECK_FALSE(f.help.empty());
    }
  }
}

TEST_CASE("metrics: text exposition contains the expected series") {
  MetricsRegistry registry(CommandNames());
  PopulateTwoWorkers(registry);
  const std::string text = registry.SerializeText();
  INFO(text);
  CHECK(Contains(text, "# HELP keyfence_requests_total "));
  CHECK(Contains(text, "# TYPE keyfence_requests_total counter"));
  CHECK(Contains(text, "keyfence_requests_total{tenant=\"orders\",command=\"get\"} 5\n"));
  CHECK(Contains(text, "keyfence_rejected_total{tenant=\"orders\",reason=\"ratelimit\"} 2\n"));
  CHECK(Contains(text, "# TYPE keyfence_request_duration_seconds histogram"));
  CHECK(Contains(text,
                 "keyfence_request_duration_seconds_bucket{tenant=\"orders\",le=\"0.001\"} 3\n"));
  CHECK(Contains(text,
                 "keyfence_request_duration_seconds_bucket{tenant=\"orders\",le=\"+Inf\"} 4\n"));
  CHECK(Contains(text, "keyfence_request_duration_seconds_count{tenant=\"orders\"} 4\n"));
  CHECK(Contains(text, "keyfence_client_connections{tenant=\"idle\"} 0\n"));
  CHECK(Contains(text, "keyfence_backend_redirects_total{type=\"ask\"} 0\n"));
  CHECK(Contains(text, "keyfence_config_reloads_total{result=\"error\"} 1\n"));
  CHECK(Contains(text, "keyfence_config_version 7\n"));
}

TEST_CASE("metrics: an empty registry still exposes the global series") {
  MetricsRegistry registry(CommandNames());
  registry.AddWorker();
  const std::string text = registry.SerializeText();
  CHECK(Contains(text, "keyfence_backend_redirects_total{type=\"moved\"} 0\n"));
  CHECK(Contains(text, "keyfence_config_reloads_total{result=\"ok\"} 0\n"));
  CHECK(Contains(text, "keyfence_config_version 0\n"));
  CHECK_FALSE(Contains(text, "keyfence_backend_errors_total"));
}

TEST_CASE("metrics: TenantTotals sums per tenant") {
  MetricsRegistry registry(CommandNames());
  PopulateTwoWorkers(registry);
  const auto totals = registry.TenantTotals();
  REQUIRE(totals.size() == 3);
  CHECK(totals[0].tenant == "billing");
  CHECK(totals[0].requests == 1);
  CHECK(totals[0].rejected == 1);
  CHECK(totals[0].connections == 0);
  CHECK(totals[1].tenant == "idle");
  CHECK(totals[1].requests == 0);
  CHECK(totals[2].tenant == "orders");
  CHECK(totals[2].requests == 6);
  CHECK(totals[2].rejected == 3);
  CHECK(totals[2].rejected_by_reason[static_cast<size_t>(RejectReason::kRateLimit)] == 2);
  CHECK(totals[2].connections == 2);
}

TEST_CASE("metrics: scraping while a worker counts sees monotonic values") {
  MetricsRegistry registry(CommandNames());
  WorkerMetrics& w = registry.AddWorker();
  TenantCounters& c = w.ForTenant("orders");
  constexpr uint64_t kN = 200'000;
  std::atomic<bool> done{false};
  std::thread worker([&] {
    for (uint64_t i = 0; i < kN; ++i) {
      c.CountRequest(0);
      c.ObserveLatencyNs(i % 3'000'000);
    }
    done.store(true);
  });
  uint64_t last = 0;
  while (!done.load()) {
    const auto totals = registry.TenantTotals();
    REQUIRE(totals.size() == 1);
    CHECK(totals[0].requests >= last);
    last = totals[0].requests;
  }
  worker.join();
  const auto families = registry.Collect();
  const auto* get =
      FindMetric(families, "keyfence_requests_total", {{"tenant", "orders"}, {"command", "get"}});
  REQUIRE(get != nullptr);
  CHECK(get->counter.value == kN);
  const auto* h = FindMetric(families, "keyfence_request_duration_seconds", {{"tenant", "orders"}});
  REQUIRE(h != nullptr);
  CHECK(h->histogram.sample_count == kN);
}

TEST_CASE("metrics: text output passes promtool check metrics") {
  constexpr const char* kPromtool = "/usr/bin/promtool";
  if (access(kPromtool, X_OK) != 0) {
    WARN("promtool not installed (apt-get install prometheus); skipping");
    return;
  }
  MetricsRegistry registry(CommandNames());
  PopulateTwoWorkers(registry);
  const std::string text = registry.SerializeText();

  char path[] = "/tmp/kf_metrics_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream out(path, std::ios::binary);
    out << text;
  }
  const std::string cmd = std::string(kPromtool) + " check metrics < " + path + " 2>&1";
  std::string output;
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[512];
  while (fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  const int status = pclose(pipe);
  std::remove(path);
  INFO("promtool output:\n" << output);
  INFO("metrics:\n" << text);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(output.empty());
}

TEST_CASE("metrics: the latency bucket is the first bound >= the sample") {
  auto linear = [](uint64_t ns) {
    size_t i = 0;
    while (i < kLatencyBucketsNs.size() && ns > kLatencyBucketsNs[i]) ++i;
    return i;
  };
  std::vector<uint64_t> samples = {0, 1, UINT64_MAX};
  for (uint64_t b : kLatencyBucketsNs) {
    samples.insert(samples.end(), {b - 1, b, b + 1});
  }
  for (uint64_t ns = 1; ns < 5'000'000'000; ns = ns * 3 / 2 + 1) samples.push_back(ns);
  for (uint64_t ns : samples) {
    INFO(ns);
    CHECK(TenantCounters::LatencyBucket(ns) == linear(ns));
  }
}

}  // namespace
}  // namespace keyfence::proxy
