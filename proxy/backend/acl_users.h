// backend.acl: per_tenant. Each tenant's traffic runs on backend connections
// authenticated as the tenant's own ACL user (tenancy/acl_rules.h: its
// prefix only, its forwarded commands only), so Redis itself refuses what
// keyfence's key finder or a script's redis.call() would let through.
// keyfence creates and updates the users with ACL SETUSER on every node it
// learns of (the configured nodes, then every master and replica of each
// topology, before the workers see it), over ControlLink with backend.username/
// password, which must hold ACL rights. Passwords are random (256 bits),
// kept in memory for the process's life. The same per-node setup applies
// backend.notify_keyspace_events (CONFIG SET) on every node. Thread-safe: the control and the
// topology threads provision; workers read users (never freed).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend_conn.h"

namespace keyfence::proxy {

class AclUsers {
 public:
  // The users of `snap`'s tenants (a new tenant gets a password) set on
  // `nodes` and on every node provisioned before. False if a node refused.
  bool Apply(const config::SnapshotPtr& snap, const std::vector<config::Endpoint>& nodes);
  // Nodes of a new topology: the current users set on those not done yet.
  void AddNodes(const std::vector<config::Endpoint>& nodes);
  // The tenant's user; null if backend.acl is off (or the tenant unknown).
  const BackendUser* For(std::string_view app) const;
  size_t count() const;

 private:
  bool ProvisionLocked(const config::Endpoint& node);
  // backend.acl per_tenant or backend.notify_keyspace_events: every node is set up.
  bool NodeSetupWanted() const;  // mu_
  mutable std::mutex mu_;
  config::SnapshotPtr snap_;                                     // mu_
  std::map<std::string, std::unique_ptr<BackendUser>, std::less<>> users_;  // by app; mu_
  std::set<std::string> done_;                                   // nodes provisioned; mu_
  std::map<std::string, config::Endpoint> nodes_;                // every node seen; mu_
};

}  // namespace keyfence::proxy
