// Loading valid configs: the example file, defaults, limits merging, compilation.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "config_test_util.h"
#include "protocol/command_table.h"

namespace keyfence::config {
namespace {

using testing::kBase;
using testing::MustLoad;
using testing::WithBase;

TEST_CASE("load: the example config loads") {
  const std::string path = std::string(KF_SOURCE_DIR) + "/deploy/examples/keyfence.yaml";
  const LoadResult r = LoadFile(path, 3);
  INFO(testing::Dump(r.errors));
  REQUIRE(r.ok());
  const Snapshot& s = *r.snapshot;
  CHECK(s.version == 3);
  CHECK(s.source == path);
  CHECK(s.cluster_name == "shop");
  REQUIRE(s.listeners.size() == 2);
  CHECK(s.listeners[0].bind.ToString() == "127.0.0.1:6380");
  CHECK(s.listeners[0].tenant.empty());
  CHECK(s.listeners[1].bind.ToString() == "127.0.0.1:6381");
  CHECK(s.listeners[1].tenant == "orders");
  CHECK(s.admin.bind.ToString() == "127.0.0.1:9121");
  CHECK(s.backend.mode == BackendMode::kStandalone);
  REQUIRE(s.backend.nodes.size() == 1);
  CHECK(s.backend.nodes[0].ToString() == "127.0.0.1:6379");

  const Tenant* orders = s.FindTenant("orders");
  REQUIRE(orders != nullptr);
  CHECK(orders->prefix == "shop@orders:");
  CHECK(orders->limits.ops_per_sec == 5000);
  CHECK(orders->limits.burst == 10000);
  CHECK(orders->limits.max_connections == 200);
  REQUIRE(orders->key_rules.size() == 2);
  CHECK(orders->key_rules[0].match == "report:*");
  CHECK_FALSE(orders->key_rules[0].read_only);
  CHECK(orders->key_rules[1].match == "config:*");
  CHECK(orders->key_rules[1].read_only);
  const Tenant* payments = s.FindTenant("payments");
  REQUIRE(payments != nullptr);
  CHECK(payments->limits.on_limit == OnLimit::kDelay);

  CHECK(s.Authenticate("orders", "orders-secret") == orders);
  CHECK(s.Authenticate("billing", "billing-secret") == orders);
  CHECK(s.Authenticate("payments", "payments-secret") == payments);
  CHECK(s.AuthenticatePasswordOnly("payments-secret") == payments);
}

TEST_CASE("load: a missing file is one diagnostic") {
  const LoadResult r = LoadFile("/nonexistent/keyfence.yaml", 1);
  CHECK_FALSE(r.ok());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].ToString() ==
        "/nonexistent/keyfence.yaml:1:1: cannot read file: No such file or directory");
}

TEST_CASE("load: defaults are DESIGN.md's") {
  const SnapshotPtr s = MustLoad(kBase, 9);
  CHECK(s->version == 9);
  CHECK(s->source == "t.yaml");
  CHECK(s->workers == 0);
  CHECK(s->max_clients == 10000);
  CHECK(s->shutdown_grace_ms == 5000);
  CHECK(s->admin.bind.host == "127.0.0.1");
  CHECK(s->admin.bind.port == 9121);
  CHECK(s->admin.token.empty());
  CHECK(s->backend.mode == BackendMode::kStandalone);
  CHECK(s->backend.username.empty());
  CHECK(s->backend.password.empty());
  CHECK(s->backend.connections_per_node == 1);
  CHECK(s->backend.connect_timeout_ms == 1000);
  CHECK(s->backend.request_timeout_ms == 5000);
  CHECK(s->backend.retry_budget_ms == 5000);
  CHECK(s->backend.subscriber_recovery_ms == 30000);
  CHECK(s->backend.read_from == ReadFrom::kMaster);
  CHECK(s->global_deny.empty());
  CHECK(s->tenants.empty());
  const Limits& l = s->default_limits;
  CHECK(l.ops_per_sec == 0);
  CHECK(l.burst == 0);
  CHECK(l.bytes_per_sec == 0);
  CHECK(l.on_limit == OnLimit::kReject);
  CHECK(l.max_delay_ms == 100);
  CHECK(l.max_connections == 0);
  CHECK(l.max_request_bytes == 536870912);
  CHECK(l.client_output_buffer_bytes == 67108864);
  CHECK(l.big_value_bytes == 1048576);
  CHECK_FALSE(l.allow_scripts);
}

TEST_CASE("load: every field set") {
  const SnapshotPtr s = MustLoad(R"(cluster_name: c1.prod-EU_2
workers: 4
max_clients: 500
shutdown_grace_ms: 0
listeners:
  - bind: "[::1]:7000"
  - bind: 0.0.0.0:7001
    tenant: a
admin:
  bind: localhost:9000
  token: tok
backend:
  mode: cluster
  nodes: [10.0.0.1:7000, 10.0.0.2:7000]
  username: kf
  password: pw
  connections_per_node: 4
  connect_timeout_ms: 50
  request_timeout_ms: 60
  retry_budget_ms: 1500
  subscriber_recovery_ms: 2500
  read_from: prefer_replica
policy:
  deny_commands: []
limits:
  ops_per_sec: 1
  burst: 2
  bytes_per_sec: 3
  on_limit: delay
  max_delay_ms: 4
  max_connections: 5
  max_request_bytes: 6
  client_output_buffer_bytes: 7
  big_value_bytes: 8
  allow_scripts: true
tenants:
  a:
)");
  CHECK(s->cluster_name == "c1.prod-EU_2");
  CHECK(s->workers == 4);
  CHECK(s->max_clients == 500);
  CHECK(s->shutdown_grace_ms == 0);
  CHECK(s->listeners[0].bind.host == "::1");
  CHECK(s->listeners[0].bind.port == 7000);
  CHECK(s->listeners[0].bind.ToString() == "[::1]:7000");
  CHECK(s->admin.bind.ToString() == "localhost:9000");
  CHECK(s->admin.token == "tok");
  CHECK(s->backend.mode == BackendMode::kCluster);
  CHECK(s->backend.nodes.size() == 2);
  CHECK(s->backend.username == "kf");
  CHECK(s->backend.password == "pw");
  CHECK(s->backend.connections_per_node == 4);
  CHECK(s->backend.connect_timeout_ms == 50);
  CHECK(s->backend.request_timeout_ms == 60);
  CHECK(s->backend.retry_budget_ms == 1500);
  CHECK(s->backend.subscriber_recovery_ms == 2500);
  CHECK(s->backend.read_from == ReadFrom::kPreferReplica);
  const Limits& l = s->default_limits;
  CHECK(l.ops_per_sec == 1);
  CHECK(l.burst == 2);
  CHECK(l.bytes_per_sec == 3);
  CHECK(l.on_limit == OnLimit::kDelay);
  CHECK(l.max_delay_ms == 4);
  CHECK(l.max_connections == 5);
  CHECK(l.max_request_bytes == 6);
  CHECK(l.client_output_buffer_bytes == 7);
  CHECK(l.big_value_bytes == 8);
  CHECK(l.allow_scripts);
  // A tenant written as a bare "a:" takes every default.
  REQUIRE(s->tenants.size() == 1);
  CHECK(s->tenants[0].prefix == "c1.prod-EU_2@a:");
  CHECK(s->tenants[0].users.empty());
  CHECK(s->tenants[0].limits.ops_per_sec == 1);
  CHECK(s->tenants[0].limits.allow_scripts);
}

TEST_CASE("load: tenant limits override the defaults field by field") {
  const SnapshotPtr s = MustLoad(WithBase(R"(limits:
  ops_per_sec: 100
  burst: 300
  on_limit: delay
  max_connections: 7
tenants:
  flow:
    limits: { ops_per_sec: 5000, max_connections: 0 }
  block:
    limits:
      burst: 1
      allow_scripts: true
  plain: {}
)"));
  const Tenant* flow = s->FindTenant("flow");
  REQUIRE(flow != nullptr);
  CHECK(flow->limits.ops_per_sec == 5000);
  CHECK(flow->limits.burst == 300);  // inherited
  CHECK(flow->limits.on_limit == OnLimit::kDelay);
  CHECK(flow->limits.max_connections == 0);  // overridden back to unlimited
  CHECK(flow->limits.max_delay_ms == 100);   // built-in default
  const Tenant* block = s->FindTenant("block");
  REQUIRE(block != nullptr);
  CHECK(block->limits.ops_per_sec == 100);
  CHECK(block->limits.burst == 1);
  CHECK(block->limits.allow_scripts);
  CHECK(block->limits.max_connections == 7);
  const Tenant* plain = s->FindTenant("plain");
  REQUIRE(plain != nullptr);
  CHECK(plain->limits.ops_per_sec == 100);
  CHECK(plain->limits.burst == 300);
  CHECK(s->default_limits.ops_per_sec == 100);
  CHECK(s->FindTenant("nope") == nullptr);
}

TEST_CASE("load: tenants are sorted by app name and indexed by position") {
  const SnapshotPtr s = MustLoad(WithBase(R"(tenants:
  zeta:
    users: [{ name: z, password: zz }]
  alpha:
    users: [{ name: a, password: aa }]
  mid: {}
)"));
  REQUIRE(s->tenants.size() == 3);
  CHECK(s->tenants[0].app == "alpha");
  CHECK(s->tenants[1].app == "mid");
  CHECK(s->tenants[2].app == "zeta");
  for (uint32_t i = 0; i < 3; ++i) CHECK(s->tenants[i].index == i);
  CHECK(s->tenants[2].prefix == "shop@zeta:");
  REQUIRE(s->users_by_name.size() == 2);
  CHECK(s->users_by_name.at("z") == std::make_pair(2u, 0u));
  CHECK(s->users_by_name.at("a") == std::make_pair(0u, 0u));
}

TEST_CASE("load: a gateway-less config and sidecar listeners") {
  const SnapshotPtr s = MustLoad(R"(cluster_name: shop
listeners:
  - bind: 127.0.0.1:7001
    tenant: a
  - bind: 127.0.0.1:7002
    tenant: b
backend:
  nodes: [127.0.0.1:6379]
tenants:
  a: {}
  b: {}
)");
  REQUIRE(s->listeners.size() == 2);
  CHECK(s->listeners[0].tenant == "a");
  CHECK(s->listeners[1].tenant == "b");
}

TEST_CASE("load: quoted numbers, booleans and YAML anchors are accepted") {
  const SnapshotPtr s = MustLoad(WithBase(R"(max_clients: "42"
limits: &lim
  ops_per_sec: 10
  allow_scripts: True
tenants:
  a:
    limits: *lim
)"));
  CHECK(s->max_clients == 42);
  CHECK(s->FindTenant("a")->limits.ops_per_sec == 10);
  CHECK(s->FindTenant("a")->limits.allow_scripts);
}

TEST_CASE("load: sections with every field commented out are empty, not errors") {
  const SnapshotPtr s = MustLoad(WithBase(R"(admin:
  # token: x
policy:
limits:
tenants:
)"));
  CHECK(s->admin.bind.port == 9121);
  CHECK(s->global_deny.empty());
  CHECK(s->default_limits.max_delay_ms == 100);
  CHECK(s->tenants.empty());
}

TEST_CASE("load: IsValidName") {
  CHECK(IsValidName("a"));
  CHECK(IsValidName("A-b_c.9"));
  CHECK(IsValidName(std::string(64, 'x')));
  CHECK_FALSE(IsValidName(""));
  CHECK_FALSE(IsValidName(std::string(65, 'x')));
  for (const char* bad : {"a:b", "a@b", "a{b", "a}b", "a*", "a?", "a[b]", "a b", "é"}) {
    INFO(bad);
    CHECK_FALSE(IsValidName(bad));
  }
}

TEST_CASE("load: Endpoint::ToString brackets IPv6 hosts") {
  CHECK((Endpoint{"10.1.2.3", 80}).ToString() == "10.1.2.3:80");
  CHECK((Endpoint{"::1", 6379}).ToString() == "[::1]:6379");
}

}  // namespace
}  // namespace keyfence::config
