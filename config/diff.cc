#include "config/diff.h"

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "config/limit_text.h"

namespace keyfence::config {

namespace {

std::string Value(auto v) { return internal::LimitText(v); }

void LimitChanges(const std::string& where, const Limits& a, const Limits& b,
                  std::vector<std::string>* out) {
#define KF_CHANGED(f) \
  if (a.f != b.f) out->push_back(where + "." #f " " + Value(a.f) + "->" + Value(b.f));
  KF_CONFIG_LIMIT_FIELDS(KF_CHANGED)
#undef KF_CHANGED
}

std::string List(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

}  // namespace

bool SameTenant(const Tenant& a, const Tenant& b) {
  return a.app == b.app && a.prefix == b.prefix && a.limits == b.limits && a.users == b.users &&
         a.deny == b.deny && a.key_rules == b.key_rules && a.cert_names == b.cert_names;
}

ChangeSummary Describe(const Snapshot& before, const Snapshot& after) {
  ChangeSummary c;
  for (const Tenant& t : after.tenants) {
    const Tenant* old = before.FindTenant(t.app);
    if (old == nullptr) {
      c.added.push_back(t.app);
    } else if (!SameTenant(*old, t)) {
      c.changed.push_back(t.app);
      LimitChanges(t.app, old->limits, t.limits, &c.limits);
    }
  }
  for (const Tenant& t : before.tenants) {
    if (after.FindTenant(t.app) == nullptr) c.removed.push_back(t.app);
  }
  LimitChanges("limits", before.default_limits, after.default_limits, &c.limits);

  // The other sections: move them one at a time from `after` into a copy of
  // `before` (tenants and default limits already taken) and see which move the hash.
  Snapshot x = before;
  x.tenants = after.tenants;
  x.default_limits = after.default_limits;
  std::string prev = IdentityHash(x);
  const std::pair<const char*, std::function<void(Snapshot&)>> sections[] = {
      {"cluster_name", [&](Snapshot& s) { s.cluster_name = after.cluster_name; }},
      {"server", [&](Snapshot& s) {
         s.workers = after.workers;
         s.max_clients = after.max_clients;
         s.shutdown_grace_ms = after.shutdown_grace_ms;
       }},
      {"listeners", [&](Snapshot& s) { s.listeners = after.listeners; }},
      {"admin", [&](Snapshot& s) { s.admin = after.admin; }},
      {"backend", [&](Snapshot& s) { s.backend = after.backend; }},
      {"policy", [&](Snapshot& s) { s.global_deny = after.global_deny; }},
      {"accounting", [&](Snapshot& s) { s.accounting = after.accounting; }},
  };
  for (const auto& [name, take] : sections) {
    take(x);
    std::string h = IdentityHash(x);
    if (h != prev) c.sections.emplace_back(name);
    prev = std::move(h);
  }
  return c;
}

std::string ChangeSummary::ToString() const {
  if (empty()) return "no change";
  std::string s;
  auto part = [&](const std::string& p) { s += (s.empty() ? "" : "; ") + p; };
  std::string tenants;
  auto tpart = [&](const char* what, const std::vector<std::string>& v) {
    if (!v.empty()) tenants += (tenants.empty() ? "tenants " : ", ") + std::string(what) + " " + List(v);
  };
  tpart("added", added);
  tpart("removed", removed);
  tpart("changed", changed);
  if (!tenants.empty()) part(tenants);
  if (!limits.empty()) {
    std::string l = "limits";
    for (size_t i = 0; i < limits.size(); ++i) l += (i ? ", " : " ") + limits[i];
    part(l);
  }
  if (!sections.empty()) part("sections " + List(sections));
  return s;
}

}  // namespace keyfence::config
