#include "proxy/backend/topology.h"

#include "proxy/backend/admin_link.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <map>

#include <spdlog/spdlog.h>

namespace keyfence::proxy {

namespace {

constexpr auto kPeriodicRefresh = std::chrono::seconds(10);
constexpr auto kMinGap = std::chrono::milliseconds(100);  // between refreshes

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

std::string Str(const redisReply* r) {
  if (r == nullptr) return "";
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    return std::string(r->str, r->len);
  }
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  return "";
}

// CLUSTER SHARDS (Redis 7): [ {slots: [s, e, ...], nodes: [{ip, port, role, health,...}]} ]
bool ParseShards(const redisReply* r, SlotMap* m) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return false;
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* shard = r->element[i];
    if (shard->type != REDIS_REPLY_ARRAY || shard->elements % 2) return false;
    const redisReply* slots = nullptr;
    const redisReply* nodes = nullptr;
    for (size_t k = 0; k + 1 < shard->elements; k += 2) {
      std::string name = Str(shard->element[k]);
      if (name == "slots") slots = shard->element[k + 1];
      if (name == "nodes") nodes = shard->element[k + 1];
    }
    if (slots == nullptr || nodes == nullptr || slots->type != REDIS_REPLY_ARRAY ||
        nodes->type != REDIS_REPLY_ARRAY) {
      return false;
    }
    int master = -1;
    std::vector<config::Endpoint> reps;
    for (size_t n = 0; n < nodes->elements; ++n) {
      const redisReply* node = nodes->element[n];
      if (node->type != REDIS_REPLY_ARRAY) return false;
      std::map<std::string, std::string> f;
      for (size_t k = 0; k + 1 < node->elements; k += 2) {
        f[Str(node->element[k])] = Str(node->element[k + 1]);
      }
      if (f["health"] != "online" && !f["health"].empty()) continue;
      config::Endpoint ep{f["ip"].empty() ? f["endpoint"] : f["ip"],
                          static_cast<uint16_t>(std::atoi(f["port"].c_str()))};
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
    for (size_t k = 0; k + 1 < slots->elements; k += 2) {
      long long s = slots->element[k]->integer, e = slots->element[k + 1]->integer;
      for (long long x = s; x <= e && x < protocol::kNumSlots; ++x) {
        m->owner[x] = static_cast<int16_t>(master);
      }
    }
  }
  return !m->masters.empty();
}

// CLUSTER SLOTS: [ [start, end, [ip, port, id], [replica...]...] ]
bool ParseSlots(const redisReply* r, SlotMap* m) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return false;
  std::map<std::string, int> index;
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) return false;
    long long s = e->element[0]->integer, end = e->element[1]->integer;
    const redisReply* mn = e->element[2];
    if (mn->type != REDIS_REPLY_ARRAY || mn->elements < 2) return false;
    config::Endpoint ep{Str(mn->element[0]), static_cast<uint16_t>(mn->element[1]->integer)};
    auto [it, inserted] = index.emplace(ep.ToString(), static_cast<int>(m->masters.size()));
    if (inserted) {
      m->masters.push_back(ep);
      m->replicas.emplace_back();
      for (size_t k = 3; k < e->elements; ++k) {
        const redisReply* rn = e->element[k];
        if (rn->type == REDIS_REPLY_ARRAY && rn->elements >= 2) {
          m->replicas.back().push_back(
              {Str(rn->element[0]), static_cast<uint16_t>(rn->element[1]->integer)});
        }
      }
    }
    for (long long x = s; x <= end && x < protocol::kNumSlots; ++x) {
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
  AdminLink link = ConnectAdmin(ep, be, "cluster topology");
  if (!link) return nullptr;
  redisContext* c = link.get();
  auto m = std::make_shared<SlotMap>();
  ReplyPtr r(static_cast<redisReply*>(redisCommand(c, "CLUSTER SHARDS")));
  if (!r || r->type == REDIS_REPLY_ERROR || !ParseShards(r.get(), m.get())) {
    m = std::make_shared<SlotMap>();
    ReplyPtr s(static_cast<redisReply*>(redisCommand(c, "CLUSTER SLOTS")));
    if (!s || s->type == REDIS_REPLY_ERROR || !ParseSlots(s.get(), m.get())) {
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
