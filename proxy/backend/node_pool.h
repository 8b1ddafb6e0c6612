// The connections of one worker to each backend node: shared multiplexed
// connections per protocol version (connections_per_node of them), a replica
// read connection, and idle dedicated connections kept for reuse.
// Worker-local.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "config/config.h"
#include "proxy/backend/backend_conn.h"

namespace keyfence::proxy {

class NodePool {
 public:
  // One node's connections for one user (null: keyfence's own). A tenant's
  // ACL user (backend.acl: per_tenant) has Nodes of its own, made lazily.
  struct Node {
    config::Endpoint endpoint;
    const BackendUser* user = nullptr;
    std::vector<std::unique_ptr<BackendConn>> shared[2];  // [proto 2, proto 3]
    std::vector<std::unique_ptr<BackendConn>> idle_dedicated[2];
    std::vector<Node*> by_user;  // own Node: its users' Nodes, by BackendUser::index
  };

  explicit NodePool(BackendHost& host) : host_(host) {}
  ~NodePool();

  Node& Get(const config::Endpoint& ep);
  // The Node of `own` (a Get() result) for `user` (null: `own` itself).
  Node& ForUser(Node& own, const BackendUser* user);
  // A shared connection of `node` for hint.user, spread over
  // connections_per_node by hint.spread.
  BackendConn& Shared(Node& node, int proto, BackendHint hint);
  // The replica-read connection of `node` (READONLY in its handshake).
  BackendConn& ReadOnly(Node& node, int proto, const BackendUser* user = nullptr);
  std::unique_ptr<BackendConn> TakeDedicated(const config::Endpoint& ep, int proto,
                                             const BackendUser* user = nullptr);
  void ReturnDedicated(std::unique_ptr<BackendConn> conn);
  void Forget(ReplySink* sink);
  void CheckTimeouts(uint64_t now_ns, uint64_t timeout_ns);
  // Every shared connection finishes what is in flight, then goes; the pool
  // starts empty (pointers to its nodes are invalid afterwards).
  void DrainAll();

 private:
  void DrainAndDrop(std::unique_ptr<BackendConn> conn);
  BackendHost& host_;
  absl::flat_hash_map<std::string, std::unique_ptr<Node>> nodes_;  // by "host:port"
  // Dropped connections with replies still owed: still timed out and
  // forgotten like the others, freed once empty (CheckTimeouts).
  std::vector<std::unique_ptr<BackendConn>> draining_;
};

}  // namespace keyfence::proxy
