#include "proxy/backend/topology.h"

#include "proxy/backend/control_link.h"

#include <algorithm>
#include <chrono>
#include <map>

#include <spdlog/spdlog.h>

namespace keyfence::proxy {

namespace {

constexpr auto kPeriodicRefresh = std::chrono::seconds(10);
constexpr auto kMinGap = std::chrono::milliseconds(100);  // between refreshes

using protocol::ReplyType;

std::string Str(const ControlReply& r) {
  if (r.is_string()) return r.str;
  if (r.type == ReplyType::kInteger) return std::to_string(r.integer);
  return "";
}

// CLUSTER SHARDS (Redis 7): [ {slots: [s, e, ...], nodes: [{ip, port, role, health,...}]} ]
// Over TLS (backend.tls) a node is reached at its tls-port (a TLS cluster lists
// both; CLUSTER SLOTS and MOVED already answer a TLS link with the TLS port).
bool ParseShards(const ControlReply& r, SlotMap* m, bool tls) {
  if (!r.is_array()) return false;
  for (const ControlReply& shard : r.elements) {
    if (!shard.is_array() || shard.elements.size() % 2) return false;
    const ControlReply* slots = nullptr;
    const ControlReply* nodes = nullptr;
    for (size_t k = 0; k + 1 < shard.elements.size(); k += 2) {
      std::string name = Str(shard.elements[k]);
      if (name == "slots") slots = &shard.elements[k + 1];
      if (name == "nodes") nodes = &shard.elements[k + 1];
    }
    if (slots == nullptr || nodes == nullptr || !slots->is_array() || !nodes->is_array()) {
      return false;
    }
    int master = -1;
    std::vector<config::Endpoint> reps;
    for (const ControlReply& node : nodes->elements) {
      if (!node.is_array()) return false;
      std::map<std::string, std::string> f;
      for (size_t k = 0; k + 1 < node.elements.size(); k += 2) {
        f[Str(node.elements[k])] = Str(node.elements[k + 1]);
      }
      if (f["health"] != "online" && !f["health"].empty()) continue;
      const std::string& port = tls && !f["tls-port"].empty() ? f["tls-port"] : f["port"];
      config::Endpoint ep{f["ip"].empty() ? f["endpoint"] : f["ip"],
                          static_cast<uint16_t>(std::atoi(port.c_str()))};
      if (ep.host.empty() || ep.port == 0) continue;
      if (f["role"] == "master" && master < 0) {
        master = static_cast<int>(m->masters.size());
        m->masters.push_back(ep);
      } else {
        reps.push_back(ep);
      }
    }
    if (master < 0) continue;  // a shard without a live master: its slots stay unassigned
    m->replicas.resize(m->masters.size());
    m->replicas[master] = reps;
    for (size_t k = 0; k + 1 < slots->elements.size(); k += 2) {
      const int64_t s = slots->elements[k].integer, e = slots->elements[k + 1].integer;
      for (int64_t x = std::max<int64_t>(s, 0); x <= e && x < protocol::kNumSlots; ++x) {
        m->owner[x] = static_cast<int16_t>(master);
      }
    }
  }
  return !m->masters.empty();
}

// CLUSTER SLOTS: [ [start, end, [ip, port, id], [replica...]...] ]
bool ParseSlots(const ControlReply& r, SlotMap* m) {
  if (!r.is_array()) return false;
  std::map<std::string, int> index;
  for (const ControlReply& e : r.elements) {
    if (!e.is_array() || e.elements.size() < 3) return false;
    const int64_t s = e.elements[0].integer, end = e.elements[1].integer;
    const ControlReply& mn = e.elements[2];
    if (!mn.is_array() || mn.elements.size() < 2) return false;
    config::Endpoint ep{Str(mn.elements[0]), static_cast<uint16_t>(mn.elements[1].integer)};
    auto [it, inserted] = index.emplace(ep.ToString(), static_cast<int>(m->masters.size()));
    if (inserted) {
      m->masters.push_back(ep);
      m->replicas.emplace_back();
      for (size_t k = 3; k < e.elements.size(); ++k) {
        const ControlReply& rn = e.elements[k];
        if (rn.is_array() && rn.elements.size() >= 2) {
          m->replicas.back().push_back(
              {Str(rn.elements[0]), static_cast<uint16_t>(rn.elements[1].integer)});
        }
      }
    }
    for (int64_t x = std::max<int64_t>(s, 0); x <= end && x < protocol::kNumSlots; ++x) {
      m->owner[x] = static_cast<int16_t>(it->second);
    }
  }
  return !m->masters.empty();
}

}  // namespace

Topology::Topology(config::Backend backend, Publish publish)
    : backend_(std::move(backend)), publish_(std::move(publish)) {}

Topology::~Topology() { Stop(); }

void Topology::Start() { thread_ = std::thread([this] { Run(); }); }

void Topology::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Topology::RequestRefresh() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (refresh_) return;
    refresh_ = true;
  }
  cv_.notify_all();
}

void Topology::Reconfigure(const config::Backend& backend) {
  {
    std::lock_guard<std::mutex> l(mu_);
    backend_ = backend;
    known_.clear();
    refresh_ = true;
  }
  cv_.notify_all();
}

void Topology::Run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      // A map with unserved slots (failover under way) is refreshed every second.
      cv_.wait_for(l, ready() && full_ ? kPeriodicRefresh : std::chrono::seconds(1),
                   [this] { return refresh_ || stop_; });
      if (stop_) return;
      refresh_ = false;
    }
    SlotMapPtr m = Discover();
    if (m) {
      full_ = std::find(m->owner.begin(), m->owner.end(), -1) == m->owner.end();
      has_map_.store(true, std::memory_order_relaxed);
      publish_(m);
    }
    std::this_thread::sleep_for(kMinGap);  // coalesce bursts of MOVED
  }
}

SlotMapPtr Topology::Discover() {
  config::Backend be;
  std::vector<config::Endpoint> candidates;
  {
    std::lock_guard<std::mutex> l(mu_);
    be = backend_;
    candidates = known_;
  }
  candidates.insert(candidates.end(), be.nodes.begin(), be.nodes.end());
  for (const auto& ep : candidates) {
    SlotMapPtr m = Ask(ep, be);
    if (!m) continue;
    std::lock_guard<std::mutex> l(mu_);
    known_ = m->masters;
    return m;
  }
  spdlog::error("cluster topology: no seed or known node answered");
  return nullptr;
}

SlotMapPtr Topology::Ask(const config::Endpoint& ep, const config::Backend& be) {
  auto m = AskSlotMap(ep, be);
  if (!m) return nullptr;
  m->version = ++version_;
  return m;
}

std::shared_ptr<SlotMap> AskSlotMap(const config::Endpoint& ep, const config::Backend& be) {
  std::unique_ptr<ControlLink> link = ControlLink::Open(ep, be, "cluster topology");
  if (!link) return nullptr;
  auto m = std::make_shared<SlotMap>();
  std::optional<ControlReply> r = link->Command({"CLUSTER", "SHARDS"});
  if (!r || r->is_error() || !ParseShards(*r, m.get(), be.tls != nullptr)) {
    m = std::make_shared<SlotMap>();
    std::optional<ControlReply> s = link->Command({"CLUSTER", "SLOTS"});
    if (!s || s->is_error() || !ParseSlots(*s, m.get())) {
      spdlog::warn("cluster topology: {} gave no usable CLUSTER SHARDS/SLOTS answer",
                   ep.ToString());
      return nullptr;
    }
  }
  return m;
}

SlotMapPtr DiscoverSlotMap(const config::Backend& be) {
  for (const auto& ep : be.nodes) {
    if (auto m = AskSlotMap(ep, be)) return m;
  }
  return nullptr;
}

}  // namespace keyfence::proxy
