// backend.mode: sentinel — the request side. Like a standalone server (no
// slots, multi-key commands anywhere), but the server is the master that
// SentinelDiscovery last published, and it changes under load: requests go
// through the Router, which keeps each one's bytes, so that a request that
// was not sent (the master unreachable, a connect refused) or was refused
// unexecuted (-READONLY: the old master, demoted) waits — bounded by
// backend.retry_budget_ms — and goes to the new master. A request that was
// sent when the connection died gets its error (it may have run). Replica
// reads (read_from) use the replicas Sentinel lists, without READONLY.
// Worker-local.
#pragma once

#include <memory>
#include <vector>

#include "proxy/backend/backend.h"
#include "proxy/backend/node_pool.h"
#include "proxy/backend/router.h"

namespace keyfence::proxy {

class SentinelBackend final : public Backend, public ClusterView {
 public:
  explicit SentinelBackend(BackendHost& host);
  ~SentinelBackend() override;

  int SlotOf(uint16_t, std::span<const std::string_view>, const tenancy::NameRefs&,
             bool* cross) const override {
    *cross = false;
    return kAnySlot;
  }
  std::string& Prepare(int slot, int proto, BackendHint hint) override;
  void Commit(ReplySink* sink, uint64_t tag, SendFlags flags) override;
  std::unique_ptr<BackendConn> Dedicated(int slot, int proto, std::string* error,
                                         const BackendUser* user) override;
  void ReturnDedicated(std::unique_ptr<BackendConn> conn) override {
    pool_.ReturnDedicated(std::move(conn));
  }
  const std::vector<config::Endpoint>& Masters() override;
  bool NodeFor(int slot, config::Endpoint* ep) override;
  std::unique_ptr<BackendConn> DedicatedTo(const config::Endpoint& node, int proto,
                                           const BackendUser* user) override {
    return pool_.TakeDedicated(node, proto, user);
  }
  BackendConn& NodeConn(const config::Endpoint& node, int proto, BackendHint hint) override {
    return pool_.Shared(pool_.Get(node), proto, hint);
  }
  void Forget(ReplySink* sink) override;
  void CheckTimeouts(uint64_t now_ns) override;
  void ApplySlotMap(SlotMapPtr map) override;
  void Reconfigure() override;

  // ClusterView (for the Router): one master, index 0.
  int MasterForSlot(int) const override { return masters_.empty() ? -1 : 0; }
  BackendConn& MasterConn(int master, int proto, BackendHint hint) override;
  BackendConn* ReplicaConn(int master, int proto, BackendHint hint) override;
  int MasterIndex(const config::Endpoint& ep) override;
  void NoteMoved(int, int) override {}
  bool WaitsForMaster() const override { return true; }

 private:
  void Forget();  // the master's cached connections

  BackendHost& host_;
  NodePool pool_;
  Router router_;
  std::vector<config::Endpoint> masters_;  // empty or the one master
  std::vector<config::Endpoint> replicas_;
  NodePool::Node* master_node_ = nullptr;
  BackendConn* fast_[2] = {nullptr, nullptr};  // [proto 2, 3] with connections_per_node 1
  int prepared_proto_ = 2;
  const BackendUser* prepared_user_ = nullptr;
  bool prepared_direct_ = false;
};

}  // namespace keyfence::proxy
