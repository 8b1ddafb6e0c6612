#include "proxy/accounting/analysis.h"

#include <algorithm>
#include <cstdio>

#include "tenancy/namespace.h"

namespace keyfence::proxy::accounting {

Analysis::Analysis(const config::Snapshot& snap, size_t top_keys, int64_t now_ms)
    : cluster_prefix_(snap.cluster_name + "@"), top_keys_(top_keys), now_ms_(now_ms) {
  for (const config::Tenant& t : snap.tenants) tenants_[t.app];
}

void Analysis::OnKey(const rdb::KeyInfo& k) {
  Figures* f = &unowned_;
  std::string app;
  if (k.key.starts_with(cluster_prefix_)) {
    const size_t colon = k.key.find(':', cluster_prefix_.size());
    if (colon != std::string_view::npos) {
      app.assign(k.key.substr(cluster_prefix_.size(), colon - cluster_prefix_.size()));
      auto it = tenants_.find(app);
      if (it != tenants_.end()) f = &it->second;
    }
  }
  ++f->keys;
  if (k.expire_ms >= 0) ++f->keys_with_ttl;
  f->memory_bytes += k.memory;
  f->bytes_by_type[std::string(rdb::TypeName(k.type))] += k.memory;
  if (f == &unowned_ || top_keys_ == 0) return;
  auto& big = f->big_keys;
  if (big.size() >= top_keys_ && big.back().bytes >= k.memory) return;
  BigKey b;
  b.type = k.type;
  b.bytes = k.memory;
  b.elements = k.elements;
  b.idle_s = k.idle_s;
  b.ttl_ms = k.expire_ms < 0 ? -1 : std::max<int64_t>(0, k.expire_ms - now_ms_);
  const std::string prefix = cluster_prefix_ + app + ":";
  if (!tenancy::AppendClientKey(b.key, prefix, k.key)) b.key.assign(k.key);
  auto at = std::upper_bound(big.begin(), big.end(), b.bytes,
                             [](uint64_t v, const BigKey& x) { return v > x.bytes; });
  big.insert(at, std::move(b));
  if (big.size() > top_keys_) big.pop_back();
}

namespace {

nlohmann::json FiguresJson(const Figures& f, bool with_keys) {
  nlohmann::json j = {{"keys", f.keys}, {"memory_bytes", f.memory_bytes}};
  if (!with_keys) return j;
  j["keys_with_ttl"] = f.keys_with_ttl;
  j["keys_without_ttl"] = f.keys - f.keys_with_ttl;
  j["bytes_by_type"] = nlohmann::json::object();
  for (const auto& [type, n] : f.bytes_by_type) j["bytes_by_type"][type] = n;
  j["big_keys"] = nlohmann::json::array();
  for (const BigKey& b : f.big_keys) {
    nlohmann::json k = {{"key", b.key}, {"type", rdb::TypeName(b.type)}, {"bytes", b.bytes},
                        {"elements", b.elements}, {"ttl_ms", b.ttl_ms}};
    if (b.idle_s >= 0) k["idle_s"] = b.idle_s;
    j["big_keys"].push_back(std::move(k));
  }
  return j;
}

}  // namespace

nlohmann::json Analysis::ToJson() const {
  nlohmann::json j;
  j["tenants"] = nlohmann::json::object();
  for (const auto& [app, f] : tenants_) j["tenants"][app] = FiguresJson(f, true);
  j["unowned"] = FiguresJson(unowned_, false);
  return j;
}

std::string Analysis::ToTable() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-24s %10s %10s %14s  %s\n", "tenant", "keys", "with ttl",
                "memory bytes", "biggest key");
  out += line;
  for (const auto& [app, f] : tenants_) {
    const std::string big = f.big_keys.empty()
                                ? "-"
                                : f.big_keys[0].key + " (" +
                                      std::string(rdb::TypeName(f.big_keys[0].type)) + ", " +
                                      std::to_string(f.big_keys[0].bytes) + " B)";
    std::snprintf(line, sizeof line, "%-24s %10llu %10llu %14llu  %s\n", app.c_str(),
                  static_cast<unsigned long long>(f.keys),
                  static_cast<unsigned long long>(f.keys_with_ttl),
                  static_cast<unsigned long long>(f.memory_bytes), big.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "%-24s %10llu %10s %14llu\n", "(no tenant)",
                static_cast<unsigned long long>(unowned_.keys), "",
                static_cast<unsigned long long>(unowned_.memory_bytes));
  out += line;
  return out;
}

}  // namespace keyfence::proxy::accounting
