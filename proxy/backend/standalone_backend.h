// backend.mode: standalone — one redis-server. Every request goes to its
// shared connections; there are no slots.
// Worker-local.
#pragma once

#include "proxy/backend/backend.h"
#include "proxy/backend/node_pool.h"

namespace keyfence::proxy {

class StandaloneBackend final : public Backend {
 public:
  explicit StandaloneBackend(BackendHost& host) : host_(host), pool_(host) {}

  int SlotOf(uint16_t, std::span<const std::string_view>, const tenancy::NameRefs&,
             bool* cross) const override {
    *cross = false;
    return kAnySlot;
  }
  // The hot path: with one connection per node it is cached per protocol
  // and ready; anything else takes the slow path.
  std::string& Prepare(int /*slot*/, int proto, BackendHint hint) override {
    BackendConn* c = fast_[proto == 3 ? 1 : 0];
    if (c != nullptr && c->connected() && hint.user == nullptr) {
      prepared_ = c;
      return c->out();
    }
    return PrepareSlow(proto, hint);
  }
  void Commit(ReplySink* sink, uint64_t tag, SendFlags flags) override {
    if (!prepared_down_) {
      prepared_->Push(sink, tag);
      prepared_->MarkDirty();
      return;
    }
    CommitDown(sink, tag, flags);
  }
  std::unique_ptr<BackendConn> Dedicated(int slot, int proto, std::string* error,
                                                 const BackendUser* user) override;
  void ReturnDedicated(std::unique_ptr<BackendConn> conn) override {
    pool_.ReturnDedicated(std::move(conn));
  }
  const std::vector<config::Endpoint>& Masters() override;
  bool NodeFor(int, config::Endpoint* ep) override {
    *ep = host_.settings().nodes[0];
    return true;
  }
  std::unique_ptr<BackendConn> DedicatedTo(const config::Endpoint& node, int proto,
                                                   const BackendUser* user) override {
    return pool_.TakeDedicated(node, proto, user);
  }
  BackendConn& NodeConn(const config::Endpoint& node, int proto, BackendHint hint) override {
    return pool_.Shared(pool_.Get(node), proto, hint);
  }
  void Forget(ReplySink* sink) override { pool_.Forget(sink); }
  void CheckTimeouts(uint64_t now_ns) override;
  void Reconfigure() override;

 private:
  std::string& PrepareSlow(int proto, BackendHint hint);
  void CommitDown(ReplySink* sink, uint64_t tag, SendFlags flags);

  BackendHost& host_;
  NodePool pool_;
  NodePool::Node* server_ = nullptr;  // cached: no lookup per request
  std::vector<config::Endpoint> masters_;
  BackendConn* fast_[2] = {nullptr, nullptr};  // [proto 2, 3] with connections_per_node 1
  BackendConn* prepared_ = nullptr;     // the connection of the open Prepare()
  bool prepared_down_ = false;
  std::string down_;                    // Prepare()'s buffer while the server is down
};

}  // namespace keyfence::proxy
