#include "proxy/backend/acl_users.h"

#include "proxy/backend/admin_link.h"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include "proxy/base/text.h"
#include "tenancy/acl_rules.h"

namespace keyfence::proxy {

namespace {

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

std::string RandomPassword() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  return Hex(b, sizeof b);
}

ReplyPtr Command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(redisCommandArgv(
                      c, static_cast<int>(argv.size()), argv.data(), lens.data())),
                  freeReplyObject);
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
  AdminLink link = ConnectAdmin(node, be, "backend node setup");
  if (!link) return false;
  redisContext* c = link.get();
  if (!be.notify_keyspace_events.empty()) {
    ReplyPtr r = Command(c, {"CONFIG", "SET", "notify-keyspace-events", be.notify_keyspace_events});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      spdlog::error("backend: CONFIG SET notify-keyspace-events on {} failed: {}", node.ToString(),
                    r ? std::string(r->str, r->len) : std::string(c->errstr));
      return false;
    }
  }
  size_t n = 0;
  for (const config::Tenant& t : snap_->tenants) {
    if (be.acl != config::BackendAcl::kPerTenant) break;
    const BackendUser& u = *users_.at(t.app);
    std::vector<std::string> args = {"ACL", "SETUSER", u.name};
    for (std::string& a : tenancy::AclSetUserArgs(t, u.password)) args.push_back(std::move(a));
    ReplyPtr r = Command(c, args);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      spdlog::error("backend acl: ACL SETUSER {} on {} failed: {}", u.name, node.ToString(),
                    r ? std::string(r->str, r->len) : std::string(c->errstr));
      return false;
    }
    ++n;
  }
  done_.insert(node.ToString());
  spdlog::info("backend acl: {} tenant users set on {}", n, node.ToString());
  return true;
}

}  // namespace keyfence::proxy
