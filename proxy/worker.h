// A worker: one thread, one io_context, its own acceptors (SO_REUSEPORT), its
// client sessions and its backend connections. Nothing here is shared with
// other workers except the immutable config snapshot (posted in) and the
// metrics, which the scraper reads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>

#include "config/config.h"
#include "proxy/backend_conn.h"
#include "proxy/metrics.h"
#include "proxy/read_mux.h"
#include "proxy/router.h"
#include "proxy/cluster/slot_map.h"
#include "proxy/tenant_state.h"

namespace keyfence::proxy {

class ClientSession;
class Server;

class Worker {
 public:
  Worker(int index, Server& server, WorkerMetrics& metrics);
  ~Worker();

  boost::asio::io_context& io() { return io_; }
  int index() const { return index_; }
  Server& server() { return server_; }
  WorkerMetrics& metrics() { return metrics_; }
  ReadMux& mux() { return mux_; }

  // Thread-safe: posts the snapshot to the worker thread.
  void PublishSnapshot(config::SnapshotPtr snap);
  const config::SnapshotPtr& snapshot() const { return snapshot_; }
  uint64_t snapshot_version() const { return snapshot_version_; }

  // Opens the acceptors (on the calling thread, before Start()). Throws on error.
  void Listen(const std::vector<config::Listener>& listeners);
  void Start();                 // runs the thread
  void StopAccepting();         // thread-safe
  // Thread-safe: asks the worker whether requests are still in flight; the
  // answer lands in busy() shortly after.
  void PollBusy();
  bool busy() const { return busy_.load(std::memory_order_relaxed); }
  void Stop();                  // thread-safe: closes everything, ends the loop
  void Join();
  size_t sessions() const { return sessions_count_.load(std::memory_order_relaxed); }

  // The shared, multiplexed connection to the standalone backend (or, in
  // cluster mode, to the first master) for a protocol version, spread over
  // connections_per_node by `hint`.
  BackendConn& Shared(int proto, uint64_t hint);
  // The shared connection to one node.
  BackendConn& NodeConn(const config::Endpoint& node, int proto, uint64_t hint);
  // A dedicated connection (transactions, blocking commands, subscribers),
  // to `node` or, by default, where Shared() goes.
  std::unique_ptr<BackendConn> TakeDedicated(int proto, const config::Endpoint* node = nullptr);

  // Cluster mode.
  bool cluster() const { return cluster_; }
  Router& router() { return *router_; }
  // Thread-safe: posts a new topology to the worker thread.
  void PublishSlotMap(SlotMapPtr map);
  // The node for a slot (Router::kAnySlot: any master). False if unknown yet.
  bool EndpointForSlot(int slot, config::Endpoint* ep) const;
  bool KnowsNode(const config::Endpoint& ep) const;
  void NoteMoved(int slot, int master);
  // Hot path of the Router: the master index owning a slot (-1 if unknown)
  // and its shared connection, without building endpoint strings.
  int MasterForSlot(int slot) const {
    if (masters_.empty()) return -1;
    int idx = slot < 0 ? 0 : owner_[slot];
    return idx >= 0 && static_cast<size_t>(idx) < masters_.size() ? idx : -1;
  }
  BackendConn& MasterConn(int master, int proto, uint64_t hint);
  // backend.read_from: a replica connection of `master` for a read, or null
  // (read_from: master, no replica known, or prefer_replica with the replica down).
  BackendConn* ReplicaConn(int master, int proto, uint64_t hint);
  // Index of ep in masters_, adding it if the topology knows it (a promoted
  // replica); -1 if the node is unknown.
  int MasterIndex(const config::Endpoint& ep);
  void RequestTopologyRefresh();
  // Drops every reply still owed to `sink` (its owner is going away).
  void ForgetEverywhere(ReplySink* sink);
  const std::vector<config::Endpoint>& masters() const { return masters_; }
  // Returns a clean dedicated connection for reuse (or closes it).
  void ReturnDedicated(std::unique_ptr<BackendConn> conn);

  void MarkDirty(ClientSession* s);
  void MarkDirty(BackendConn* c);
  // Flushes every socket written to during this loop turn: one write each.
  void FlushDirty();
  // Schedules FlushDirty() after the handlers that are already ready to run,
  // so that requests from many clients read in one loop turn share one
  // backend write.
  void ScheduleFlush();

  void SessionClosed(ClientSession* s);
  // Failed AUTH attempts per client address (DESIGN.md: throttled per address):
  // after kMaxAuthFailures in kAuthWindow, AUTH from that address is refused
  // until the window ends. Per worker, bounded in size.
  bool AuthThrottled(const std::string& addr, uint64_t now_ns);
  void AuthFailed(const std::string& addr, uint64_t now_ns);
  // Counters for requests rejected before AUTH (tenant="unauthenticated").
  TenantCounters& Unauthenticated() {
    if (unauthenticated_ == nullptr) unauthenticated_ = &metrics_.ForTenant("unauthenticated");
    return *unauthenticated_;
  }
  // This worker's state for a tenant (created on first use).
  TenantLocal& Tenant(const std::string& name);
  // Thread-safe: the tenant's hot keys on this worker (waits for the worker).
  std::vector<std::pair<std::string, uint64_t>> HotKeysOf(const std::string& tenant);
  uint64_t NextClientId();
  static uint64_t NowNs() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }

 private:
  void Accept(size_t i);
  void Tick();
  void ApplySnapshot(config::SnapshotPtr snap);

  int index_;
  Server& server_;
  WorkerMetrics& metrics_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  struct Acceptor {
    boost::asio::ip::tcp::acceptor acceptor;
    config::Listener listener;
  };
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  config::SnapshotPtr snapshot_;
  uint64_t snapshot_version_ = 0;
  std::list<std::unique_ptr<ClientSession>> sessions_;
  std::atomic<size_t> sessions_count_{0};
  std::atomic<bool> busy_{true};
  struct NodeConns {
    std::vector<std::unique_ptr<BackendConn>> shared[2];  // [proto 2, proto 3]
    std::vector<std::unique_ptr<BackendConn>> idle_dedicated[2];
  };
  absl::flat_hash_map<std::string, std::unique_ptr<NodeConns>> nodes_;  // by "host:port"
  NodeConns& Node(const config::Endpoint& ep);
  std::vector<NodeConns*> master_nodes_;  // parallel to masters_
  NodeConns* standalone_ = nullptr;       // the standalone backend's connections
  std::vector<std::vector<config::Endpoint>> replicas_;  // parallel to masters_
  void DrainAndDrop(std::unique_ptr<BackendConn> conn);
  bool cluster_ = false;
  std::unique_ptr<Router> router_;
  SlotMapPtr slot_map_;
  std::vector<config::Endpoint> masters_;  // this worker's view (MOVED patches it)
  std::array<int16_t, protocol::kNumSlots> owner_;
  std::vector<ClientSession*> dirty_sessions_;
  std::vector<BackendConn*> dirty_backends_;
  std::vector<std::unique_ptr<ClientSession>> graveyard_;
  boost::asio::steady_timer tick_;
  ReadMux mux_;
  uint64_t next_client_id_;
  bool stopping_ = false;
  bool flush_posted_ = false;
  absl::flat_hash_map<std::string, std::unique_ptr<TenantLocal>> tenants_;
  uint64_t ticks_ = 0;
  TenantCounters* unauthenticated_ = nullptr;
  struct AuthFailures {
    uint32_t count = 0;
    uint64_t window_start_ns = 0;
  };
  absl::flat_hash_map<std::string, AuthFailures> auth_failures_;
};

}  // namespace keyfence::proxy
