// Invalid configs: every kind of error, with its exact line, column and message.
// kBase (config_test_util.h) is 5 lines long, so appended sections start on line 6.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "config_test_util.h"

namespace keyfence::config {
namespace {

using testing::Errors;
using testing::ExpectError;
using testing::WithBase;

TEST_CASE("errors: YAML syntax errors carry their position") {
  ExpectError("cluster_name: shop\nlisteners: [a, b\nbackend: {}\n", 3, 8,
              "YAML syntax error: end of sequence flow not found");
  ExpectError("cluster_name: shop\n  workers: 2\n", 2, 10, "YAML syntax error: illegal map value");
  ExpectError("cluster_name: shop\n\tworkers: 2\n", 2, 1,
              "YAML syntax error: illegal tab when looking for indentation");
  ExpectError("admin: {bind: h:1}}\n", 1, 19, "YAML syntax error: illegal flow end");
}

TEST_CASE("errors: the document itself") {
  ExpectError("", 1, 1, "the config is empty");
  ExpectError("# only a comment\n", 1, 1, "the config is empty");
  ExpectError("- a\n- b\n", 1, 1, "the config must be a mapping of fields");
}

TEST_CASE("errors: missing required fields") {
  const auto errors = Errors("workers: 1\n");
  INFO(testing::Dump(errors));
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].ToString() == "t.yaml:1:1: missing required field 'cluster_name'");
  CHECK(errors[1].ToString() == "t.yaml:1:1: missing required field 'listeners'");
  CHECK(errors[2].ToString() == "t.yaml:1:1: missing required field 'backend'");
  ExpectError("cluster_name: shop\nlisteners:\n  - bind: 127.0.0.1:1\nbackend:\n  mode: cluster\n",
              5, 3, "backend: missing required field 'nodes'");
  ExpectError(
      "cluster_name: shop\nlisteners:\n  - tenant: a\nbackend:\n  nodes: [h:1]\n"
      "tenants: { a: {} }\n",
      3, 5,
              "listeners[0]: missing required field 'bind' (or 'unix' for a Unix socket)");
}

TEST_CASE("errors: unknown fields at every level") {
  ExpectError(
      "cluster_name: shop\nlisteners:\n  - listner: 127.0.0.1:1\n    bind: h:1\n"
      "backend:\n  nodes: [h:2]\n",
      3, 5, "unknown field 'listner' in listeners[0]");
  ExpectError(WithBase("bakend: {}\n"), 6, 1, "unknown field 'bakend'");
  ExpectError(WithBase("admin: { bnd: h:1 }\n"), 6, 10, "unknown field 'bnd' in admin");
  ExpectError(WithBase("policy:\n  deny: []\n"), 7, 3, "unknown field 'deny' in policy");
  ExpectError(WithBase("limits:\n  ops: 1\n"), 7, 3, "unknown field 'ops' in limits");
  ExpectError(WithBase("tenants:\n  a:\n    user: []\n"), 8, 5,
              "unknown field 'user' in tenants.a");
  ExpectError(WithBase("tenants:\n  a:\n    limits: { opspersec: 1 }\n"), 8, 15,
              "unknown field 'opspersec' in tenants.a.limits");
  ExpectError(WithBase("tenants:\n  a:\n    users:\n      - name: u\n        password: p\n"
                       "        pasword: q\n"),
              11, 9, "unknown field 'pasword' in tenants.a.users[0]");
  ExpectError(WithBase("tenants:\n  a:\n    key_rules:\n      - match: x\n"
                       "        deny_commands: [GET]\n        readonly: true\n"),
              11, 9, "unknown field 'readonly' in tenants.a.key_rules[0]");
  ExpectError(WithBase("  username: u\n  user: u\n"), 7, 3, "unknown field 'user' in backend");
}

TEST_CASE("errors: duplicate fields and tenants") {
  ExpectError(WithBase("workers: 1\nworkers: 2\n"), 7, 1, "duplicate field 'workers'");
  ExpectError(WithBase("tenants:\n  a: {}\n  a: {}\n"), 8, 3, "tenants: duplicate tenant 'a'");
}

TEST_CASE("errors: wrong types") {
  ExpectError(WithBase("workers: two\n"), 6, 10, "workers: expected an integer, got 'two'");
  ExpectError(WithBase("workers: [1]\n"), 6, 10, "workers: expected an integer");
  ExpectError(WithBase("workers: 1.5\n"), 6, 10, "workers: expected an integer, got '1.5'");
  ExpectError(WithBase("limits:\n  allow_scripts: yes\n"), 7, 18,
              "limits.allow_scripts: expected a boolean (true or false)");
  ExpectError(WithBase("tenants:\n  a:\n    key_rules:\n      - { match: x, read_only: 1 }\n"), 9,
              32, "tenants.a.key_rules[0].read_only: expected a boolean (true or false)");
  ExpectError("cluster_name: shop\nlisteners: 127.0.0.1:1\nbackend:\n  nodes: [h:1]\n", 2, 12,
              "listeners: expected a list");
  ExpectError("cluster_name: shop\nlisteners: [h:1]\nbackend:\n  nodes: [h:2]\n", 2, 13,
              "listeners[0]: expected a mapping");
  ExpectError(WithBase("admin: h:1\n"), 6, 8, "admin: expected a mapping");
  ExpectError(WithBase("policy:\n  deny_commands: KEYS\n"), 7, 18,
              "policy.deny_commands: expected a list");
  ExpectError(WithBase("policy:\n  deny_commands: [[KEYS]]\n"), 7, 19,
              "policy.deny_commands[0]: expected a string");
  ExpectError(WithBase("admin:\n  token: { a: 1 }\n"), 7, 10, "admin.token: expected a string");
  ExpectError(WithBase("tenants: [a]\n"), 6, 10,
              "tenants: expected a mapping of app name to tenant");
  ExpectError(WithBase("tenants:\n  a: [1]\n"), 7, 6, "tenants.a: expected a mapping");
  // A field with no value is null: the error points at the field name.
  ExpectError(WithBase("admin:\n  token:\n"), 7, 3, "admin.token: expected a string");
}

TEST_CASE("errors: numbers out of range") {
  ExpectError(WithBase("workers: -1\n"), 6, 10, "workers: must be between 0 and 1024, got '-1'");
  ExpectError(WithBase("workers: 1025\n"), 6, 10,
              "workers: must be between 0 and 1024, got '1025'");
  ExpectError(WithBase("max_clients: 0\n"), 6, 14,
              "max_clients: must be between 1 and 10000000, got '0'");
  ExpectError(WithBase("limits:\n  ops_per_sec: 99999999999999999999999\n"), 7, 16,
              "limits.ops_per_sec: must be between 0 and 1000000000000, got "
              "'99999999999999999999999'");
  ExpectError(WithBase("limits:\n  max_request_bytes: 0\n"), 7, 22,
              "limits.max_request_bytes: must be between 1 and 1099511627776, got '0'");
  ExpectError(WithBase("  connections_per_node: 0\n"), 6, 25,
              "backend.connections_per_node: must be between 1 and 1024, got '0'");
  ExpectError(WithBase("tenants:\n  a:\n    limits: { max_delay_ms: 60001 }\n"), 8, 29,
              "tenants.a.limits.max_delay_ms: must be between 0 and 60000, got '60001'");
}

TEST_CASE("errors: names") {
  ExpectError("cluster_name: \"shop:1\"\nlisteners:\n  - bind: h:1\nbackend:\n  nodes: [h:2]\n", 1,
              15, "cluster_name: must be 1-64 characters of [A-Za-z0-9_.-], got 'shop:1'");
  ExpectError("cluster_name: ''\nlisteners:\n  - bind: h:1\nbackend:\n  nodes: [h:2]\n", 1, 15,
              "cluster_name: must be 1-64 characters of [A-Za-z0-9_.-], got ''");
  ExpectError(WithBase("tenants:\n  a@b: {}\n"), 7, 3,
              "tenants: app name must be 1-64 characters of [A-Za-z0-9_.-], got 'a@b'");
  ExpectError(WithBase("tenants:\n  " + std::string(65, 'x') + ": {}\n"), 7, 3,
              "tenants: app name must be 1-64 characters of [A-Za-z0-9_.-], got '" +
                  std::string(64, 'x') + "...'");
}

TEST_CASE("errors: host:port") {
  ExpectError(WithBase("admin: { bind: nohost }\n"), 6, 16,
              "admin.bind: expected host:port, got 'nohost'");
  ExpectError(WithBase("admin: { bind: \":80\" }\n"), 6, 16,
              "admin.bind: expected host:port, got ':80'");
  ExpectError(WithBase("admin: { bind: h:0 }\n"), 6, 16,
              "admin.bind: port must be between 1 and 65535, got '0'");
  ExpectError(WithBase("admin: { bind: h:65536 }\n"), 6, 16,
              "admin.bind: port must be between 1 and 65535, got '65536'");
  ExpectError(WithBase("admin: { bind: h:http }\n"), 6, 16,
              "admin.bind: port must be between 1 and 65535, got 'http'");
  ExpectError(WithBase("admin: { bind: \"::1:80\" }\n"), 6, 16,
              "admin.bind: expected host:port, got '::1:80' (write an IPv6 address in brackets: "
              "[::1]:6379)");
  ExpectError(WithBase("admin: { bind: \"[zz]:80\" }\n"), 6, 16,
              "admin.bind: expected host:port, got '[zz]:80'");
  ExpectError(
      "cluster_name: s\nlisteners:\n  - bind: h:1\nbackend:\n  nodes: [h:2, \"h 3:4\"]\n"
      "  mode: cluster\n",
      5, 16, "backend.nodes[1]: expected host:port, got 'h 3:4'");
}

TEST_CASE("errors: enums") {
  ExpectError(WithBase("  mode: sharded\n"), 6, 9,
              "backend.mode: expected standalone, cluster or sentinel, got 'sharded'");
  ExpectError(WithBase("  read_from: slave\n"), 6, 14,
              "backend.read_from: expected master, replica or prefer_replica, got 'slave'");
  ExpectError(WithBase("limits: { on_limit: queue }\n"), 6, 21,
              "limits.on_limit: expected reject or delay, got 'queue'");
  ExpectError(WithBase("limits: { on_limit: [] }\n"), 6, 21,
              "limits.on_limit: expected reject or delay");
}

TEST_CASE("errors: backend nodes") {
  ExpectError("cluster_name: s\nlisteners:\n  - bind: h:1\nbackend:\n  nodes: []\n", 5, 10,
              "backend.nodes: at least one node is required");
  ExpectError("cluster_name: s\nlisteners:\n  - bind: h:1\nbackend:\n  nodes: [h:2, h:3]\n", 5, 10,
              "backend.nodes: standalone mode takes exactly one node, got 2");
  ExpectError("cluster_name: s\nlisteners: []\nbackend:\n  nodes: [h:2]\n", 2, 12,
              "listeners: at least one listener is required");
}

TEST_CASE("errors: listeners") {
  ExpectError(R"(cluster_name: s
listeners:
  - bind: 127.0.0.1:7000
  - bind: 127.0.0.1:7000
backend:
  nodes: [h:2]
)",
              4, 11, "listeners[1].bind: duplicate bind 127.0.0.1:7000 (listeners[0], line 3)");
  ExpectError(
      R"(cluster_name: s
listeners:
  - bind: 127.0.0.1:7000
  - bind: 0.0.0.0:7000
backend:
  nodes: [h:2]
)",
      4, 11, "listeners[1].bind: bind 0.0.0.0:7000 overlaps 127.0.0.1:7000 (listeners[0], line 3)");
  ExpectError(R"(cluster_name: s
listeners:
  - bind: 127.0.0.1:9121
backend:
  nodes: [h:2]
)",
              3, 11,
              "listeners[0].bind: 127.0.0.1:9121 overlaps the admin endpoint 127.0.0.1:9121");
  ExpectError(R"(cluster_name: s
listeners:
  - bind: h:1
    tenant: ordrs
backend:
  nodes: [h:2]
tenants:
  orders: {}
)",
              4, 13, "listeners[0].tenant: unknown tenant 'ordrs'");
  ExpectError(R"(cluster_name: s
listeners:
  - bind: h:1
    tenant: ""
backend:
  nodes: [h:2]
)",
              4, 13, "listeners[0].tenant: must name a tenant (omit it for a gateway)");
}

TEST_CASE("errors: users") {
  ExpectError(WithBase("tenants:\n  a:\n    users:\n      - name: u\n"), 9, 9,
              "tenants.a.users[0]: missing 'password' or 'password_sha256'");
  ExpectError(WithBase(R"(tenants:
  a:
    users:
      - name: u
        password: p
        password_sha256: 12d043d4bd516bc34ea9e95648e9a12329d2d851840fb60b83822997f1382e17
)"),
              9, 9, "tenants.a.users[0]: give either 'password' or 'password_sha256', not both");
  ExpectError(WithBase("tenants:\n  a:\n    users:\n      - { name: u, password_sha256: 5e88 }\n"),
              9, 37,
              "tenants.a.users[0].password_sha256: expected 64 hex characters (a SHA-256 digest)");
  ExpectError(WithBase("tenants:\n  a:\n    users:\n      - { name: u, password: \"\" }\n"), 9, 30,
              "tenants.a.users[0].password: must not be empty");
  ExpectError(WithBase("tenants:\n  a:\n    users:\n      - { password: x }\n"), 9, 9,
              "tenants.a.users[0]: missing required field 'name'");
  ExpectError(WithBase("tenants:\n  a:\n    users:\n      - { name: a b, password: x }\n"), 9, 17,
              "tenants.a.users[0].name: must be 1-128 characters without spaces, got 'a b'");
  ExpectError(WithBase(R"(tenants:
  a:
    users:
      - { name: u, password: x }
  b:
    users:
      - { name: u, password: y }
)"),
              12, 17,
              "tenants.b.users[0].name: duplicate user name 'u' (also in tenant 'a', line 9)");
}

TEST_CASE("errors: two users with the same password, written either way") {
  ExpectError(WithBase(R"(tenants:
  a:
    users:
      - { name: one, password: billing-secret }
  b:
    users:
      - name: two
        password_sha256: 12D043D4BD516BC34EA9E95648E9A12329D2D851840FB60B83822997F1382E17
)"),
              13, 26,
              "tenants.b.users[0]: user 'two' has the same password as user 'one' of tenant 'a'; "
              "passwords must be unique so that AUTH with a password alone names one user");
}

TEST_CASE("errors: deny_commands names") {
  ExpectError(WithBase("policy:\n  deny_commands: [GET, NOPE]\n"), 7, 24,
              "policy.deny_commands[1]: unknown command 'NOPE'");
  ExpectError(WithBase("policy:\n  deny_commands: [\"client|nope\"]\n"), 7, 19,
              "policy.deny_commands[0]: unknown command 'client|nope'");
  ExpectError(WithBase("policy:\n  deny_commands: [\"CLIENT KILL\"]\n"), 7, 19,
              "policy.deny_commands[0]: unknown command 'CLIENT KILL' (write a subcommand as "
              "PARENT|SUB, e.g. CLIENT|KILL)");
  ExpectError(WithBase("policy:\n  deny_commands: [\"@nope\"]\n"), 7, 19,
              "policy.deny_commands[0]: unknown ACL category '@nope'");
  ExpectError(WithBase("tenants:\n  a:\n    deny_commands:\n      - KEYS\n      - KEYZ\n"), 10, 9,
              "tenants.a.deny_commands[1]: unknown command 'KEYZ'");
  ExpectError(WithBase("tenants:\n  a:\n    key_rules:\n      - match: x\n        deny_commands: "
                       "[HGETALLL]\n"),
              10, 25, "tenants.a.key_rules[0].deny_commands[0]: unknown command 'HGETALLL'");
}

TEST_CASE("errors: key rules") {
  ExpectError(WithBase("tenants:\n  a:\n    key_rules:\n      - deny_commands: [GET]\n"), 9, 9,
              "tenants.a.key_rules[0]: missing required field 'match'");
  ExpectError(WithBase("tenants:\n  a:\n    key_rules:\n      - match: \"x:*\"\n"), 9, 9,
              "tenants.a.key_rules[0]: needs 'deny_commands' or 'read_only: true'");
  ExpectError(WithBase("tenants:\n  a:\n    key_rules:\n      - { match: x, read_only: false }\n"),
              9, 9, "tenants.a.key_rules[0]: needs 'deny_commands' or 'read_only: true'");
  ExpectError(WithBase("tenants:\n  a:\n    key_rules:\n      - { match: x, deny_commands: [] }\n"),
              9, 9, "tenants.a.key_rules[0]: needs 'deny_commands' or 'read_only: true'");
  ExpectError(WithBase("tenants:\n  a:\n    key_rules:\n      - { match: '', read_only: true }\n"),
              9, 18, "tenants.a.key_rules[0].match: must not be empty");
}

TEST_CASE("errors: all of them are collected, sorted by position") {
  const auto errors = Errors(R"(cluster_name: "bad name"
workers: lots
listeners:
  - bind: 127.0.0.1:7000
    tenant: ghost
  - bind: 127.0.0.1:7000
    colour: blue
backend:
  mode: sharded
  nodes: [h:1]
policy:
  deny_commands: [FROB]
tenants:
  a:
    users:
      - { name: u, password: same }
      - { name: u, password: same }
)");
  INFO(testing::Dump(errors));
  std::vector<std::string> lines;
  for (const Diagnostic& d : errors) lines.push_back(d.ToString());
  CHECK(lines == std::vector<std::string>{
                     "t.yaml:1:15: cluster_name: must be 1-64 characters of [A-Za-z0-9_.-], got "
                     "'bad name'",
                     "t.yaml:2:10: workers: expected an integer, got 'lots'",
                     "t.yaml:5:13: listeners[0].tenant: unknown tenant 'ghost'",
                     "t.yaml:6:11: listeners[1].bind: duplicate bind 127.0.0.1:7000 "
                     "(listeners[0], line 4)",
                     "t.yaml:7:5: unknown field 'colour' in listeners[1]",
                     "t.yaml:9:9: backend.mode: expected standalone, cluster or sentinel, got 'sharded'",
                     "t.yaml:12:19: policy.deny_commands[0]: unknown command 'FROB'",
                     "t.yaml:17:17: tenants.a.users[1].name: duplicate user name 'u' (also in "
                     "tenant 'a', line 16)",
                     "t.yaml:17:30: tenants.a.users[1]: user 'u' has the same password as user "
                     "'u' of tenant 'a'; passwords must be unique so that AUTH with a password "
                     "alone names one user",
                 });
}

}  // namespace
}  // namespace keyfence::config
