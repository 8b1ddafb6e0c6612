// The backend ACL user of a tenant (backend.acl: per_tenant). Its keys and
// channels are the tenant's prefix only, its commands only those keyfence
// may forward for the tenant, so that neither a script's redis.call() nor a
// bug in the key finder can reach outside the namespace: Redis itself
// refuses. Pure; shared by all threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace keyfence::tenancy {

// "kf:<cluster>@<app>", the user keyfence creates for the tenant.
std::string AclUserName(const config::Tenant& t);

// The arguments of ACL SETUSER after the user name: reset, on, the password,
// ~P* and &P* (globbing escaped), then -@all and +<command> for each command
// (or parent|sub) keyfence forwards for this tenant, plus the connection
// commands keyfence itself sends (ASKING, READONLY, MULTI/EXEC, ...). COPY
// is left out: its DB argument cannot be confined by an ACL.
std::vector<std::string> AclSetUserArgs(const config::Tenant& t, std::string_view password);

}  // namespace keyfence::tenancy
