#include "proxy/accounting/analysis.h"

#include <algorithm>
#include <cstdio>

#include "protocol/slot.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy::accounting {

Analysis::Analysis(const config::Snapshot& snap, size_t top_keys, int64_t now_ms)
    : cluster_prefix_(snap.cluster_name + "@"), own_prefix_(cluster_prefix_ + "__keyfence:"),
      top_keys_(top_keys), now_ms_(now_ms) {
  for (const config::Tenant& t : snap.tenants) tenants_[t.app];
}

void Analysis::CountSlots(std::vector<std::string> owner_names) {
  slots_.assign(protocol::kNumSlots, Slot{});
  slot_owner_ = std::move(owner_names);
}

bool Analysis::complete() const {
  for (const NodeRun& n : nodes_) {
    if (!n.error.empty()) return false;
  }
  return !nodes_.empty();
}

void Analysis::CountSlot(std::string_view key, const std::string* app, uint64_t bytes) {
  Slot& s = slots_[protocol::KeySlot(key)];
  s.bytes += bytes;
  ++s.keys;
  for (auto& [who, n] : s.tenants) {
    if (who == app) {
      n += bytes;
      return;
    }
  }
  s.tenants.emplace_back(app, bytes);
}

void Analysis::OnKey(const rdb::KeyInfo& k) {
  Figures* f = &unowned_;
  const std::string* owner = nullptr;
  std::string app;
  if (k.key.starts_with(own_prefix_)) {
    ++own_.keys;
    own_.memory_bytes += k.memory;
    return;
  }
  if (k.key.starts_with(cluster_prefix_)) {
    const size_t colon = k.key.find(':', cluster_prefix_.size());
    if (colon != std::string_view::npos) {
      app.assign(k.key.substr(cluster_prefix_.size(), colon - cluster_prefix_.size()));
      auto it = tenants_.find(app);
      if (it != tenants_.end()) {
        f = &it->second;
        owner = &it->first;
      }
    }
  }
  if (!slots_.empty()) CountSlot(k.key, owner, k.memory);
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

constexpr size_t kSlotsReported = 20;

}  // namespace

nlohmann::json Analysis::SlotsJson() const {
  std::vector<uint16_t> order;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].keys != 0) order.push_back(static_cast<uint16_t>(i));
  }
  const size_t n = std::min(order.size(), kSlotsReported);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                    [&](uint16_t a, uint16_t b) { return slots_[a].bytes > slots_[b].bytes; });
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i) {
    const Slot& s = slots_[order[i]];
    nlohmann::json t = nlohmann::json::object();
    for (const auto& [who, bytes] : s.tenants) t[who == nullptr ? "(no tenant)" : *who] = bytes;
    nlohmann::json j = {{"slot", order[i]}, {"bytes", s.bytes}, {"keys", s.keys}, {"tenants", t}};
    if (order[i] < slot_owner_.size() && !slot_owner_[order[i]].empty()) {
      j["node"] = slot_owner_[order[i]];
    }
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json Analysis::ToJson() const {
  nlohmann::json j;
  j["tenants"] = nlohmann::json::object();
  for (const auto& [app, f] : tenants_) j["tenants"][app] = FiguresJson(f, true);
  j["unowned"] = FiguresJson(unowned_, false);
  j["keyfence"] = FiguresJson(own_, false);
  j["nodes"] = nlohmann::json::array();
  for (const NodeRun& n : nodes_) {
    nlohmann::json r = {{"node", n.node}, {"keys", n.keys}, {"rdb_bytes", n.rdb_bytes}};
    if (!n.error.empty()) r["error"] = n.error;
    j["nodes"].push_back(std::move(r));
  }
  j["complete"] = complete();
  if (!slots_.empty()) j["slots"] = SlotsJson();
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
  if (!slots_.empty()) {
    out += "\nheaviest slots:\n";
    for (const auto& s : SlotsJson()) {
      std::string owners;
      for (const auto& [app, bytes] : s["tenants"].items()) {
        owners += (owners.empty() ? "" : ", ") + app + " " + std::to_string(bytes.get<uint64_t>());
      }
      std::snprintf(line, sizeof line, "  slot %5d %12llu B %8llu keys  %-22s %s\n",
                    s["slot"].get<int>(), static_cast<unsigned long long>(s["bytes"].get<uint64_t>()),
                    static_cast<unsigned long long>(s["keys"].get<uint64_t>()),
                    s.value("node", std::string("-")).c_str(), owners.c_str());
      out += line;
    }
  }
  for (const NodeRun& n : nodes_) {
    if (n.error.empty()) continue;
    out += "\nINCOMPLETE: " + n.node + ": " + n.error + "\n";
  }
  return out;
}

}  // namespace keyfence::proxy::accounting
