// backend.mode: cluster — a Redis Cluster. This worker's copy of the slot
// table (MOVED patches it; each topology refresh replaces it), connections
// per node, and the Router that follows MOVED/ASK/TRYAGAIN/CLUSTERDOWN so the
// client never sees them. Replica reads per backend.read_from.
// Worker-local.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "proxy/backend/backend.h"
#include "proxy/backend/node_pool.h"
#include "proxy/backend/router.h"

namespace keyfence::proxy {

class ClusterBackend final : public Backend, public ClusterView {
 public:
  explicit ClusterBackend(BackendHost& host);
  ~ClusterBackend() override;

  int SlotOf(uint16_t prefix_crc, std::span<const std::string_view> args,
             const tenancy::NameRefs& refs, bool* cross) const override;
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
  bool NoteRedirect(std::string_view error) override;
  BackendConn& NodeConn(const config::Endpoint& node, int proto, BackendHint hint) override {
    return pool_.Shared(pool_.Get(node), proto, hint);
  }
  void Forget(ReplySink* sink) override;
  void CheckTimeouts(uint64_t now_ns) override;
  void ApplySlotMap(SlotMapPtr map) override;
  void Reconfigure() override;

  // ClusterView (for the Router).
  int MasterForSlot(int slot) const override {
    if (masters_.empty()) return -1;
    int idx = slot < 0 ? 0 : owner_[slot];
    return idx >= 0 && static_cast<size_t>(idx) < masters_.size() ? idx : -1;
  }
  BackendConn& MasterConn(int master, int proto, BackendHint hint) override;
  BackendConn* ReplicaConn(int master, int proto, BackendHint hint) override;
  int MasterIndex(const config::Endpoint& ep) override;
  void NoteMoved(int slot, int master) override {
    owner_[slot] = static_cast<int16_t>(master);
  }

 private:
  bool KnowsNode(const config::Endpoint& ep) const;

  BackendHost& host_;
  NodePool pool_;
  Router router_;
  SlotMapPtr slot_map_;
  std::vector<config::Endpoint> masters_;  // this worker's view (MOVED patches it)
  std::vector<NodePool::Node*> master_nodes_;  // parallel to masters_
  std::vector<std::vector<config::Endpoint>> replicas_;  // parallel to masters_
  std::array<int16_t, protocol::kNumSlots> owner_;
  // The master connections when connections_per_node is 1: [proto 2, 3] by
  // master index (no pool lookup per request).
  std::vector<BackendConn*> master_fast_[2];
  int prepared_slot_ = kAnySlot;
  const BackendUser* prepared_user_ = nullptr;
  int prepared_proto_ = 2;
  bool prepared_direct_ = false;
};

}  // namespace keyfence::proxy
