// listeners[].tenant_from: the tenant a verified client certificate names,
// through the tenants' cert_names (CN, or every SAN DNS / URI entry). Pure.
#pragma once

#include <string>

#include "config/config.h"
#include "proxy/net/client_stream.h"

namespace keyfence::proxy {

struct CertTenant {
  const config::Tenant* tenant = nullptr;  // null: none, or more than one (ambiguous)
  bool ambiguous = false;                  // names of two tenants
  std::string matched;                     // the name that chose it
  std::string names;                       // every name looked at, for the log
};

CertTenant TenantFromCert(const config::Snapshot& snap, config::TenantFrom from,
                          const PeerCert* cert);

}  // namespace keyfence::proxy
