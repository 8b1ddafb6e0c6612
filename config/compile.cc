// Spec -> Snapshot: the checks that need the whole document (duplicate binds
// and users, listener tenants that do not exist, passwords shared by two users,
// deny_commands names), then everything the hot path reads precomputed:
// prefixes, deny bitsets, merged limits, password digests, the user index.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/spec.h"
#include "protocol/command_table.h"

namespace keyfence::config::internal {

std::vector<Diagnostic> Diagnostics::Take() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  return std::move(errors_);
}

Limits LimitsSpec::ApplyTo(Limits base) const {
#define KF_APPLY(f) \
  if (f) base.f = *f;
  KF_CONFIG_LIMIT_FIELDS(KF_APPLY)
#undef KF_APPLY
  return base;
}

namespace {

using protocol::CommandInfo;
using protocol::CommandTable;

std::string Line(Pos p) { return "line " + std::to_string(p.line); }

void AddWithSubcommands(const CommandInfo& c, CommandSet* set) {
  set->Add(c.id);
  for (const CommandInfo& sub : c.subcommands) AddWithSubcommands(sub, set);
}

// Adds every entry to *set: "@category" -> each command and subcommand in it;
// "name" -> the command and all its subcommands; "parent|sub" -> that subcommand.
void ResolveDeny(const std::vector<DenyEntry>& entries, CommandSet* set, Diagnostics* diags) {
  const CommandTable& table = CommandTable::Get();
  for (const DenyEntry& e : entries) {
    if (!e.name.empty() && e.name[0] == '@') {
      uint32_t bit = 0;
      if (!CommandTable::ParseCategory(e.name, &bit)) {
        diags->Add(e.pos, e.path + ": unknown ACL category '" + e.name + "'");
        continue;
      }
      for (size_t id = 0; id < table.size(); ++id) {
        if (table.ById(static_cast<uint16_t>(id)).acl_categories & bit) {
          set->Add(static_cast<uint16_t>(id));
        }
      }
      continue;
    }
    const CommandInfo* info = table.FindByFullName(e.name);
    if (info == nullptr) {
      const bool spaced = e.name.find(' ') != std::string::npos;
      diags->Add(e.pos,
                 e.path + ": unknown command '" + e.name + "'" +
                     (spaced ? " (write a subcommand as PARENT|SUB, e.g. CLIENT|KILL)" : ""));
      continue;
    }
    AddWithSubcommands(*info, set);
  }
}

std::string LowerHost(const std::string& host) {
  std::string out = host;
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool IsWildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// Two binds that cannot both be listened on (or, with SO_REUSEPORT, would
// silently share connections): same port and same host, or a wildcard host.
bool Overlap(const Endpoint& a, const Endpoint& b) {
  if (a.port != b.port) return false;
  return LowerHost(a.host) == LowerHost(b.host) || IsWildcard(a.host) || IsWildcard(b.host);
}

void CheckListeners(const Spec& spec, Diagnostics* diags) {
  for (size_t i = 0; i < spec.listeners.size(); ++i) {
    const ListenerSpec& l = spec.listeners[i];
    for (size_t j = 0; j < i && !l.unix_path.empty(); ++j) {
      const ListenerSpec& o = spec.listeners[j];
      if (o.unix_path == l.unix_path) {
        diags->Add(l.unix_pos, l.path + ".unix: duplicate socket path " + Quote(l.unix_path) +
                                   " (" + o.path + ", " + Line(o.unix_pos) + ")");
        break;
      }
    }
    for (size_t j = 0; j < i && l.unix_path.empty(); ++j) {
      const ListenerSpec& o = spec.listeners[j];
      if (o.unix_path.empty() && Overlap(l.bind, o.bind)) {
        const bool same = LowerHost(l.bind.host) == LowerHost(o.bind.host);
        diags->Add(l.bind_pos, l.path + ".bind: " + (same ? "duplicate bind " : "bind ") +
                                   l.bind.ToString() +
                                   (same ? "" : " overlaps " + o.bind.ToString()) + " (" + o.path +
                                   ", " + Line(o.bind_pos) + ")");
        break;
      }
    }
    if (l.unix_path.empty() && Overlap(l.bind, spec.admin.bind)) {
      diags->Add(l.bind_pos, l.path + ".bind: " + l.bind.ToString() +
                                 " overlaps the admin endpoint " + spec.admin.bind.ToString());
    }
    if (l.tenant_from != TenantFrom::kAuth) {
      if (!l.tls || l.tls->client_auth != ClientAuth::kRequired) {
        diags->Add(l.tenant_from_pos, l.path + ".tenant_from: a tenant from the client "
                                               "certificate needs tls with client_auth: required");
      } else if (!l.tenant.empty()) {
        diags->Add(l.tenant_from_pos, l.path + ".tenant_from: the listener names its tenant "
                                               "already; omit one of tenant and tenant_from");
      }
    }
    if (l.tenant.empty()) continue;
    const bool known = std::any_of(spec.tenants.begin(), spec.tenants.end(),
                                   [&](const TenantSpec& t) { return t.app == l.tenant; });
    if (!known) diags->Add(l.tenant_pos, l.path + ".tenant: unknown tenant '" + l.tenant + "'");
  }
}

// A certificate name selects one tenant.
void CheckCertNames(const Spec& spec, Diagnostics* diags) {
  std::map<std::string, const TenantSpec*> seen;
  for (const TenantSpec& t : spec.tenants) {
    for (const auto& [name, pos] : t.cert_names) {
      auto [it, fresh] = seen.emplace(name, &t);
      if (!fresh && it->second != &t) {
        diags->Add(pos, "tenants." + t.app + ".cert_names: " + Quote(name) +
                            " already selects tenant '" + it->second->app + "'");
      }
    }
  }
}

// User names are unique across tenants (AUTH user pass names one), and so are
// passwords (AUTH pass alone must name one user).
void CheckUsers(const Spec& spec, Diagnostics* diags) {
  struct Seen {
    const UserSpec* user;
    const TenantSpec* tenant;
  };
  std::map<std::string, Seen> by_name;
  std::map<std::array<uint8_t, 32>, Seen> by_digest;
  for (const TenantSpec& t : spec.tenants) {
    for (const UserSpec& u : t.users) {
      if (!u.name.empty()) {
        const auto [it, fresh] = by_name.try_emplace(u.name, Seen{&u, &t});
        if (!fresh) {
          diags->Add(u.name_pos, u.path + ".name: duplicate user name '" + u.name +
                                     "' (also in tenant '" + it->second.tenant->app + "', " +
                                     Line(it->second.user->name_pos) + ")");
        }
      }
      if (!u.has_secret) continue;
      const auto [it, fresh] = by_digest.try_emplace(u.digest, Seen{&u, &t});
      if (!fresh) {
        diags->Add(u.secret_pos, u.path + ": user '" + u.name +
                                     "' has the same password as user '" + it->second.user->name +
                                     "' of tenant '" + it->second.tenant->app +
                                     "'; passwords must be unique so that AUTH with a password "
                                     "alone names one user");
      }
    }
  }
}

Tenant CompileTenant(const TenantSpec& ts, const Snapshot& snap, Diagnostics* diags) {
  const size_t n = CommandTable::Get().size();
  Tenant t;
  t.app = ts.app;
  t.prefix = snap.cluster_name + "@" + ts.app + ":";
  t.limits = ts.limits.ApplyTo(snap.default_limits);
  for (const auto& [name, pos] : ts.cert_names) t.cert_names.push_back(name);
  for (const UserSpec& us : ts.users) t.users.push_back(User{us.name, us.digest});
  t.deny = CommandSet(n);
  ResolveDeny(ts.deny, &t.deny, diags);
  t.deny.Merge(snap.global_deny);
  for (const KeyRuleSpec& rs : ts.key_rules) {
    KeyRule rule;
    rule.match = rs.match;
    rule.deny = CommandSet(n);
    ResolveDeny(rs.deny, &rule.deny, diags);
    rule.read_only = rs.read_only;
    t.key_rules.push_back(std::move(rule));
  }
  return t;
}

}  // namespace

SnapshotPtr Compile(const Spec& spec, const std::string& source, uint64_t version,
                    Diagnostics* diags) {
  CheckListeners(spec, diags);
  CheckUsers(spec, diags);

  auto snap = std::make_shared<Snapshot>();
  snap->version = version;
  snap->source = source;
  snap->cluster_name = spec.cluster_name;
  snap->workers = spec.workers;
  snap->max_clients = spec.max_clients;
  snap->shutdown_grace_ms = spec.shutdown_grace_ms;
  for (const ListenerSpec& l : spec.listeners) {
    snap->listeners.push_back({l.bind, l.tenant, l.unix_path, l.unix_mode, l.tls, l.tenant_from});
  }
  CheckCertNames(spec, diags);
  snap->admin = spec.admin;
  snap->backend = spec.backend;
  snap->accounting = spec.accounting;
  snap->global_deny = CommandSet(CommandTable::Get().size());
  ResolveDeny(spec.global_deny, &snap->global_deny, diags);
  snap->default_limits = spec.limits.ApplyTo(Limits{});

  // Tenants sorted by app name, so indexes do not depend on the YAML's order.
  std::vector<const TenantSpec*> order;
  for (const TenantSpec& t : spec.tenants) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TenantSpec* a, const TenantSpec* b) { return a->app < b->app; });
  for (const TenantSpec* ts : order) {
    Tenant t = CompileTenant(*ts, *snap, diags);
    t.index = static_cast<uint32_t>(snap->tenants.size());
    for (size_t u = 0; u < t.users.size(); ++u) {
      snap->users_by_name.try_emplace(t.users[u].name, t.index, static_cast<uint32_t>(u));
    }
    snap->tenants.push_back(std::move(t));
  }
  if (!diags->empty()) return nullptr;
  snap->hash = IdentityHash(*snap);
  return snap;
}

}  // namespace keyfence::config::internal
