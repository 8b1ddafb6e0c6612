#include "proxy/backend/acl_users.h"

#include "proxy/backend/control_link.h"

#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include "proxy/base/text.h"
#include "tenancy/acl_rules.h"

namespace keyfence::proxy {

namespace {

std::string RandomPassword() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  return Hex(b, sizeof b);
}

std::optional<ControlReply> Run(ControlLink& c, const std::vector<std::string>& args) {
  std::vector<std::string_view> v(args.begin(), args.end());
  return c.Command(v);
}

std::string Why(const std::optional<ControlReply>& r) {
  return r ? r->str : std::string("connection lost");
}

}  // namespace

bool AclUsers::Apply(const config::SnapshotPtr& snap, const std::vector<config::Endpoint>& nodes) {
  std::lock_guard<std::mutex> l(mu_);
  snap_ = snap;
  if (!NodeSetupWanted()) return true;
  for (const config::Tenant& t : snap->tenants) {
    if (snap->backend.acl != config::BackendAcl::kPerTenant) break;
    if (users_.contains(t.app)) continue;
    auto u = std::make_unique<BackendUser>();
    u->name = tenancy::AclUserName(t);
    u->password = RandomPassword();
    u->index = static_cast<uint32_t>(users_.size());
    users_.emplace(t.app, std::move(u));
  }
  for (const config::Endpoint& n : nodes) nodes_.emplace(n.ToString(), n);
  bool ok = true;
  done_.clear();  // the rules may have changed: every node again
  for (const auto& [name, n] : nodes_) ok = ProvisionLocked(n) && ok;
  return ok;
}

void AclUsers::AddNodes(const std::vector<config::Endpoint>& nodes) {
  std::lock_guard<std::mutex> l(mu_);
  if (!snap_ || !NodeSetupWanted()) return;
  for (const config::Endpoint& n : nodes) {
    if (done_.contains(n.ToString())) continue;
    nodes_.emplace(n.ToString(), n);
    ProvisionLocked(n);
  }
}

bool AclUsers::NodeSetupWanted() const {
  return snap_->backend.acl == config::BackendAcl::kPerTenant ||
         !snap_->backend.notify_keyspace_events.empty();
}

const BackendUser* AclUsers::For(std::string_view app) const {
  std::lock_guard<std::mutex> l(mu_);
  if (!snap_ || snap_->backend.acl != config::BackendAcl::kPerTenant) return nullptr;
  auto it = users_.find(app);
  return it == users_.end() ? nullptr : it->second.get();
}

size_t AclUsers::count() const {
  std::lock_guard<std::mutex> l(mu_);
  return users_.size();
}

// ACL SETUSER for every tenant of the snapshot on one node; a node that
// cannot be reached is tried again with the next Apply/AddNodes.
bool AclUsers::ProvisionLocked(const config::Endpoint& node) {
  const config::Backend& be = snap_->backend;
  std::unique_ptr<ControlLink> link = ControlLink::Open(node, be, "backend node setup");
  if (!link) return false;
  if (!be.notify_keyspace_events.empty()) {
    auto r = Run(*link, {"CONFIG", "SET", "notify-keyspace-events", be.notify_keyspace_events});
    if (!r || r->is_error()) {
      spdlog::error("backend: CONFIG SET notify-keyspace-events on {} failed: {}", node.ToString(),
                    Why(r));
      return false;
    }
  }
  size_t n = 0;
  for (const config::Tenant& t : snap_->tenants) {
    if (be.acl != config::BackendAcl::kPerTenant) break;
    const BackendUser& u = *users_.at(t.app);
    std::vector<std::string> args = {"ACL", "SETUSER", u.name};
    for (std::string& a : tenancy::AclSetUserArgs(t, u.password)) args.push_back(std::move(a));
    auto r = Run(*link, args);
    if (!r || r->is_error()) {
      spdlog::error("backend acl: ACL SETUSER {} on {} failed: {}", u.name, node.ToString(),
                    Why(r));
      return false;
    }
    ++n;
  }
  done_.insert(node.ToString());
  spdlog::info("backend acl: {} tenant users set on {}", n, node.ToString());
  return true;
}

}  // namespace keyfence::proxy
