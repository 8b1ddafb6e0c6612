// Cluster request routing for one worker: sends a request to the master that
// owns its slot, and follows the cluster's answers so the client never sees
// them: MOVED (patch this worker's slot table, ask for a topology refresh,
// resend), ASK (ASKING + resend to the importing node, table untouched),
// TRYAGAIN and CLUSTERDOWN (bounded retries with backoff). Redirects are
// followed only to nodes of the known topology, at most kMaxRedirects times,
// and never for scripts (a script can forge the error text).
//
// Each request in flight keeps a copy of its bytes for a resend; the slab of
// entries and their strings are reused, so steady state allocates nothing.
// Worker-local.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend_conn.h"
#include "proxy/backend/backend_host.h"

namespace keyfence::proxy {

// The slot table and connections the Router routes with (ClusterBackend).
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // The master index owning a slot (-1 if unknown; kAnySlot: the first master).
  virtual int MasterForSlot(int slot) const = 0;
  virtual BackendConn& MasterConn(int master, int proto, BackendHint hint) = 0;
  // backend.read_from: a replica connection of `master` for a read, or null.
  virtual BackendConn* ReplicaConn(int master, int proto, BackendHint hint) = 0;
  // Index of ep among the masters, adding it if the topology knows it (a
  // promoted replica); -1 if the node is unknown.
  virtual int MasterIndex(const config::Endpoint& ep) = 0;
  virtual void NoteMoved(int slot, int master) = 0;
  // A master that can change under load (Sentinel): a request that could not
  // be sent, or came back -READONLY (not run), waits for the next master.
  virtual bool WaitsForMaster() const { return false; }
};

class Router : public ReplySink {
 public:
  static constexpr int kAnySlot = -1;
  static constexpr int kMaxRedirects = 5;  // MOVED hops (a stale table loops otherwise)
  // TRYAGAIN, ASK and CLUSTERDOWN (a slot migration, a failover) are retried
  // with backoff (kRetryBaseMs doubling up to kMaxRetryDelayMs) for as long as
  // backend.retry_budget_ms allows, counted from the first retry; kMaxHops
  // bounds the sends of one request whatever the budget.
  static constexpr int kMaxRetryDelayMs = 200;
  static constexpr int kMaxHops = 200;
  // While a slot has no master (failover in progress) a request waits in
  // steps of kOwnerWaitMs, asking for a fresh topology each time, at most
  // kMaxOwnerWaits times, then fails with CLUSTERDOWN.
  static constexpr int kOwnerWaitMs = 100;
  static constexpr int kMaxOwnerWaits = 8;
  static constexpr int kMasterWaitMs = 50;

  Router(BackendHost& host, ClusterView& view) : host_(host), view_(view) {}

  // Sends one complete RESP request for `slot`; the final reply goes to
  // sink->OnReply(tag, frame).
  void Send(std::string_view bytes, int slot, ReplySink* sink, uint64_t tag, int proto,
            bool follow_redirects);
  // The same without a copy: write the request into Prepare()'s buffer, then
  // Commit() it (one Prepare/Commit pair at a time).
  std::string& Prepare();
  void Commit(int slot, ReplySink* sink, uint64_t tag, int proto, bool follow_redirects,
              bool read_only = false, const BackendUser* user = nullptr);
  // The hot path, written once: the buffer is the output buffer of the
  // slot's master connection when it is up (the bytes are copied into the
  // entry at CommitDirect() for a resend after a redirect); else the entry's
  // own buffer, sent as Commit() would. Replica reads use Prepare/Commit.
  std::string& PrepareDirect(int slot, int proto, BackendHint hint);
  void CommitDirect(ReplySink* sink, uint64_t tag, bool follow_redirects);
  void Forget(ReplySink* sink);
  void OnReply(uint64_t rid, std::string_view frame) override;

 private:
  struct Inflight {
    ReplySink* sink = nullptr;
    uint64_t tag = 0;
    int slot = kAnySlot;
    int proto = 2;
    int redirects = 0;  // MOVED followed
    int hops = 0;       // sends after the first
    int retries = 0;    // TRYAGAIN / CLUSTERDOWN / unknown node waits
    uint64_t retry_start_ns = 0;  // the first redirect or retry (0: none yet)
    int waits = 0;  // retries while the slot has no known master
    bool follow = true;
    bool in_use = false;
    bool asking = false;
    bool read = false;         // may go to a replica (backend.read_from)
    bool via_replica = false;  // the last send went to a replica
    std::string bytes;
    int node = -1;  // master index in the worker's table
    BackendHint hint;  // spreads clients over connections_per_node; whom it runs as
  };
  uint32_t Allocate();
  void Start(Inflight& f, int slot, int proto, BackendHint hint, bool read_only);
  void Transmit(uint32_t rid);
  bool WithinBudget(uint32_t rid);
  void RetryLater(uint32_t rid, int delay_ms);
  void WaitForOwner(uint32_t rid);
  // WaitsForMaster(): again in kMasterWaitMs (a refresh asked for), while
  // the retry budget lasts; then `error_frame`.
  void WaitForMaster(uint32_t rid, std::string_view error_frame);
  void ResendAfter(uint32_t rid, int ms);
  void Finish(uint32_t rid, std::string_view frame);

  BackendHost& host_;
  ClusterView& view_;
  std::vector<Inflight> slab_;
  std::vector<uint32_t> free_;
  uint32_t prepared_ = UINT32_MAX;
  BackendConn* direct_ = nullptr;  // PrepareDirect() wrote into this connection
  size_t direct_mark_ = 0;         // from this offset of its output buffer
};

// "MOVED 3999 127.0.0.1:6381" / "ASK ..." -> slot and endpoint.
bool ParseRedirect(std::string_view error, int* slot, config::Endpoint* ep);

}  // namespace keyfence::proxy
