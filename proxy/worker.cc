#include "proxy/worker.h"

#include <future>

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "proxy/client_session.h"
#include "proxy/server.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr size_t kMaxIdleDedicated = 16;
constexpr auto kTickInterval = std::chrono::milliseconds(100);
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
}  // namespace

Worker::Worker(int index, Server& server, WorkerMetrics& metrics)
    : index_(index),
      server_(server),
      metrics_(metrics),
      io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
      work_(asio::make_work_guard(io_)),
      tick_(io_),
      mux_(io_),
      // Client ids are unique across workers: the worker index in the top bits.
      next_client_id_((static_cast<uint64_t>(index) << 40) + 1) {}

Worker::~Worker() = default;

void Worker::PublishSnapshot(config::SnapshotPtr snap) {
  asio::post(io_, [this, snap = std::move(snap)]() mutable { ApplySnapshot(std::move(snap)); });
}

void Worker::DrainAndDrop(std::unique_ptr<BackendConn> conn) {
  if (!conn) return;
  if (conn->pending() == 0) {
    BackendConn* c = conn.release();
    asio::post(io_, [c] { delete c; });
    return;
  }
  // Requests in flight still get their replies; the connection goes when drained.
  BackendConn* old = conn.release();
  auto drain = std::make_shared<asio::steady_timer>(io_);
  auto check = std::make_shared<std::function<void()>>();
  *check = [old, drain, check]() {
    if (old->pending() == 0) {
      delete old;
      *check = nullptr;
      return;
    }
    drain->expires_after(std::chrono::milliseconds(50));
    drain->async_wait([check](const boost::system::error_code&) {
      if (*check) (*check)();
    });
  };
  (*check)();
}

void Worker::ApplySnapshot(config::SnapshotPtr snap) {
  bool backend_changed = snapshot_ == nullptr ||
                         snapshot_->backend.mode != snap->backend.mode ||
                         snapshot_->backend.nodes[0].ToString() != snap->backend.nodes[0].ToString() ||
                         snapshot_->backend.connections_per_node != snap->backend.connections_per_node ||
                         snapshot_->backend.password != snap->backend.password ||
                         snapshot_->backend.username != snap->backend.username;
  snapshot_ = std::move(snap);
  snapshot_version_ = snapshot_->version;
  // Live connections pick up the new config now (a removed tenant's are closed).
  std::vector<ClientSession*> live;
  for (auto& s : sessions_) live.push_back(s.get());
  for (ClientSession* s : live) {
    if (!s->closed()) s->RefreshSnapshot();
  }
  FlushDirty();
  cluster_ = snapshot_->backend.mode == config::BackendMode::kCluster;
  if (!router_) router_ = std::make_unique<Router>(*this);
  if (backend_changed) {
    // New requests go to the new backend; requests in flight on the old
    // connections still get their replies (the old connections are kept
    // until they drain, then dropped): the datacenter switch.
    for (auto& [name, nc] : nodes_) {
      for (auto& v : nc->shared) {
        for (auto& c : v) DrainAndDrop(std::move(c));
      }
    }
    nodes_.clear();
    standalone_ = nullptr;
    master_nodes_.clear();
    masters_.clear();  // the next topology (refreshed on reload) fills them again
    slot_map_.reset();
  }
}

void Worker::PublishSlotMap(SlotMapPtr map) {
  asio::post(io_, [this, map = std::move(map)] {
    slot_map_ = map;
    masters_ = map->masters;
    owner_ = map->owner;
    master_nodes_.clear();
    for (const auto& m : masters_) master_nodes_.push_back(&Node(m));
    replicas_ = map->replicas;
    replicas_.resize(masters_.size());
  });
}

bool Worker::EndpointForSlot(int slot, config::Endpoint* ep) const {
  if (!cluster_) {
    *ep = snapshot_->backend.nodes[0];
    return true;
  }
  if (masters_.empty()) return false;
  int idx = slot < 0 ? 0 : owner_[slot];
  if (idx < 0 || static_cast<size_t>(idx) >= masters_.size()) return false;
  *ep = masters_[idx];
  return true;
}

bool Worker::KnowsNode(const config::Endpoint& ep) const {
  if (slot_map_ && slot_map_->Knows(ep.ToString())) return true;
  for (const auto& m : masters_) {
    if (m.host == ep.host && m.port == ep.port) return true;
  }
  return false;
}

void Worker::NoteMoved(int slot, int master) { owner_[slot] = static_cast<int16_t>(master); }

int Worker::MasterIndex(const config::Endpoint& ep) {
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (masters_[i].host == ep.host && masters_[i].port == ep.port) return static_cast<int>(i);
  }
  if (!KnowsNode(ep)) return -1;
  masters_.push_back(ep);  // a replica promoted, or a new master
  master_nodes_.push_back(&Node(ep));
  replicas_.resize(masters_.size());
  return static_cast<int>(masters_.size() - 1);
}

BackendConn* Worker::ReplicaConn(int master, int proto, uint64_t hint) {
  config::ReadFrom rf = snapshot_->backend.read_from;
  if (rf == config::ReadFrom::kMaster || static_cast<size_t>(master) >= replicas_.size() ||
      replicas_[master].empty()) {
    return nullptr;
  }
  const auto& reps = replicas_[master];
  const config::Endpoint& ep = reps[hint % reps.size()];
  NodeConns& nc = Node(ep);
  auto& v = nc.shared[proto == 3 ? 1 : 0];
  if (v.empty()) v.resize(1);
  if (!v[0]) {
    v[0] = std::make_unique<BackendConn>(*this, ep, proto, false);
    v[0]->set_readonly(true);
  }
  if (rf == config::ReadFrom::kPreferReplica && !v[0]->Available()) return nullptr;
  return v[0].get();
}

Worker::NodeConns& Worker::Node(const config::Endpoint& ep) {
  auto& p = nodes_[ep.ToString()];
  if (!p) p = std::make_unique<NodeConns>();
  return *p;
}

BackendConn& Worker::MasterConn(int master, int proto, uint64_t hint) {
  NodeConns& nc = *master_nodes_[master];
  auto& v = nc.shared[proto == 3 ? 1 : 0];
  size_t n = std::max<uint32_t>(1, snapshot_->backend.connections_per_node);
  if (v.size() != n) v.resize(n);
  auto& c = v[hint % n];
  if (!c) c = std::make_unique<BackendConn>(*this, masters_[master], proto, false);
  return *c;
}

void Worker::RequestTopologyRefresh() { server_.RequestTopologyRefresh(); }

void Worker::ForgetEverywhere(ReplySink* sink) {
  if (router_) router_->Forget(sink);
  for (auto& [name, nc] : nodes_) {
    for (auto& v : nc->shared) {
      for (auto& c : v) {
        if (c) c->Forget(sink);
      }
    }
  }
}

void Worker::Listen(const std::vector<config::Listener>& listeners) {
  for (const auto& l : listeners) {
    auto a = std::make_unique<Acceptor>(Acceptor{tcp::acceptor(io_), l});
    tcp::endpoint ep(asio::ip::make_address(l.bind.host), l.bind.port);
    a->acceptor.open(ep.protocol());
    a->acceptor.set_option(tcp::acceptor::reuse_address(true));
    a->acceptor.set_option(ReusePort(true));
    a->acceptor.bind(ep);
    a->acceptor.listen(1024);
    acceptors_.push_back(std::move(a));
  }
}

void Worker::Start() {
  for (size_t i = 0; i < acceptors_.size(); ++i) Accept(i);
  Tick();
  mux_.Start();
  thread_ = std::thread([this] {
    try {
      io_.run();
    } catch (const std::exception& e) {
      spdlog::critical("worker {}: unexpected exception: {}", index_, e.what());
      std::abort();
    }
  });
}

void Worker::Accept(size_t i) {
  Acceptor& a = *acceptors_[i];
  a.acceptor.async_accept([this, i](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) return;
      spdlog::warn("worker {}: accept failed: {}", index_, ec.message());
      return Accept(i);
    }
    if (!server_.TryAddClient()) {
      std::string e = "-";
      e.append(protocol::errors::kMaxClients);
      e.append("\r\n");
      boost::system::error_code ignored;
      asio::write(sock, asio::buffer(e), ignored);
      sock.close(ignored);
      return Accept(i);
    }
    auto s = std::make_unique<ClientSession>(*this, std::move(sock), acceptors_[i]->listener,
                                             NextClientId());
    ClientSession* raw = s.get();
    sessions_.push_back(std::move(s));
    sessions_count_.fetch_add(1, std::memory_order_relaxed);
    raw->Start();
    FlushDirty();
    Accept(i);
  });
}

uint64_t Worker::NextClientId() { return next_client_id_++; }

namespace {
constexpr uint32_t kMaxAuthFailures = 10;
constexpr uint64_t kAuthWindowNs = 60ull * 1000000000;
constexpr size_t kMaxAuthEntries = 10000;
}  // namespace

bool Worker::AuthThrottled(const std::string& addr, uint64_t now_ns) {
  auto it = auth_failures_.find(addr);
  if (it == auth_failures_.end()) return false;
  if (now_ns - it->second.window_start_ns > kAuthWindowNs) {
    auth_failures_.erase(it);
    return false;
  }
  return it->second.count >= kMaxAuthFailures;
}

void Worker::AuthFailed(const std::string& addr, uint64_t now_ns) {
  if (auth_failures_.size() >= kMaxAuthEntries) {
    absl::erase_if(auth_failures_, [now_ns](const auto& kv) {
      return now_ns - kv.second.window_start_ns > kAuthWindowNs;
    });
    if (auth_failures_.size() >= kMaxAuthEntries) auth_failures_.clear();
  }
  AuthFailures& f = auth_failures_[addr];
  if (f.count == 0 || now_ns - f.window_start_ns > kAuthWindowNs) {
    f.count = 0;
    f.window_start_ns = now_ns;
  }
  ++f.count;
}

TenantLocal& Worker::Tenant(const std::string& name) {
  auto& p = tenants_[name];
  if (!p) {
    p = std::make_unique<TenantLocal>();
    p->shared = &server_.tenants().Get(name);
    p->counters = &metrics_.ForTenant(name);
    p->ops.set_shared(&p->shared->ops);
    p->bytes.set_shared(&p->shared->bytes);
  }
  return *p;
}

std::vector<std::pair<std::string, uint64_t>> Worker::HotKeysOf(const std::string& tenant) {
  auto promise = std::make_shared<std::promise<std::vector<std::pair<std::string, uint64_t>>>>();
  auto future = promise->get_future();
  asio::post(io_, [this, tenant, promise] {
    auto it = tenants_.find(tenant);
    promise->set_value(it == tenants_.end() ? std::vector<std::pair<std::string, uint64_t>>{}
                                            : it->second->hot.Top(64));
  });
  if (future.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready) return {};
  return future.get();
}

void Worker::SessionClosed(ClientSession* s) {
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->get() == s) {
      graveyard_.push_back(std::move(*it));
      sessions_.erase(it);
      break;
    }
  }
  sessions_count_.fetch_sub(1, std::memory_order_relaxed);
  server_.RemoveClient();
  asio::post(io_, [this] { graveyard_.clear(); });
}

BackendConn& Worker::Shared(int proto, uint64_t hint) {
  if (cluster_ && !masters_.empty()) return MasterConn(0, proto, hint);
  // Standalone (the hot path): the node's connections are cached, no lookup.
  if (standalone_ == nullptr) standalone_ = &Node(snapshot_->backend.nodes[0]);
  auto& v = standalone_->shared[proto == 3 ? 1 : 0];
  size_t n = std::max<uint32_t>(1, snapshot_->backend.connections_per_node);
  if (v.size() != n) v.resize(n);
  auto& c = v[n == 1 ? 0 : hint % n];
  if (!c) c = std::make_unique<BackendConn>(*this, snapshot_->backend.nodes[0], proto, false);
  return *c;
}

BackendConn& Worker::NodeConn(const config::Endpoint& node, int proto, uint64_t hint) {
  NodeConns& nc = Node(node);
  auto& v = nc.shared[proto == 3 ? 1 : 0];
  size_t n = std::max<uint32_t>(1, snapshot_->backend.connections_per_node);
  if (v.size() != n) v.resize(n);
  auto& c = v[hint % n];
  if (!c) c = std::make_unique<BackendConn>(*this, node, proto, false);
  return *c;
}

std::unique_ptr<BackendConn> Worker::TakeDedicated(int proto, const config::Endpoint* node) {
  config::Endpoint ep;
  if (node != nullptr) {
    ep = *node;
  } else if (!EndpointForSlot(Router::kAnySlot, &ep)) {
    ep = snapshot_->backend.nodes[0];
  }
  auto& idle = Node(ep).idle_dedicated[proto == 3 ? 1 : 0];
  while (!idle.empty()) {
    auto c = std::move(idle.back());
    idle.pop_back();
    if (c->connected()) return c;
  }
  return std::make_unique<BackendConn>(*this, ep, proto, true);
}

void Worker::ReturnDedicated(std::unique_ptr<BackendConn> conn) {
  auto it = nodes_.find(conn->endpoint().ToString());
  if (it == nodes_.end() || !conn->connected() || conn->pending() > 0 ||
      it->second->idle_dedicated[conn->proto() == 3 ? 1 : 0].size() >= kMaxIdleDedicated) {
    BackendConn* c = conn.release();
    asio::post(io_, [c] { delete c; });  // may be inside its own read handler
    return;
  }
  it->second->idle_dedicated[conn->proto() == 3 ? 1 : 0].push_back(std::move(conn));
}

void Worker::MarkDirty(ClientSession* s) {
  if (s->dirty_) return;
  s->dirty_ = true;
  dirty_sessions_.push_back(s);
}

void Worker::MarkDirty(BackendConn* c) {
  if (c->dirty_) return;
  c->dirty_ = true;
  dirty_backends_.push_back(c);
}

void Worker::ScheduleFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [this] {
    flush_posted_ = false;
    FlushDirty();
  });
}

void Worker::FlushDirty() {
  // Backends first: requests reach Redis before we wait on client writes.
  while (!dirty_backends_.empty() || !dirty_sessions_.empty()) {
    for (size_t i = 0; i < dirty_backends_.size(); ++i) {
      dirty_backends_[i]->dirty_ = false;
      dirty_backends_[i]->Flush();
    }
    dirty_backends_.clear();
    for (size_t i = 0; i < dirty_sessions_.size(); ++i) {
      ClientSession* s = dirty_sessions_[i];
      s->dirty_ = false;
      s->Flush();
    }
    dirty_sessions_.clear();
  }
}

void Worker::Tick() {
  tick_.expires_after(kTickInterval);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    if (++ticks_ % 50 == 0) {  // every 5 s: hot-key counts halve (a decaying window)
      for (auto& [name, t] : tenants_) t->hot.Decay();
    }
    if (snapshot_) {
      uint64_t timeout = uint64_t{snapshot_->backend.request_timeout_ms} * 1000000;
      uint64_t now = NowNs();
      for (auto& [name, nc] : nodes_) {
        for (auto& v : nc->shared) {
          for (auto& c : v) {
            if (c) c->CheckTimeout(now, timeout);
          }
        }
      }
      FlushDirty();
    }
    Tick();
  });
}

void Worker::StopAccepting() {
  asio::post(io_, [this] {
    for (auto& a : acceptors_) {
      boost::system::error_code ec;
      a->acceptor.close(ec);
    }
  });
}

void Worker::PollBusy() {
  asio::post(io_, [this] {
    bool busy = false;
    for (auto& s : sessions_) {
      if (!s->closed() && s->has_inflight()) {
        busy = true;
        break;
      }
    }
    busy_.store(busy, std::memory_order_relaxed);
  });
}

void Worker::Stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    tick_.cancel();
    mux_.Stop();
    for (auto& a : acceptors_) {
      boost::system::error_code ec;
      a->acceptor.close(ec);
    }
    std::vector<ClientSession*> all;
    for (auto& s : sessions_) all.push_back(s.get());
    for (ClientSession* s : all) s->Close();
    router_.reset();
    master_nodes_.clear();
    standalone_ = nullptr;
    nodes_.clear();
    work_.reset();
    io_.stop();
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
  graveyard_.clear();
  sessions_.clear();
}

}  // namespace keyfence::proxy
