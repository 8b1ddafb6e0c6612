// Live limit overrides, the change summary of a reload and the config hash.
#include <catch2/catch.hpp>

#include "config/diff.h"
#include "config/overrides.h"
#include "config_test_util.h"

using namespace keyfence::config;
using keyfence::config::testing::MustLoad;

namespace {

constexpr const char* kBase = R"(
cluster_name: shop
listeners: [{bind: "127.0.0.1:6380"}]
admin: {bind: "127.0.0.1:9121", token: tok}
backend: {nodes: ["127.0.0.1:6379"], password: pw}
limits: {ops_per_sec: 5000}
tenants:
  orders: {users: [{name: o, password: p1}], limits: {burst: 9000}}
  payments: {}
)";

LimitsOverride Parse(const std::string& text) {
  std::vector<Diagnostic> errors;
  auto o = LimitsOverride::Parse(text, "request", &errors);
  INFO(testing::Dump(errors));
  REQUIRE(o);
  return *o;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  s.replace(s.find(from), from.size(), to);
  return s;
}

}  // namespace

TEST_CASE("overrides: JSON limit fields, checked as the file's are") {
  LimitsOverride o = Parse(R"({"ops_per_sec": 100, "on_limit": "delay"})");
  CHECK(o.ToJson() == R"({"ops_per_sec":100,"on_limit":"delay"})");
  CHECK(o.Fields() == std::vector<std::string>{"ops_per_sec", "on_limit"});
  Limits l = o.ApplyTo(Limits{});
  CHECK(l.ops_per_sec == 100);
  CHECK(l.on_limit == OnLimit::kDelay);
  o.Merge(Parse(R"({"ops_per_sec": 7, "burst": 8})"));
  CHECK(o.ToJson() == R"({"ops_per_sec":7,"burst":8,"on_limit":"delay"})");

  auto bad = [](const std::string& text) {
    std::vector<Diagnostic> errors;
    REQUIRE_FALSE(LimitsOverride::Parse(text, "request", &errors));
    REQUIRE(errors.size() == 1);
    return errors[0].ToString();
  };
  CHECK(bad(R"({"ops_per_sec": -1})").starts_with("request:1:17: limits.ops_per_sec:"));
  CHECK(bad(R"({"nope": 1})").find("unknown field 'nope'") != std::string::npos);
  CHECK(bad("{}").find("expected a mapping of limit fields") != std::string::npos);
  CHECK(bad("[1, 2]").find("expected a mapping of limit fields") != std::string::npos);
  CHECK(bad("{not json").starts_with("request:"));
  CHECK(bad(R"({"on_limit": "never"})").find("on_limit") != std::string::npos);
}

TEST_CASE("overrides: applied over the tenant's file limits, drift against the file") {
  SnapshotPtr file = MustLoad(kBase);
  Overrides o{{"orders", Parse(R"({"ops_per_sec": 100})")},
              {"gone", Parse(R"({"ops_per_sec": 1})")}};  // not in the file: ignored
  SnapshotPtr live = WithOverrides(*file, o, 9);
  CHECK(live->version == 9);
  CHECK(live->FindTenant("orders")->limits.ops_per_sec == 100);
  CHECK(live->FindTenant("orders")->limits.burst == 9000);  // the file's, kept
  CHECK(live->FindTenant("payments")->limits.ops_per_sec == 5000);
  CHECK(live->hash != file->hash);
  CHECK(DriftJson(*file, *live, o) ==
        R"({"orders":{"ops_per_sec":{"file":5000,"live":100}}})");
}

TEST_CASE("config hash: the same config gives the same hash, whatever its version") {
  SnapshotPtr a = MustLoad(kBase, 1), b = MustLoad(kBase, 42);
  CHECK(a->hash.size() == 64);
  CHECK(a->hash == b->hash);
  CHECK(a->hash == IdentityHash(*a));
  // secrets are not in it (the hash is public: no offline guessing of a weak token),
  // whether one is set is
  CHECK(MustLoad(Replace(kBase, "password: pw", "password: pw2"))->hash == a->hash);
  CHECK(MustLoad(Replace(kBase, "password: p1", "password: p2"))->hash == a->hash);
  CHECK(MustLoad(Replace(kBase, "token: tok", "token: tok2"))->hash == a->hash);
  CHECK(MustLoad(Replace(kBase, ", token: tok", ""))->hash != a->hash);
  CHECK(MustLoad(Replace(kBase, "payments: {}", "payments: {cert_names: [p.svc]}"))->hash != a->hash);
  CHECK(ToJson(*a).find("pw") == std::string::npos);
  CHECK(ToJson(*a).find("\"hash\":\"" + a->hash + "\"") != std::string::npos);
  // the tenants' order in the file does not matter
  CHECK(MustLoad(Replace(kBase, "  orders: {users: [{name: o, password: p1}], limits: {burst: 9000}}\n  payments: {}",
                         "  payments: {}\n  orders: {users: [{name: o, password: p1}], limits: {burst: 9000}}"))
            ->hash == a->hash);
}

TEST_CASE("change summary: tenants, limits and sections") {
  SnapshotPtr a = MustLoad(kBase);
  CHECK(Describe(*a, *a).ToString() == "no change");
  std::string y = Replace(kBase, "  payments: {}", "  inventory: {}");
  y = Replace(y, "limits: {burst: 9000}", "limits: {burst: 10}");
  y = Replace(y, "\"127.0.0.1:6379\"", "\"127.0.0.1:6390\"");
  const ChangeSummary c = Describe(*a, *MustLoad(y));
  CHECK(c.ToString() ==
        "tenants added [inventory], removed [payments], changed [orders]; "
        "limits orders.burst 9000->10; sections [backend]");
  SnapshotPtr d = MustLoad(Replace(kBase, "limits: {ops_per_sec: 5000}", "limits: {ops_per_sec: 50}"));
  CHECK(Describe(*a, *d).ToString() ==
        "tenants changed [orders, payments]; limits orders.ops_per_sec 5000->50, "
        "payments.ops_per_sec 5000->50, limits.ops_per_sec 5000->50");
  CHECK(SameTenant(*a->FindTenant("payments"), *MustLoad(kBase)->FindTenant("payments")));
}

TEST_CASE("limits.scope: instance by default, fleet per tenant or as the default") {
  SnapshotPtr a = MustLoad(Replace(kBase, "limits: {burst: 9000}", "limits: {scope: fleet, fleet_instances: 4}"));
  CHECK(a->FindTenant("orders")->limits.scope == LimitScope::kFleet);
  CHECK(a->FindTenant("orders")->limits.fleet_instances == 4);
  CHECK(a->FindTenant("payments")->limits.scope == LimitScope::kInstance);
  SnapshotPtr b = MustLoad(Replace(kBase, "limits: {ops_per_sec: 5000}", "limits: {ops_per_sec: 5000, scope: fleet}"));
  CHECK(b->FindTenant("payments")->limits.scope == LimitScope::kFleet);
  CHECK(Describe(*MustLoad(kBase), *b).ToString().find("payments.scope instance->fleet") !=
        std::string::npos);
  const auto errors = testing::Errors(Replace(kBase, "limits: {burst: 9000}", "limits: {scope: global}"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("scope") != std::string::npos);
  CHECK(Parse(R"({"scope": "fleet"})").ToJson() == R"({"scope":"fleet"})");
}
