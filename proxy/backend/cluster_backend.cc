#include "proxy/backend/cluster_backend.h"

#include "protocol/error_replies.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy {

ClusterBackend::ClusterBackend(BackendHost& host)
    : host_(host), pool_(host), router_(host, *this) {
  owner_.fill(-1);
}

ClusterBackend::~ClusterBackend() = default;

int ClusterBackend::SlotOf(uint16_t prefix_crc, std::span<const std::string_view> args,
                           const tenancy::NameRefs& refs, bool* cross) const {
  *cross = false;
  int slot = kAnySlot;
  for (const tenancy::NameRef& r : refs) {
    if (r.kind != tenancy::RefKind::kKey && r.kind != tenancy::RefKind::kShardChannel) continue;
    int s = tenancy::BackendKeySlot(prefix_crc, args[r.pos]);
    if (slot == kAnySlot) {
      slot = s;
    } else if (s != slot) {
      *cross = true;
    }
  }
  return slot;
}

std::string& ClusterBackend::Prepare(int slot, int proto, BackendHint hint) {
  // Replica reads pick their connection at Commit(), from the command's flags.
  prepared_direct_ = host_.settings().read_from == config::ReadFrom::kMaster;
  if (prepared_direct_) return router_.PrepareDirect(slot, proto, hint);
  prepared_slot_ = slot;
  prepared_proto_ = proto;
  prepared_user_ = hint.user;
  return router_.Prepare();
}

void ClusterBackend::Commit(ReplySink* sink, uint64_t tag, SendFlags flags) {
  if (prepared_direct_) return router_.CommitDirect(sink, tag, flags.follow_redirects);
  router_.Commit(prepared_slot_, sink, tag, prepared_proto_, flags.follow_redirects,
                 flags.read_only, prepared_user_);
}

std::unique_ptr<BackendConn> ClusterBackend::Dedicated(int slot, int proto, std::string* error,
                                                 const BackendUser* user) {
  int idx = MasterForSlot(slot);
  if (idx < 0) {
    host_.RequestTopologyRefresh();
    error->assign(protocol::errors::kTopologyUnknown);
    return nullptr;
  }
  return pool_.TakeDedicated(masters_[idx], proto, user);
}

bool ClusterBackend::NodeFor(int slot, config::Endpoint* ep) {
  int idx = MasterForSlot(slot);
  if (idx < 0) {
    host_.RequestTopologyRefresh();
    return false;
  }
  *ep = masters_[idx];
  return true;
}

bool ClusterBackend::NoteRedirect(std::string_view error) {
  std::string_view e = error;
  if (!e.empty() && e[0] == '-') e.remove_prefix(1);
  int slot;
  config::Endpoint ep;
  if (!(e.starts_with("MOVED ") || e.starts_with("ASK ")) || !ParseRedirect(e, &slot, &ep)) {
    return false;
  }
  host_.RequestTopologyRefresh();
  int node = MasterIndex(ep);  // only nodes of the known topology
  if (node >= 0 && e[0] == 'M') NoteMoved(slot, node);
  return true;
}

const std::vector<config::Endpoint>& ClusterBackend::Masters() {
  if (masters_.empty()) host_.RequestTopologyRefresh();
  return masters_;
}

void ClusterBackend::Forget(ReplySink* sink) {
  router_.Forget(sink);
  pool_.Forget(sink);
}

void ClusterBackend::CheckTimeouts(uint64_t now_ns) {
  pool_.CheckTimeouts(now_ns, uint64_t{host_.settings().request_timeout_ms} * 1000000);
}

void ClusterBackend::ApplySlotMap(SlotMapPtr map) {
  slot_map_ = map;
  masters_ = map->masters;
  owner_ = map->owner;
  master_nodes_.clear();
  master_fast_[0].clear();
  master_fast_[1].clear();
  for (const auto& m : masters_) master_nodes_.push_back(&pool_.Get(m));
  replicas_ = map->replicas;
  replicas_.resize(masters_.size());
}

void ClusterBackend::Reconfigure() {
  pool_.DrainAll();
  master_nodes_.clear();
  master_fast_[0].clear();
  master_fast_[1].clear();
  masters_.clear();  // the next topology (refreshed on reload) fills them again
  replicas_.clear();
  slot_map_.reset();
  owner_.fill(-1);
}

bool ClusterBackend::KnowsNode(const config::Endpoint& ep) const {
  if (slot_map_ && slot_map_->Knows(ep.ToString())) return true;
  for (const auto& m : masters_) {
    if (m.host == ep.host && m.port == ep.port) return true;
  }
  return false;
}

int ClusterBackend::MasterIndex(const config::Endpoint& ep) {
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (masters_[i].host == ep.host && masters_[i].port == ep.port) return static_cast<int>(i);
  }
  if (!KnowsNode(ep)) return -1;
  masters_.push_back(ep);  // a replica promoted, or a new master
  master_nodes_.push_back(&pool_.Get(ep));
  replicas_.resize(masters_.size());
  return static_cast<int>(masters_.size() - 1);
}

BackendConn& ClusterBackend::MasterConn(int master, int proto, BackendHint hint) {
  if (hint.user != nullptr) return pool_.Shared(*master_nodes_[master], proto, hint);
  std::vector<BackendConn*>& fast = master_fast_[proto == 3 ? 1 : 0];
  const size_t i = static_cast<size_t>(master);
  if (i < fast.size() && fast[i] != nullptr) return *fast[i];
  BackendConn& c = pool_.Shared(*master_nodes_[master], proto, hint);
  if (host_.settings().connections_per_node <= 1) {
    if (fast.size() <= i) fast.resize(i + 1, nullptr);
    fast[i] = &c;
  }
  return c;
}

BackendConn* ClusterBackend::ReplicaConn(int master, int proto, BackendHint hint) {
  config::ReadFrom rf = host_.settings().read_from;
  if (rf == config::ReadFrom::kMaster || static_cast<size_t>(master) >= replicas_.size() ||
      replicas_[master].empty()) {
    return nullptr;
  }
  const auto& reps = replicas_[master];
  BackendConn& c = pool_.ReadOnly(pool_.Get(reps[hint.spread % reps.size()]), proto, hint.user);
  if (rf == config::ReadFrom::kPreferReplica && !c.Available()) return nullptr;
  return &c;
}

}  // namespace keyfence::proxy
