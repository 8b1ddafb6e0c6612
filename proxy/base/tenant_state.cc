#include "proxy/base/tenant_state.h"

#include <algorithm>
#include <utility>

namespace keyfence::proxy {

TenantShared& TenantRegistry::Get(const std::string& tenant) {
  std::lock_guard<std::mutex> l(mu_);
  auto& p = tenants_[tenant];
  if (!p) p = std::make_unique<TenantShared>();
  return *p;
}

TenantShared* TenantRegistry::Find(const std::string& tenant) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? nullptr : it->second.get();
}

void TenantRegistry::Apply(const config::Snapshot& snap, uint64_t now_ns) {
  for (const config::Tenant& t : snap.tenants) {
    TenantShared& s = Get(t.app);
    // limits.scope: fleet: the buckets are fed by FleetRate (proxy/fleet_rate.h); until
    // its first grant they refill with the fallback share (limit / expected instances).
    const bool fleet = t.limits.scope == config::LimitScope::kFleet;
    const double n = std::max<uint32_t>(1, t.limits.fleet_instances);
    for (auto [b, rate] : {std::pair{&s.ops, t.limits.ops_per_sec},
                           std::pair{&s.bytes, t.limits.bytes_per_sec}}) {
      if (fleet && !b->fed()) b->SetFed(true, static_cast<double>(rate) / n, now_ns);
      if (!fleet && b->fed()) b->SetFed(false, 0, now_ns);
    }
    s.ops.Configure(static_cast<double>(t.limits.ops_per_sec),
                    static_cast<double>(t.limits.burst), now_ns);
    s.bytes.Configure(static_cast<double>(t.limits.bytes_per_sec), 0, now_ns);
  }
}

}  // namespace keyfence::proxy
