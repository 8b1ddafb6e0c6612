#include "proxy/session/cert_tenant.h"

namespace keyfence::proxy {

CertTenant TenantFromCert(const config::Snapshot& snap, config::TenantFrom from,
                          const PeerCert* cert) {
  CertTenant r;
  auto consider = [&](const std::string& n) {
    r.names += (r.names.empty() ? "" : ", ") + n;
    const config::Tenant* m = snap.FindTenantByCertName(n);
    if (m == nullptr) return;
    if (r.tenant != nullptr && r.tenant != m) r.ambiguous = true;
    if (r.tenant == nullptr) {
      r.tenant = m;
      r.matched = n;
    }
  };
  if (cert != nullptr) {
    switch (from) {
      case config::TenantFrom::kCertCn:
        consider(cert->cn);
        break;
      case config::TenantFrom::kCertSanDns:
        for (const std::string& n : cert->dns) consider(n);
        break;
      case config::TenantFrom::kCertSanUri:
        for (const std::string& n : cert->uri) consider(n);
        break;
      case config::TenantFrom::kAuth:
        break;
    }
  }
  if (r.ambiguous) r.tenant = nullptr;
  return r;
}

}  // namespace keyfence::proxy
