// A worker: one thread and its loop (io_context, read multiplexer, per-turn
// flush), its own acceptors (SO_REUSEPORT), its client sessions and its
// backend (connections, cluster slot table). Nothing here is shared with
// other workers except the immutable config snapshot and slot maps (posted
// in) and the metrics, which the scraper reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "config/config.h"
#include "proxy/backend/backend.h"
#include "proxy/base/metrics.h"
#include "proxy/base/tenant_state.h"
#include "proxy/net/loop.h"
#include "proxy/session/session_host.h"

namespace keyfence::proxy {

class ClientStream;
class TlsContext;

class Server;
class Session;

class Worker final : public SessionHost, public BackendHost {
 public:
  Worker(int index, Server& server, WorkerMetrics& metrics);
  ~Worker() override;

  int index() const { return index_; }

  // Thread-safe: posts the snapshot to the worker thread.
  void PublishSnapshot(config::SnapshotPtr snap);
  // Thread-safe: posts a new cluster topology to the worker thread.
  void PublishSlotMap(SlotMapPtr map);

  // Opens the acceptors (on the calling thread, before Start()). Throws on error.
  // `unix_fds`: the listening Unix sockets by path (opened by the server).
  void Listen(const std::vector<config::Listener>& listeners,
              const std::map<std::string, int>& unix_fds);
  void Start();          // runs the thread
  void StopAccepting();  // thread-safe
  // Thread-safe: asks the worker whether any connection still has work under
  // way (Session::quiet: replies owed, input unread, or bytes read since the
  // previous poll); the answer lands in busy() shortly after, and
  // has_clients() says whether any connection is open at all.
  void PollBusy();
  bool busy() const { return busy_.load(std::memory_order_relaxed); }
  bool has_clients() const { return has_clients_.load(std::memory_order_relaxed); }
  void Stop();  // thread-safe: closes everything, ends the loop
  void Join();
  // Thread-safe: the tenant's hot keys on this worker (waits for the worker).
  std::vector<std::pair<std::string, uint64_t>> HotKeysOf(const std::string& tenant);
  // Thread-safe: the tenant's big keys on this worker (waits for the worker).
  std::vector<BigKeys::Entry> BigKeysOf(const std::string& tenant);

  // SessionHost and BackendHost.
  Loop& loop() override { return loop_; }
  const config::SnapshotPtr& snapshot() const override { return snapshot_; }
  uint64_t snapshot_version() const override { return snapshot_version_; }
  Backend& backend() override { return *backend_; }
  TenantLocal& Tenant(const std::string& name) override;
  TenantCounters& Unauthenticated() override {
    if (unauthenticated_ == nullptr) unauthenticated_ = &metrics_.ForTenant("unauthenticated");
    return *unauthenticated_;
  }
  uint64_t AuthWait(const std::string& key, uint64_t now_ns) override;
  void AuthFailed(const std::string& addr, uint64_t now_ns) override;
  bool TryAddUnauthenticated(const std::string& addr, uint32_t per_addr,
                             uint64_t total) override;
  void RemoveUnauthenticated(const std::string& addr) override;
  const BackendUser* BackendUserFor(std::string_view app) override;
  const MetricsRegistry& registry() const override;
  void AskAllWorkers(SessionVisit visit,
                     std::function<void(std::vector<std::string>)> done) override;
  Session* FindSession(uint64_t id) override;
  void PostToSession(uint64_t id, std::function<void(Session*)> fn) override;
  TrackingHub& tracking_hub() override { return *tracking_; }
  // On this worker's thread: `visit` over its live sessions.
  std::string VisitSessions(const SessionVisit& visit);
  size_t sessions() const override { return sessions_count_.load(std::memory_order_relaxed); }
  void SessionClosed(Session* s) override;
  WorkerMetrics& metrics() override { return metrics_; }
  const config::Backend& settings() const override { return snapshot_->backend; }
  std::shared_ptr<BackendTlsContext> backend_tls() const override { return backend_tls_; }
  void RequestTopologyRefresh() override;

 private:
  void Accept(size_t i);
  template <class Socket>
  void Accepted(size_t i, const boost::system::error_code& ec, Socket sock);
  std::unique_ptr<ClientStream> Wrap(size_t i, boost::asio::ip::tcp::socket sock);
  std::unique_ptr<ClientStream> Wrap(size_t i, boost::asio::local::stream_protocol::socket sock);
  void UpdateTls();
  void Tick();
  void ApplySnapshot(config::SnapshotPtr snap);
  // Runs fn(TenantLocal*) (null: no state for the tenant) on the worker thread
  // and returns its result, or T{} when the worker does not answer in 500 ms.
  template <typename T, typename Fn>
  T AskTenant(const std::string& tenant, Fn fn);

  int index_;
  Server& server_;
  WorkerMetrics& metrics_;
  Loop loop_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  struct Acceptor {
    boost::asio::ip::tcp::acceptor acceptor;  // TCP listeners
    std::unique_ptr<boost::asio::local::stream_protocol::acceptor> unix;  // Unix ones
    bool is_open() const;
    std::shared_ptr<TlsContext> tls;  // TLS listeners: the context for new connections
    config::Listener listener;
    // After a failed accept (EMFILE at the fd limit): accepting pauses, with
    // backoff, instead of spinning; the connections wait in the backlog.
    std::unique_ptr<boost::asio::steady_timer> pause;
    uint32_t backoff_ms = 0;
  };
  // An accept failed: count it, log at most once a second, retry later.
  void AcceptFailed(size_t i, const boost::system::error_code& ec);
  uint64_t last_accept_log_ns_ = 0;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  config::SnapshotPtr snapshot_;
  uint64_t snapshot_version_ = 0;
  std::unique_ptr<Backend> backend_;
  // Backends of an earlier backend.mode, kept until the process ends: their
  // requests in flight still get replies (reloads that switch modes are rare).
  std::vector<std::unique_ptr<Backend>> retired_;
  // After backend_ (its connections go first), before the sessions (they
  // leave it when they go).
  std::unique_ptr<TrackingHub> tracking_;
  std::list<std::unique_ptr<Session>> sessions_;
  std::atomic<size_t> sessions_count_{0};
  std::atomic<bool> busy_{true};
  std::shared_ptr<BackendTlsContext> backend_tls_;  // backend.tls of the snapshot
  std::atomic<bool> has_clients_{true};
  std::vector<std::unique_ptr<Session>> graveyard_;
  boost::asio::steady_timer tick_;
  uint64_t next_client_id_;
  bool stopping_ = false;
  absl::flat_hash_map<std::string, std::unique_ptr<TenantLocal>> tenants_;
  uint64_t ticks_ = 0;
  TenantCounters* unauthenticated_ = nullptr;
  struct AuthFailures {
    uint32_t count = 0;
    uint64_t window_start_ns = 0;
    uint64_t next_ns = 0;  // the next attempt waits until then
  };
  absl::flat_hash_map<std::string, AuthFailures> auth_failures_;
};

}  // namespace keyfence::proxy
