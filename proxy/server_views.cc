// The admin API's views of the whole process (GET /tenants, /hotkeys,
// /bigkeys and the hot-key metric lines), summed over the workers.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "proxy/base/logging.h"
#include "proxy/server.h"

#include "proxy/fleet_rate.h"
#include "proxy/worker.h"

namespace keyfence::proxy {

std::string Server::TenantsJson() {
  config::SnapshotPtr snap;
  {
    std::lock_guard<std::mutex> l(snapshot_mu_);
    snap = snapshot_;
  }
  absl::flat_hash_map<std::string, proxy::TenantTotals> totals;
  for (auto& t : metrics_->TenantTotals()) totals[t.tenant] = t;
  const config::Overrides overrides = MergedOverrides();
  std::string j = "{";
  for (size_t i = 0; i < snap->tenants.size(); ++i) {
    const config::Tenant& t = snap->tenants[i];
    const proxy::TenantTotals& tt = totals[t.app];
    const config::Limits& l = t.limits;
    j += (i ? ",\"" : "\"") + t.app + "\":{\"namespace\":\"" + t.prefix +
         "\",\"connections\":" + std::to_string(tt.connections) +
         ",\"ops\":" + std::to_string(tt.requests) +
         ",\"rejected\":" + std::to_string(tt.rejected) +
         ",\"limits\":{\"ops_per_sec\":" + std::to_string(l.ops_per_sec) +
         ",\"burst\":" + std::to_string(l.burst) +
         ",\"bytes_per_sec\":" + std::to_string(l.bytes_per_sec) +
         ",\"on_limit\":\"" + (l.on_limit == config::OnLimit::kDelay ? "delay" : "reject") +
         "\",\"max_delay_ms\":" + std::to_string(l.max_delay_ms) +
         ",\"max_connections\":" + std::to_string(l.max_connections) +
         ",\"max_request_bytes\":" + std::to_string(l.max_request_bytes) + "}";
    auto o = overrides.find(t.app);
    const config::Tenant* in_file = file_snapshot_->FindTenant(t.app);
    if (o != overrides.end() && in_file != nullptr) {  // the live limits against the file's
      j += ",\"drift\":" + o->second.DriftJson(in_file->limits, l);
    }
    if (fleet_rate_) {  // limits.scope: fleet: the shared bucket's state
      if (std::string f = fleet_rate_->TenantJson(t.app); !f.empty()) j += ",\"fleet\":" + f;
    }
    j += "}";
  }
  return j + "}";
}

namespace {
std::string JsonString(std::string_view s) {
  std::string o = "\"";
  AppendJsonEscaped(o, s.data(), s.size());
  return o + "\"";
}
}  // namespace

std::vector<std::pair<std::string, uint64_t>> Server::HotKeys(const std::string& tenant,
                                                              size_t n) {
  absl::flat_hash_map<std::string, uint64_t> sum;
  for (auto& w : workers_) {
    for (auto& [k, c] : w->HotKeysOf(tenant)) sum[k] += c;
  }
  std::vector<std::pair<std::string, uint64_t>> v(sum.begin(), sum.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

// keyfence_hot_key_requests{tenant,key}: the estimated recent requests of each
// tenant's top 3 keys (client-side names; label values made printable ASCII).
std::string Server::HotKeysMetricText() {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> l(snapshot_mu_);
    for (const auto& t : snapshot_->tenants) names.push_back(t.app);
  }
  std::string out =
      "# HELP keyfence_hot_key_requests Estimated recent requests (decaying window) of each "
      "tenant's hottest keys.\n# TYPE keyfence_hot_key_requests gauge\n";
  for (const std::string& t : names) {
    for (auto& [key, count] : HotKeys(t, 3)) {
      std::string k;
      for (unsigned char c : key.substr(0, 200)) {
        if (c == '\\' || c == '"') {
          k.push_back('\\');
          k.push_back(static_cast<char>(c));
        } else if (c < 0x20 || c >= 0x7f) {
          k.push_back('?');
        } else {
          k.push_back(static_cast<char>(c));
        }
      }
      out += "keyfence_hot_key_requests{tenant=\"" + t + "\",key=\"" + k + "\"} " +
             std::to_string(count) + "\n";
    }
  }
  return out;
}

std::pair<int, std::string> Server::HotKeysJson(std::string_view tenant) {
  std::string name(tenant);
  {
    std::lock_guard<std::mutex> l(snapshot_mu_);
    if (snapshot_->FindTenant(name) == nullptr) {
      return {404, "{\"error\":\"unknown tenant\"}"};
    }
  }
  auto v = HotKeys(name, 20);
  std::string j = "{\"tenant\":" + JsonString(name) + ",\"keys\":[";
  for (size_t i = 0; i < v.size(); ++i) {
    j += (i ? "," : "") + std::string("{\"key\":") + JsonString(v[i].first) +
         ",\"count\":" + std::to_string(v[i].second) + "}";
  }
  return {200, j + "]}"};
}

std::pair<int, std::string> Server::BigKeysJson(std::string_view tenant) {
  std::string name(tenant);
  {
    std::lock_guard<std::mutex> l(snapshot_mu_);
    if (snapshot_->FindTenant(name) == nullptr) {
      return {404, "{\"error\":\"unknown tenant\"}"};
    }
  }
  absl::flat_hash_map<std::string, BigKeys::Entry> merged;
  for (auto& w : workers_) {
    for (auto& e : w->BigKeysOf(name)) {
      BigKeys::Entry& m = merged[e.key];
      m.bytes = std::max(m.bytes, e.bytes);
      m.count += e.count;
    }
  }
  std::vector<std::pair<std::string, BigKeys::Entry>> v(merged.begin(), merged.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    if (a.second.bytes != b.second.bytes) return a.second.bytes > b.second.bytes;
    if (a.second.count != b.second.count) return a.second.count > b.second.count;
    return a.first < b.first;
  });
  if (v.size() > 20) v.resize(20);
  std::string j = "{\"tenant\":" + JsonString(name) + ",\"keys\":[";
  for (size_t i = 0; i < v.size(); ++i) {
    j += (i ? "," : "") + std::string("{\"key\":") + JsonString(v[i].first) +
         ",\"bytes\":" + std::to_string(v[i].second.bytes) +
         ",\"count\":" + std::to_string(v[i].second.count) + "}";
  }
  return {200, j + "]}"};
}

}  // namespace keyfence::proxy
