#include "proxy/backend/node_pool.h"

#include <functional>

namespace keyfence::proxy {

namespace asio = boost::asio;

namespace {
constexpr size_t kMaxIdleDedicated = 16;
int ProtoIndex(int proto) { return proto == 3 ? 1 : 0; }
}  // namespace

NodePool::~NodePool() = default;

NodePool::Node& NodePool::Get(const config::Endpoint& ep) {
  auto& p = nodes_[ep.ToString()];
  if (!p) {
    p = std::make_unique<Node>();
    p->endpoint = ep;
  }
  return *p;
}

NodePool::Node& NodePool::ForUser(Node& own, const BackendUser* user) {
  if (user == nullptr) return own;
  if (own.by_user.size() <= user->index) own.by_user.resize(user->index + 1, nullptr);
  Node*& n = own.by_user[user->index];
  if (n == nullptr) {
    auto& p = nodes_[own.endpoint.ToString() + "#" + user->name];
    if (!p) {
      p = std::make_unique<Node>();
      p->endpoint = own.endpoint;
      p->user = user;
    }
    n = p.get();
  }
  return *n;
}

BackendConn& NodePool::Shared(Node& own, int proto, BackendHint hint) {
  Node& node = ForUser(own, hint.user);
  auto& v = node.shared[ProtoIndex(proto)];
  size_t n = std::max<uint32_t>(1, host_.settings().connections_per_node);
  if (v.size() != n) v.resize(n);
  auto& c = v[n == 1 ? 0 : hint.spread % n];
  if (!c) c = std::make_unique<BackendConn>(host_, node.endpoint, proto, false, node.user);
  return *c;
}

BackendConn& NodePool::ReadOnly(Node& own, int proto, const BackendUser* user) {
  Node& node = ForUser(own, user);
  auto& v = node.shared[ProtoIndex(proto)];
  if (v.empty()) v.resize(1);
  if (!v[0]) {
    v[0] = std::make_unique<BackendConn>(host_, node.endpoint, proto, false, node.user);
    v[0]->set_readonly(true);
  }
  return *v[0];
}

std::unique_ptr<BackendConn> NodePool::TakeDedicated(const config::Endpoint& ep, int proto,
                                                     const BackendUser* user) {
  auto& idle = ForUser(Get(ep), user).idle_dedicated[ProtoIndex(proto)];
  while (!idle.empty()) {
    auto c = std::move(idle.back());
    idle.pop_back();
    if (c->connected()) return c;
  }
  return std::make_unique<BackendConn>(host_, ep, proto, true, user);
}

void NodePool::ReturnDedicated(std::unique_ptr<BackendConn> conn) {
  std::string key = conn->endpoint().ToString();
  if (conn->user() != nullptr) key += "#" + conn->user()->name;
  auto it = nodes_.find(key);
  if (it == nodes_.end() || !conn->connected() || conn->pending() > 0 ||
      it->second->idle_dedicated[ProtoIndex(conn->proto())].size() >= kMaxIdleDedicated) {
    BackendConn* c = conn.release();
    asio::post(host_.loop().io(), [c] { delete c; });  // may be inside its own read handler
    return;
  }
  it->second->idle_dedicated[ProtoIndex(conn->proto())].push_back(std::move(conn));
}

void NodePool::Forget(ReplySink* sink) {
  for (auto& [name, node] : nodes_) {
    for (auto& v : node->shared) {
      for (auto& c : v) {
        if (c) c->Forget(sink);
      }
    }
  }
  for (auto& c : draining_) c->Forget(sink);
}

void NodePool::CheckTimeouts(uint64_t now_ns, uint64_t timeout_ns) {
  for (size_t i = 0; i < draining_.size();) {
    draining_[i]->CheckTimeout(now_ns, timeout_ns);
    if (draining_[i]->pending() == 0) {
      BackendConn* c = draining_[i].release();
      asio::post(host_.loop().io(), [c] { delete c; });  // not inside its own handlers
      draining_[i] = std::move(draining_.back());
      draining_.pop_back();
    } else {
      ++i;
    }
  }
  const uint32_t idle_ms = host_.settings().tenant_connection_idle_ms;
  for (auto& [name, node] : nodes_) {
    for (auto& v : node->shared) {
      for (auto& c : v) {
        if (!c) continue;
        c->CheckTimeout(now_ns, timeout_ns);
        // A tenant's connections (backend.acl: per_tenant) go once seen idle at
        // every check for idle_ms (no cost per request; at worst a light
        // tenant reconnects once per idle_ms). Shared() opens a new one.
        if (node->user == nullptr || idle_ms == 0) continue;
        if (c->pending() != 0) {
          c->idle_since_ns = 0;
        } else if (c->idle_since_ns == 0) {
          c->idle_since_ns = now_ns;
        } else if (now_ns - c->idle_since_ns >= uint64_t{idle_ms} * 1000000) {
          DrainAndDrop(std::move(c));
        }
      }
    }
  }
}

void NodePool::DrainAndDrop(std::unique_ptr<BackendConn> conn) {
  if (!conn) return;
  asio::io_context& io = host_.loop().io();
  if (conn->pending() == 0) {
    BackendConn* c = conn.release();
    asio::post(io, [c] { delete c; });
    return;
  }
  // Requests in flight still get their replies; the connection goes when drained.
  draining_.push_back(std::move(conn));
}

void NodePool::DrainAll() {
  for (auto& [name, node] : nodes_) {
    for (auto& v : node->shared) {
      for (auto& c : v) DrainAndDrop(std::move(c));
    }
  }
  nodes_.clear();
}

}  // namespace keyfence::proxy
