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
  std::string& Prepare(int slot, int proto, uint64_t hint) override;
  void Commit(ReplySink* sink, uint64_t tag, SendFlags flags) override;
  std::unique_ptr<BackendConn> Dedicated(int slot, int proto, std::string* error) override;
  void ReturnDedicated(std::unique_ptr<BackendConn> conn) override {
    pool_.ReturnDedicated(std::move(conn));
  }
  const std::vector<config::Endpoint>& Masters() override;
  BackendConn& NodeConn(const config::Endpoint& node, int proto, uint64_t hint) override {
    return pool_.Shared(pool_.Get(node), proto, hint);
  }
  void Forget(ReplySink* sink) override { pool_.Forget(sink); }
  void CheckTimeouts(uint64_t now_ns) override;
  void Reconfigure() override;

 private:
  BackendHost& host_;
  NodePool pool_;
  NodePool::Node* server_ = nullptr;  // cached: no lookup per request
  std::vector<config::Endpoint> masters_;
  BackendConn* prepared_ = nullptr;     // the connection of the open Prepare()
  bool prepared_down_ = false;
  std::string down_;                    // Prepare()'s buffer while the server is down
};

}  // namespace keyfence::proxy
