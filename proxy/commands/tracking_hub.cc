// TrackingHub: the worker's BCAST tracking connections and the fan-out of
// their invalidations to the tracking clients (tracking.h).
#include <algorithm>

#include <spdlog/spdlog.h>

#include "protocol/reply_parser.h"
#include "protocol/writer.h"
#include "proxy/commands/context.h"
#include "proxy/commands/tracking.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy {

namespace asio = boost::asio;

namespace {
constexpr uint64_t kRetryNs = 1'000'000'000;  // after a failed connection

std::string EndpointKey(const config::Endpoint& ep) {
  return ep.host + ":" + std::to_string(ep.port);
}
}  // namespace

// One master's tracking connection: its pushes and the acks of keyfence's
// own CLIENT TRACKING commands.
struct TrackingHub::Link final : public UnsolicitedSink, public ReplySink {
  Link(TrackingHub& h, std::unique_ptr<BackendConn> c) : hub(h), conn(std::move(c)) {}
  void OnUnsolicited(std::string_view frame) override { hub.OnPush(frame); }
  void OnBackendClosed() override { hub.Lost(this); }
  void OnReply(uint64_t, std::string_view frame) override {
    // Opened after a gap: once its PREFIX is in force, whatever the clients
    // read before may have changed unseen.
    if (flush_on_ack) {
      flush_on_ack = false;
      hub.FlushAll();
    }
    if (!frame.empty() && frame[0] == '-') {
      spdlog::warn("client tracking on {}:{}: {}", conn->endpoint().host, conn->endpoint().port,
                   frame.substr(1, frame.size() - 3));
    }
  }
  TrackingHub& hub;
  std::unique_ptr<BackendConn> conn;
  absl::flat_hash_set<std::string> prefixes;  // sent on this connection
  bool flush_on_ack = false;
};

TrackingHub::TrackingHub(Loop& loop) : loop_(loop) {}

TrackingHub::~TrackingHub() {
  for (auto& l : links_) {
    l->conn->set_unsolicited(nullptr);
    l->conn->Forget(l.get());
  }
}

void TrackingHub::Join(CommandContext& c, const std::string& prefix) {
  auto& v = tenants_[prefix];
  if (std::find(v.begin(), v.end(), &c) == v.end()) v.push_back(&c);
}

void TrackingHub::Leave(CommandContext& c, const std::string& prefix) {
  auto it = tenants_.find(prefix);
  if (it == tenants_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), &c), v.end());
  // The PREFIX stays on the connections (Redis cannot drop one prefix): its
  // pushes find no client and are dropped.
}

size_t TrackingHub::Ensure(Backend& backend, const std::string& prefix, ReplySink* waiter) {
  size_t waits = 0;
  const bool first = !linked_;
  for (const config::Endpoint& ep : backend.Masters()) {
    Link* link = nullptr;
    for (auto& l : links_) {
      const config::Endpoint& e = l->conn->endpoint();
      if (e.host == ep.host && e.port == ep.port) link = l.get();
    }
    if (link == nullptr) {
      const uint64_t now = Loop::NowNs();
      if (now < retry_after_ns_) continue;
      std::unique_ptr<BackendConn> conn = backend.DedicatedTo(ep, 3, nullptr);
      if (!conn || !conn->Available()) {  // Available() connects it
        retry_after_ns_ = now + kRetryNs;
        gaps_.insert(EndpointKey(ep));
        if (conn) {
          BackendConn* raw = conn.release();
          asio::post(loop_.io(), [raw] { delete raw; });
        }
        continue;
      }
      auto l = std::make_unique<Link>(*this, std::move(conn));
      l->conn->set_unsolicited(l.get());
      link = l.get();
      links_.push_back(std::move(l));
      // A master that was lost, or new since (a failover, a new shard):
      // writes before its PREFIX took effect were not seen.
      link->flush_on_ack = gaps_.erase(EndpointKey(ep)) > 0 || !first;
      // A new connection (after a loss, a failover): every tenant tracking on
      // this worker, not only the caller's.
      for (const auto& [p, clients] : tenants_) {
        if (!clients.empty()) Track(*link, p);
      }
    }
    Track(*link, prefix);
    BackendConn& c = *link->conn;
    if (waiter != nullptr) {
      protocol::AppendCommand(c.out(), {"PING"});
      c.Push(waiter, 0);
      c.MarkDirty();
      ++waits;
    }
  }
  linked_ = linked_ || !links_.empty();
  return waits;
}

void TrackingHub::Track(Link& link, const std::string& prefix) {
  if (!link.prefixes.insert(prefix).second) return;
  BackendConn& c = *link.conn;
  protocol::AppendCommand(c.out(), {"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix});
  c.Push(&link, 0);
  c.MarkDirty();
}

void TrackingHub::Forget(ReplySink* waiter) {
  for (auto& l : links_) l->conn->Forget(waiter);
}

// A connection lost: its invalidations may be missed from now on, so every
// tracking client of the worker drops its cache; the next Ensure opens it again.
void TrackingHub::Lost(Link* link) {
  auto it = std::find_if(links_.begin(), links_.end(),
                         [link](const std::unique_ptr<Link>& l) { return l.get() == link; });
  if (it == links_.end()) return;
  std::unique_ptr<Link> gone = std::move(*it);
  links_.erase(it);
  gaps_.insert(EndpointKey(gone->conn->endpoint()));
  BackendConn* raw = gone->conn.release();
  raw->Forget(gone.get());
  Link* sink = gone.release();
  asio::post(loop_.io(), [raw, sink] {  // we may be inside the connection's handler
    delete raw;
    delete sink;
  });
  FlushAll();
}

void TrackingHub::FlushAll() {
  std::vector<CommandContext*> all;
  for (auto& [prefix, clients] : tenants_) all.insert(all.end(), clients.begin(), clients.end());
  for (CommandContext* c : all) commands::SendInvalidation(*c, nullptr);
}

// >2 invalidate [key ...] | null (FLUSHALL/FLUSHDB on the server).
void TrackingHub::OnPush(std::string_view frame) {
  std::vector<protocol::ReplyNode> n;
  if (!protocol::ParseReplyTree(frame, &n) || n.size() < 3 || n[0].count != 2 ||
      n[1].str != "invalidate") {
    return;
  }
  if (n[2].is_null) return FlushAll();
  for (int64_t i = 0; i < n[2].count && static_cast<size_t>(3 + i) < n.size(); ++i) {
    Invalidate(n[3 + i].str);
  }
}

void TrackingHub::Invalidate(std::string_view backend_key) {
  for (auto& [prefix, clients] : tenants_) {
    if (clients.empty() || !backend_key.starts_with(prefix)) continue;
    std::string key;
    if (!tenancy::AppendClientKey(key, prefix, backend_key)) return;
    const std::vector<CommandContext*> copy = clients;  // a delivery may close one
    for (CommandContext* c : copy) {
      TrackingState* t = c->tracking().get();
      if (t == nullptr) continue;
      if (t->noloop) {
        auto own = t->own.find(key);
        if (own != t->own.end()) {
          const bool live = own->second.second > Loop::NowNs();
          if (--own->second.first == 0 || !live) t->own.erase(own);
          if (live) {
            t->keys.erase(key);
            continue;
          }
        }
      }
      if (t->bcast) {
        const bool match =
            t->prefixes.empty() ||
            std::any_of(t->prefixes.begin(), t->prefixes.end(),
                        [&](const std::string& p) { return std::string_view(key).starts_with(p); });
        if (match) commands::SendInvalidation(*c, &key);
      } else if (t->keys.erase(key) > 0) {
        commands::SendInvalidation(*c, &key);
      }
    }
    return;
  }
}

}  // namespace keyfence::proxy
