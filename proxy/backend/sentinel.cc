#include "proxy/backend/sentinel.h"

#include <chrono>
#include <optional>

#include <spdlog/spdlog.h>

#include "proxy/backend/control_link.h"

namespace keyfence::proxy {

namespace {

constexpr auto kPoll = std::chrono::seconds(2);                 // a backstop to the events
constexpr auto kFailoverPoll = std::chrono::milliseconds(200);  // while no master answers
constexpr int kSubscribeSilenceMs = 2000;  // then a PING: a dead sentinel is noticed
constexpr auto kResubscribeDelay = std::chrono::seconds(1);

// The sentinels' own credentials (not the data nodes'); the same TLS.
config::Backend ForSentinels(const config::Backend& be) {
  config::Backend s = be;
  s.username = be.sentinel.username;
  s.password = be.sentinel.password;
  return s;
}

// A flat field list (RESP2) or map (RESP3) -> the value of `name`, or "".
std::string Field(const ControlReply& r, std::string_view name) {
  for (size_t k = 0; k + 1 < r.elements.size(); k += 2) {
    if (r.elements[k].str == name) return r.elements[k + 1].str;
  }
  return {};
}

std::optional<config::Endpoint> Addr(const std::string& ip, const std::string& port) {
  const int p = std::atoi(port.c_str());
  if (ip.empty() || p <= 0 || p > 65535) return std::nullopt;
  return config::Endpoint{ip, static_cast<uint16_t>(p)};
}

// The node answers ROLE as a master (with the data nodes' credentials).
bool IsMaster(const config::Endpoint& ep, const config::Backend& be,
              const std::atomic<bool>* cancel) {
  std::unique_ptr<ControlLink> link = ControlLink::Open(ep, be, "sentinel: master check", cancel);
  if (!link) return false;
  std::optional<ControlReply> r = link->Command({"ROLE"});
  return r && r->is_array() && !r->elements.empty() && r->elements[0].str == "master";
}

// One sentinel's view: the master (confirmed) and its healthy replicas.
std::shared_ptr<SlotMap> AskOne(const config::Endpoint& sentinel, const config::Backend& be,
                                const std::atomic<bool>* cancel) {
  std::unique_ptr<ControlLink> link =
      ControlLink::Open(sentinel, ForSentinels(be), "sentinel", cancel);
  if (!link) return nullptr;
  const std::string& name = be.sentinel.master;
  std::optional<ControlReply> m = link->Command({"SENTINEL", "get-master-addr-by-name", name});
  if (!m || !m->is_array() || m->elements.size() < 2) {
    spdlog::warn("sentinel {}: no master named '{}' ({})", sentinel.ToString(), name,
                 m && m->is_error() ? m->str : std::string("no answer"));
    return nullptr;
  }
  std::optional<config::Endpoint> master = Addr(m->elements[0].str, m->elements[1].str);
  if (!master) return nullptr;
  auto map = std::make_shared<SlotMap>();
  map->masters.push_back(*master);
  map->replicas.emplace_back();
  map->owner.fill(0);
  std::optional<ControlReply> reps = link->Command({"SENTINEL", "replicas", name});
  if (reps && reps->is_array()) {
    for (const ControlReply& r : reps->elements) {
      const std::string flags = Field(r, "flags");
      // (Not master-link-status: sentinels refresh it only every 10 s.)
      if (flags.find("s_down") != std::string::npos || flags.find("o_down") != std::string::npos ||
          flags.find("disconnected") != std::string::npos) {
        continue;
      }
      if (auto ep = Addr(Field(r, "ip"), Field(r, "port"))) map->replicas[0].push_back(*ep);
    }
  }
  link.reset();
  if (!IsMaster(*master, be, cancel)) {
    spdlog::warn("sentinel {}: '{}' is {} but it does not answer as a master (failover?)",
                 sentinel.ToString(), name, master->ToString());
    return nullptr;
  }
  return map;
}

std::string Describe(const SlotMap& m) {
  std::string d = m.masters[0].ToString() + " [";
  for (const auto& r : m.replicas[0]) d += r.ToString() + " ";
  return d + "]";
}

}  // namespace

SlotMapPtr AskSentinels(const config::Backend& be, const std::atomic<bool>* cancel) {
  for (const auto& s : be.sentinel.nodes) {
    if (cancel != nullptr && cancel->load()) return nullptr;
    if (auto m = AskOne(s, be, cancel)) return m;
  }
  spdlog::error("sentinel: no sentinel named a live master '{}'", be.sentinel.master);
  return nullptr;
}

SentinelDiscovery::SentinelDiscovery(config::Backend backend, PublishSlotMap publish)
    : backend_(std::move(backend)), publish_(std::move(publish)) {}

SentinelDiscovery::~SentinelDiscovery() { Stop(); }

void SentinelDiscovery::Start() { thread_ = std::thread([this] { Run(); }); }

void SentinelDiscovery::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cancel_ = true;
  sub_cancel_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& t : subscribers_) {
    if (t.joinable()) t.join();
  }
  subscribers_.clear();
}

void SentinelDiscovery::RequestRefresh() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (refresh_) return;
    refresh_ = true;
  }
  cv_.notify_all();
}

namespace {
// What the subscriptions are made from: a reload that changes none of it
// keeps them.
std::string SubscriptionKey(const config::Backend& be) {
  std::string k = be.sentinel.master + "|" + be.sentinel.username + "|" + be.sentinel.password;
  for (const auto& n : be.sentinel.nodes) k += "|" + n.ToString();
  return k + "|" + (be.tls ? be.tls->fingerprint : std::string());
}
}  // namespace

void SentinelDiscovery::Reconfigure(const config::Backend& backend) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (SubscriptionKey(backend) != SubscriptionKey(backend_)) ++generation_;
    backend_ = backend;
    refresh_ = true;
  }
  cv_.notify_all();
}

void SentinelDiscovery::RestartSubscribers(const config::Backend& be) {
  sub_cancel_ = true;
  for (auto& t : subscribers_) {
    if (t.joinable()) t.join();
  }
  subscribers_.clear();
  std::lock_guard<std::mutex> l(mu_);
  if (stop_) return;  // Stop() set sub_cancel_ too: it stays set
  sub_cancel_ = false;
  for (const auto& s : be.sentinel.nodes) {
    subscribers_.emplace_back([this, s, be] { Subscribe(s, be); });
  }
}

void SentinelDiscovery::Run() {
  uint64_t seen_generation = UINT64_MAX;
  for (;;) {
    config::Backend be;
    uint64_t generation;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, healthy_ ? std::chrono::duration_cast<std::chrono::milliseconds>(kPoll)
                               : kFailoverPoll,
                   [this] { return refresh_ || stop_; });
      if (stop_) return;
      refresh_ = false;
      be = backend_;
      generation = generation_;
    }
    if (generation != seen_generation) {
      seen_generation = generation;
      RestartSubscribers(be);
    }
    Refresh(be);
  }
}

void SentinelDiscovery::Refresh(const config::Backend& be) {
  SlotMapPtr found = AskSentinels(be, &cancel_);
  if (cancel_) return;
  healthy_ = found != nullptr;
  if (!found) return;
  const std::string now = Describe(*found);
  if (now == last_ && ready()) return;
  auto m = std::make_shared<SlotMap>(*found);
  m->version = ++version_;
  spdlog::info("sentinel: master '{}' is {}", be.sentinel.master, now);
  last_ = now;
  has_map_.store(true, std::memory_order_relaxed);
  publish_(m);
}

// Holds SUBSCRIBE +switch-master on one sentinel; any announcement (and every
// reconnect, which may have missed one) asks for a refresh.
void SentinelDiscovery::Subscribe(config::Endpoint sentinel, config::Backend be) {
  const config::Backend sb = ForSentinels(be);
  while (!sub_cancel_) {
    std::unique_ptr<ControlLink> link =
        ControlLink::Open(sentinel, sb, "sentinel subscription", &sub_cancel_);
    std::optional<ControlReply> ok;
    if (link) ok = link->Command({"SUBSCRIBE", "+switch-master"});
    if (ok && ok->is_array()) {
      RequestRefresh();
      bool ping_out = false;
      for (;;) {
        bool silent = false;
        std::optional<ControlReply> r = link->Next(kSubscribeSilenceMs, &silent);
        if (sub_cancel_) return;
        if (silent) {
          if (ping_out) break;  // no answer to the PING: the sentinel is gone
          link->Append({"PING"});
          ping_out = true;
          continue;
        }
        if (!r) break;
        ping_out = false;
        if (r->is_array() && r->elements.size() >= 3 && r->elements[0].str == "message") {
          spdlog::info("sentinel {}: +switch-master {}", sentinel.ToString(),
                       r->elements[2].str);
          RequestRefresh();
        }
      }
    }
    for (std::chrono::milliseconds left = kResubscribeDelay; left.count() > 0 && !sub_cancel_;
         left -= std::chrono::milliseconds(100)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace keyfence::proxy
