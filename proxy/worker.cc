#include "proxy/worker.h"

#include "proxy/commands/tracking.h"

#include <unistd.h>

#include <future>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "proxy/net/client_stream.h"
#include "proxy/net/tls_stream.h"
#include "proxy/session/session.h"
#include "proxy/server.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kTickInterval = std::chrono::milliseconds(100);
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
}  // namespace

Worker::Worker(int index, Server& server, WorkerMetrics& metrics)
    : index_(index),
      server_(server),
      metrics_(metrics),
      work_(asio::make_work_guard(loop_.io())),
      tracking_(std::make_unique<TrackingHub>(loop_)),
      tick_(loop_.io()),
      // Client ids are unique across workers: the worker index in the top bits.
      next_client_id_((static_cast<uint64_t>(index) << 40) + 1) {}

Worker::~Worker() = default;

namespace {
// What the backend connections are made from: a change reconnects them.
std::string ConnectionKey(const config::Backend& b) {
  std::string k;
  for (const auto& n : b.nodes) k += n.ToString() + ",";
  k += "|" + b.sentinel.master + "|";
  for (const auto& n : b.sentinel.nodes) k += n.ToString() + ",";
  k += "|" + b.username + "|" + b.password + "|" + std::to_string(b.connections_per_node);
  k += "|" + (b.tls ? b.tls->fingerprint : std::string("plain"));
  return k;
}
}  // namespace

void Worker::PublishSnapshot(config::SnapshotPtr snap) {
  asio::post(loop_.io(),
             [this, snap = std::move(snap)]() mutable { ApplySnapshot(std::move(snap)); });
}

void Worker::ApplySnapshot(config::SnapshotPtr snap) {
  const bool first = snapshot_ == nullptr;
  const bool mode_changed = first || snapshot_->backend.mode != snap->backend.mode;
  const bool backend_changed = mode_changed || ConnectionKey(snapshot_->backend) !=
                                                   ConnectionKey(snap->backend);
  if (snap->backend.tls && (!backend_tls_ || backend_tls_->settings().fingerprint !=
                                                 snap->backend.tls->fingerprint)) {
    std::string err;
    if (auto ctx = BackendTlsContext::Shared(*snap->backend.tls, &err)) {
      backend_tls_ = std::move(ctx);
    } else {
      spdlog::error("backend.tls: {} (the previous TLS settings stay)", err);
    }
  } else if (!snap->backend.tls) {
    backend_tls_.reset();
  }
  snapshot_ = std::move(snap);
  snapshot_version_ = snapshot_->version;
  if (!first) UpdateTls();
  // Live connections pick up the new config now (a removed tenant's are closed).
  std::vector<Session*> live;
  for (auto& s : sessions_) live.push_back(s.get());
  for (Session* s : live) {
    if (!s->closed()) s->RefreshSnapshot();
  }
  loop_.FlushDirty();
  if (mode_changed) {
    if (backend_) {
      backend_->Reconfigure();
      retired_.push_back(std::move(backend_));
    }
    backend_ = MakeBackend(*this, snapshot_->backend);
  } else if (backend_changed) {
    // New requests go to the new backend; requests in flight on the old
    // connections still get their replies: the datacenter switch.
    backend_->Reconfigure();
  }
}

void Worker::PublishSlotMap(SlotMapPtr map) {
  asio::post(loop_.io(), [this, map = std::move(map)] {
    if (backend_) backend_->ApplySlotMap(map);
  });
}

void Worker::RequestTopologyRefresh() { server_.RequestTopologyRefresh(); }

const MetricsRegistry& Worker::registry() const { return server_.registry(); }

void Worker::AskAllWorkers(SessionVisit visit,
                           std::function<void(std::vector<std::string>)> done) {
  server_.AskAllWorkers(*this, std::move(visit), std::move(done));
}

void Worker::PostToSession(uint64_t id, std::function<void(Session*)> fn) {
  const uint64_t w = id >> 40;  // next_client_id_: the worker's index in the top bits
  if (w == static_cast<uint64_t>(index_)) return fn(FindSession(id));
  server_.PostToWorker(w, [id, fn = std::move(fn)](Worker& worker) {
    fn(worker.FindSession(id));
  });
}

Session* Worker::FindSession(uint64_t id) {
  for (auto& s : sessions_) {
    if (s->id() == id && !s->closed()) return s.get();
  }
  return nullptr;
}

std::string Worker::VisitSessions(const SessionVisit& visit) {
  std::vector<Session*> live;
  for (auto& s : sessions_) {
    if (!s->closed()) live.push_back(s.get());
  }
  return visit(live);
}

void Worker::Listen(const std::vector<config::Listener>& listeners,
                    const std::map<std::string, int>& unix_fds) {
  for (const auto& l : listeners) {
    auto a = std::make_unique<Acceptor>(
        Acceptor{tcp::acceptor(loop_.io()), nullptr, nullptr, l, nullptr, 0});
    if (l.is_unix()) {
      // Every worker accepts on its own dup() of the one listening socket.
      const int fd = ::dup(unix_fds.at(l.unix_path));
      if (fd < 0) throw std::runtime_error("dup of " + l.Name() + " failed");
      a->unix = std::make_unique<asio::local::stream_protocol::acceptor>(
          loop_.io(), asio::local::stream_protocol(), fd);
      acceptors_.push_back(std::move(a));
      continue;
    }
    if (l.tls) {
      std::string err;
      a->tls = TlsContext::Make(*l.tls, &err);
      if (!a->tls) throw std::runtime_error("tls on " + l.Name() + ": " + err);
    }
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
  loop_.mux().Start();
  thread_ = std::thread([this] {
    try {
      loop_.io().run();
    } catch (const std::exception& e) {
      spdlog::critical("worker {}: unexpected exception: {}", index_, e.what());
      std::abort();
    }
  });
}

bool Worker::Acceptor::is_open() const {
  return unix ? unix->is_open() : acceptor.is_open();
}

void Worker::Accept(size_t i) {
  Acceptor& a = *acceptors_[i];
  if (a.unix) {
    a.unix->async_accept([this, i](const boost::system::error_code& ec,
                                   asio::local::stream_protocol::socket sock) {
      Accepted(i, ec, std::move(sock));
    });
    return;
  }
  a.acceptor.async_accept([this, i](const boost::system::error_code& ec, tcp::socket sock) {
    Accepted(i, ec, std::move(sock));
  });
}

std::unique_ptr<ClientStream> Worker::Wrap(size_t i, tcp::socket sock) {
  if (const auto& tls = acceptors_[i]->tls) return std::make_unique<TlsStream>(std::move(sock), tls);
  return std::make_unique<TcpStream>(std::move(sock));
}

std::unique_ptr<ClientStream> Worker::Wrap(size_t, asio::local::stream_protocol::socket sock) {
  return std::make_unique<UnixStream>(std::move(sock));
}

// A new snapshot with other certificate material for a TLS listener: new
// connections get a new context; open ones keep theirs. A context OpenSSL
// refuses keeps the old one (logged).
void Worker::UpdateTls() {
  for (auto& a : acceptors_) {
    if (!a->tls) continue;
    for (const config::Listener& l : snapshot_->listeners) {
      if (l.Name() != a->listener.Name() || !l.tls) continue;
      if (l.tls->fingerprint == a->tls->fingerprint()) break;
      std::string err;
      if (auto ctx = TlsContext::Make(*l.tls, &err)) {
        a->tls = std::move(ctx);
        if (index_ == 0) spdlog::info("tls: {}: new certificate in use", l.Name());
      } else {
        spdlog::error("tls: {}: {}; the previous certificate stays", l.Name(), err);
      }
      break;
    }
  }
}

template <class Socket>
void Worker::Accepted(size_t i, const boost::system::error_code& ec, Socket sock) {
  if (ec) {
    if (ec == asio::error::operation_aborted || stopping_ || !acceptors_[i]->is_open()) return;
    return AcceptFailed(i, ec);
  }
  acceptors_[i]->backoff_ms = 0;
  if (!server_.TryAddClient()) {
    boost::system::error_code ignored;
    if (acceptors_[i]->tls) {  // no plain text into a TLS client: just closed
      sock.close(ignored);
      return Accept(i);
    }
    std::string e = "-";
    e.append(protocol::errors::kMaxClients);
    e.append("\r\n");
    asio::write(sock, asio::buffer(e), ignored);
    sock.close(ignored);
    return Accept(i);
  }
  auto s = std::make_unique<Session>(*this, Wrap(i, std::move(sock)), acceptors_[i]->listener,
                                     next_client_id_++);
  Session* raw = s.get();
  sessions_.push_back(std::move(s));
  sessions_count_.fetch_add(1, std::memory_order_relaxed);
  raw->Start();
  loop_.FlushDirty();
  Accept(i);
}

bool Worker::TryAddUnauthenticated(const std::string& addr, uint32_t per_addr, uint64_t total) {
  return server_.TryAddUnauthenticated(addr, per_addr, total);
}

const BackendUser* Worker::BackendUserFor(std::string_view app) {
  return server_.acl().For(app);
}

void Worker::RemoveUnauthenticated(const std::string& addr) {
  server_.RemoveUnauthenticated(addr);
}

void Worker::AcceptFailed(size_t i, const boost::system::error_code& ec) {
  constexpr uint32_t kFirstMs = 10, kMaxMs = 1000;
  metrics_.CountAcceptError();
  Acceptor& a = *acceptors_[i];
  a.backoff_ms = a.backoff_ms == 0 ? kFirstMs : std::min(a.backoff_ms * 2, kMaxMs);
  const uint64_t now = Loop::NowNs();
  if (now - last_accept_log_ns_ >= 1000000000) {
    last_accept_log_ns_ = now;
    spdlog::warn("worker {}: accept failed on {}: {}; pausing accepts for {} ms", index_,
                 a.listener.Name(), ec.message(), a.backoff_ms);
  }
  if (!a.pause) a.pause = std::make_unique<asio::steady_timer>(loop_.io());
  a.pause->expires_after(std::chrono::milliseconds(a.backoff_ms));
  a.pause->async_wait([this, i](const boost::system::error_code& e) {
    if (!e && !stopping_ && acceptors_[i]->is_open()) Accept(i);
  });
}

namespace {
constexpr uint32_t kMaxAuthFailures = 10;
constexpr uint32_t kFreeAuthFailures = 3;
constexpr uint64_t kAuthWindowNs = 60ull * 1000000000;
constexpr size_t kMaxAuthEntries = 10000;
}  // namespace

uint64_t Worker::AuthWait(const std::string& key, uint64_t now_ns) {
  auto it = auth_failures_.find(key);
  if (it == auth_failures_.end()) return 0;
  if (now_ns - it->second.window_start_ns > kAuthWindowNs) {
    auth_failures_.erase(it);
    return 0;
  }
  if (it->second.count >= kMaxAuthFailures) return UINT64_MAX;
  return it->second.next_ns > now_ns ? it->second.next_ns - now_ns : 0;
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
  // Free at first (typos), then each further attempt waits longer.
  if (f.count >= kFreeAuthFailures) {
    const uint64_t ms = std::min<uint64_t>(50ull << (f.count - kFreeAuthFailures), 1000);
    f.next_ns = now_ns + ms * 1000000;
  }
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

template <typename T, typename Fn>
T Worker::AskTenant(const std::string& tenant, Fn fn) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  asio::post(loop_.io(), [this, tenant, promise, fn] {
    auto it = tenants_.find(tenant);
    promise->set_value(fn(it == tenants_.end() ? nullptr : it->second.get()));
  });
  if (future.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready) return T{};
  return future.get();
}

std::vector<std::pair<std::string, uint64_t>> Worker::HotKeysOf(const std::string& tenant) {
  using Result = std::vector<std::pair<std::string, uint64_t>>;
  return AskTenant<Result>(tenant, [](TenantLocal* t) {
    return t == nullptr ? Result{} : t->hot.Top(64);
  });
}

std::vector<BigKeys::Entry> Worker::BigKeysOf(const std::string& tenant) {
  using Result = std::vector<BigKeys::Entry>;
  return AskTenant<Result>(tenant, [](TenantLocal* t) {
    return t == nullptr ? Result{} : t->hot.big.Top(BigKeys::kCapacity);
  });
}

void Worker::SessionClosed(Session* s) {
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->get() == s) {
      graveyard_.push_back(std::move(*it));
      sessions_.erase(it);
      break;
    }
  }
  sessions_count_.fetch_sub(1, std::memory_order_relaxed);
  server_.RemoveClient();
  asio::post(loop_.io(), [this] { graveyard_.clear(); });
}

void Worker::Tick() {
  tick_.expires_after(kTickInterval);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    if (++ticks_ % 50 == 0) {  // every 5 s: hot-key counts halve (a decaying window)
      for (auto& [name, t] : tenants_) t->hot.Decay();
    }
    if (ticks_ % 5 == 0) {  // every 0.5 s: clients over the soft output limit for too long
      const uint64_t now = Loop::NowNs();
      for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session* s = (it++)->get();  // a close erases it from the list
        s->CheckOutput(now);
      }
    }
    if (backend_) {
      backend_->CheckTimeouts(Loop::NowNs());
      loop_.FlushDirty();
    }
    Tick();
  });
}

void Worker::StopAccepting() {
  asio::post(loop_.io(), [this] {
    for (auto& a : acceptors_) {
      boost::system::error_code ec;
      a->acceptor.close(ec);
      if (a->unix) a->unix->close(ec);
      if (a->pause) a->pause->cancel();
    }
  });
}

void Worker::PollBusy() {
  asio::post(loop_.io(), [this] {
    bool busy = false;
    for (auto& s : sessions_) busy = !s->quiet() || busy;  // every one: quiet() notes reads
    busy_.store(busy, std::memory_order_relaxed);
    has_clients_.store(!sessions_.empty(), std::memory_order_relaxed);
  });
}

void Worker::Stop() {
  asio::post(loop_.io(), [this] {
    stopping_ = true;
    tick_.cancel();
    loop_.mux().Stop();
    for (auto& a : acceptors_) {
      boost::system::error_code ec;
      a->acceptor.close(ec);
      if (a->pause) a->pause->cancel();
    }
    std::vector<Session*> all;
    for (auto& s : sessions_) all.push_back(s.get());
    for (Session* s : all) s->Close();
    graveyard_.clear();
    retired_.clear();
    backend_.reset();
    work_.reset();
    loop_.io().stop();
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
  graveyard_.clear();
  sessions_.clear();
}

}  // namespace keyfence::proxy
