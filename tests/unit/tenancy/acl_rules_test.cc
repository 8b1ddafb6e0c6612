// The backend ACL user of a tenant: only its prefix, only what keyfence forwards.
#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "config/config.h"
#include "tenancy/acl_rules.h"

namespace keyfence::tenancy {
namespace {

constexpr std::string_view kConfig = R"(cluster_name: shop
listeners:
  - bind: 127.0.0.1:6380
backend:
  nodes: [127.0.0.1:6379]
tenants:
  orders:
    deny_commands: [HGETALL]
  scripted:
    limits:
      allow_scripts: true
)";

const config::Snapshot& Snap() {
  static const config::SnapshotPtr snap = [] {
    config::LoadResult r = config::LoadString(kConfig, "acl.yaml", 1);
    REQUIRE(r.ok());
    return r.snapshot;
  }();
  return *snap;
}

bool Has(const std::vector<std::string>& a, std::string_view s) {
  return std::find(a.begin(), a.end(), s) != a.end();
}

TEST_CASE("acl rules: the user is confined to the tenant's prefix and forwarded commands") {
  const config::Tenant& t = *Snap().FindTenant("orders");
  CHECK(AclUserName(t) == "kf:shop@orders");
  const auto a = AclSetUserArgs(t, "pw");
  REQUIRE(a.size() > 10);
  CHECK(a[0] == "reset");
  CHECK(Has(a, ">pw"));
  CHECK(Has(a, "~shop@orders:*"));
  CHECK(Has(a, "&shop@orders:*"));
  CHECK(Has(a, "-@all"));
  for (std::string_view c : {"+get", "+set", "+mget", "+blpop", "+xreadgroup", "+publish",
                             "+ssubscribe", "+asking", "+readonly", "+multi", "+exec",
                             "+watch"}) {
    INFO(c);
    CHECK(Has(a, c));
  }
  for (std::string_view c : {"+hgetall", "+eval", "+evalsha", "+flushall", "+flushdb", "+keys",
                             "+scan", "+randomkey", "+dbsize", "+copy", "+select", "+move",
                             "+swapdb", "+migrate", "+config|set", "+debug", "+shutdown",
                             "+acl|setuser", "+script|flush", "+function|load", "+monitor",
                             "+client|kill", "++@all", "+@all"}) {
    INFO(c);
    CHECK_FALSE(Has(a, c));
  }
  for (const std::string& s : a) {
    if (s.starts_with("+")) CHECK(s.find('@') == std::string::npos);  // no categories
  }
}

TEST_CASE("acl rules: allow_scripts adds the script commands, never SCRIPT FLUSH") {
  const auto a = AclSetUserArgs(*Snap().FindTenant("scripted"), "pw");
  CHECK(Has(a, "+eval"));
  CHECK(Has(a, "+evalsha"));
  CHECK_FALSE(Has(a, "+script|flush"));
  CHECK_FALSE(Has(a, "+script|kill"));
  CHECK(Has(a, "~shop@scripted:*"));
}

}  // namespace
}  // namespace keyfence::tenancy
