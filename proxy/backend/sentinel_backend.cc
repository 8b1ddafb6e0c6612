#include "proxy/backend/sentinel_backend.h"

#include "protocol/error_replies.h"

namespace keyfence::proxy {

SentinelBackend::SentinelBackend(BackendHost& host)
    : host_(host), pool_(host), router_(host, *this) {}

SentinelBackend::~SentinelBackend() = default;

std::string& SentinelBackend::Prepare(int, int proto, BackendHint hint) {
  prepared_direct_ = host_.settings().read_from == config::ReadFrom::kMaster;
  if (prepared_direct_) return router_.PrepareDirect(kAnySlot, proto, hint);
  prepared_proto_ = proto;
  prepared_user_ = hint.user;
  return router_.Prepare();
}

void SentinelBackend::Commit(ReplySink* sink, uint64_t tag, SendFlags flags) {
  if (prepared_direct_) return router_.CommitDirect(sink, tag, flags.follow_redirects);
  router_.Commit(kAnySlot, sink, tag, prepared_proto_, flags.follow_redirects, flags.read_only,
                 prepared_user_);
}

std::unique_ptr<BackendConn> SentinelBackend::Dedicated(int, int proto, std::string* error,
                                                        const BackendUser* user) {
  if (masters_.empty()) {
    host_.RequestTopologyRefresh();
    error->assign(protocol::errors::kMasterUnknown);
    return nullptr;
  }
  return pool_.TakeDedicated(masters_[0], proto, user);
}

const std::vector<config::Endpoint>& SentinelBackend::Masters() {
  if (masters_.empty()) host_.RequestTopologyRefresh();
  return masters_;
}

bool SentinelBackend::NodeFor(int, config::Endpoint* ep) {
  if (masters_.empty()) {
    host_.RequestTopologyRefresh();
    return false;
  }
  *ep = masters_[0];
  return true;
}

void SentinelBackend::Forget(ReplySink* sink) {
  router_.Forget(sink);
  pool_.Forget(sink);
}

void SentinelBackend::CheckTimeouts(uint64_t now_ns) {
  pool_.CheckTimeouts(now_ns, uint64_t{host_.settings().request_timeout_ms} * 1000000);
}

void SentinelBackend::Forget() {
  master_node_ = nullptr;
  fast_[0] = fast_[1] = nullptr;
}

void SentinelBackend::ApplySlotMap(SlotMapPtr map) {
  if (map->masters.empty()) return;
  const bool moved = masters_.empty() || masters_[0].ToString() != map->masters[0].ToString();
  if (moved && !masters_.empty()) {
    // A failover: the old master's connections finish what they carry, then close;
    // new requests (and the ones waiting) go to the new master.
    pool_.DrainAll();
  }
  if (moved) Forget();
  masters_ = {map->masters[0]};
  replicas_ = map->replicas.empty() ? std::vector<config::Endpoint>{} : map->replicas[0];
}

void SentinelBackend::Reconfigure() {
  // New credentials or TLS: new connections. The master stays what the
  // sentinels last named (discovery publishes only a change).
  pool_.DrainAll();
  Forget();
}

int SentinelBackend::MasterIndex(const config::Endpoint& ep) {
  return !masters_.empty() && masters_[0].host == ep.host && masters_[0].port == ep.port ? 0 : -1;
}

BackendConn& SentinelBackend::MasterConn(int, int proto, BackendHint hint) {
  if (master_node_ == nullptr) master_node_ = &pool_.Get(masters_[0]);
  if (hint.user != nullptr) return pool_.Shared(*master_node_, proto, hint);
  BackendConn*& fast = fast_[proto == 3 ? 1 : 0];
  if (fast != nullptr) return *fast;
  BackendConn& c = pool_.Shared(*master_node_, proto, hint);
  if (host_.settings().connections_per_node <= 1) fast = &c;
  return c;
}

BackendConn* SentinelBackend::ReplicaConn(int, int proto, BackendHint hint) {
  const config::ReadFrom rf = host_.settings().read_from;
  if (rf == config::ReadFrom::kMaster || replicas_.empty()) return nullptr;
  // A plain shared connection: READONLY is a cluster command.
  BackendConn& c = pool_.Shared(pool_.Get(replicas_[hint.spread % replicas_.size()]), proto, hint);
  if (rf == config::ReadFrom::kPreferReplica && !c.Available()) return nullptr;
  return &c;
}

}  // namespace keyfence::proxy
