#include "proxy/base/tenant_state.h"

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
    s.ops.Configure(static_cast<double>(t.limits.ops_per_sec),
                    static_cast<double>(t.limits.burst), now_ns);
    s.bytes.Configure(static_cast<double>(t.limits.bytes_per_sec), 0, now_ns);
  }
}

}  // namespace keyfence::proxy
