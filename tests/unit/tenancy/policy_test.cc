// Command and key policy: deny_commands (with subcommands) and key_rules.
#include "tenancy/policy.h"

#include <catch2/catch.hpp>
#include <string>

#include "config/config.h"
#include "tenancy_test_util.h"

namespace keyfence::tenancy {
namespace {

using testing::Args;
using testing::CommandOf;
using testing::Named;
using testing::RuleOf;

constexpr std::string_view kConfig = R"(cluster_name: shop
listeners:
  - bind: 127.0.0.1:6380
backend:
  nodes: [127.0.0.1:6379]
policy:
  deny_commands: [FLUSHALL]
tenants:
  orders:
    deny_commands: [KEYS, "CLIENT|KILL", OBJECT]
    key_rules:
      - match: "report:*"
        deny_commands: [HGETALL, SMEMBERS, LRANGE, "MEMORY|USAGE"]
      - match: "report:secret:*"
        deny_commands: [GET]
      - match: "config:*"
        read_only: true
      - match: "{locked}*"
        read_only: true
        deny_commands: [GET]
  billing: {}
)";

const config::Snapshot& Snapshot() {
  static const config::SnapshotPtr snap = [] {
    config::LoadResult r = config::LoadString(kConfig, "policy.yaml", 1);
    for (const config::Diagnostic& d : r.errors) UNSCOPED_INFO(d.ToString());
    REQUIRE(r.ok());
    return r.snapshot;
  }();
  return *snap;
}

const config::Tenant& Orders() { return *Snapshot().FindTenant("orders"); }
const config::Tenant& Billing() { return *Snapshot().FindTenant("billing"); }

Verdict Command(const config::Tenant& t, const Args& args) {
  return CheckCommand(t, CommandOf(args));
}

Verdict Keys(const config::Tenant& t, const Args& args) {
  const protocol::CommandInfo& c = CommandOf(args);
  NameRefs refs;
  REQUIRE(FindNames(RuleOf(c), c, args, &refs) == FindStatus::kOk);
  return CheckKeys(t, c, args, refs);
}

TEST_CASE("policy: deny_commands deny the command; others are allowed") {
  CHECK(Command(Orders(), {"KEYS", "*"}) == Verdict::kDenyCommand);
  CHECK(Command(Orders(), {"keys", "*"}) == Verdict::kDenyCommand);
  CHECK(Command(Orders(), {"GET", "k"}) == Verdict::kAllow);
  CHECK(Command(Billing(), {"KEYS", "*"}) == Verdict::kAllow);
}

TEST_CASE("policy: the global deny list applies to every tenant") {
  CHECK(Command(Orders(), {"FLUSHALL"}) == Verdict::kDenyCommand);
  CHECK(Command(Billing(), {"FLUSHALL"}) == Verdict::kDenyCommand);
  CHECK(Command(Billing(), {"FLUSHDB"}) == Verdict::kAllow);
}

TEST_CASE("policy: a denied subcommand leaves its siblings allowed") {
  CHECK(Command(Orders(), {"CLIENT", "KILL", "ID", "1"}) == Verdict::kDenyCommand);
  CHECK(Command(Orders(), {"CLIENT", "SETNAME", "x"}) == Verdict::kAllow);
}

TEST_CASE("policy: a denied parent denies its subcommands") {
  CHECK(Command(Orders(), {"OBJECT", "ENCODING", "k"}) == Verdict::kDenyCommand);
  CHECK(Command(Orders(), {"OBJECT", "FREQ", "k"}) == Verdict::kDenyCommand);
  // Even in a hand-built tenant whose set holds only the parent's id.
  config::Tenant t;
  t.app = "hand";
  t.prefix = "shop@hand:";
  t.deny = config::CommandSet(protocol::CommandTable::Get().size());
  t.deny.Add(Named("config").id);
  CHECK(CheckCommand(t, Named("config|get")) == Verdict::kDenyCommand);
  CHECK(CheckCommand(t, Named("config|set")) == Verdict::kDenyCommand);
  CHECK(CheckCommand(t, Named("config")) == Verdict::kDenyCommand);
  CHECK(CheckCommand(t, Named("client|list")) == Verdict::kAllow);
  // A denied subcommand does not deny its parent's other subcommands.
  config::Tenant u = t;
  u.deny = config::CommandSet(protocol::CommandTable::Get().size());
  u.deny.Add(Named("config|set").id);
  CHECK(CheckCommand(u, Named("config|set")) == Verdict::kDenyCommand);
  CHECK(CheckCommand(u, Named("config|get")) == Verdict::kAllow);
}

TEST_CASE("policy: an empty tenant denies nothing") {
  config::Tenant t;
  CHECK(CheckCommand(t, Named("flushall")) == Verdict::kAllow);
  CHECK(Keys(t, {"SET", "config:x", "1"}) == Verdict::kAllow);
}

TEST_CASE("policy: key rules deny listed commands on matching keys") {
  CHECK(Keys(Orders(), {"HGETALL", "report:2024"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"SMEMBERS", "report:x"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"LRANGE", "report:x", "0", "-1"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"MEMORY", "USAGE", "report:x"}) == Verdict::kDenyKey);
  // Other commands on the key, and the command on other keys, are allowed.
  CHECK(Keys(Orders(), {"HGET", "report:2024", "total"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"HGETALL", "reports"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"HGETALL", "user:1"}) == Verdict::kAllow);
  CHECK(Keys(Billing(), {"HGETALL", "report:2024"}) == Verdict::kAllow);
}

TEST_CASE("policy: any key of a multi-key command can trigger a key rule") {
  CHECK(Keys(Orders(), {"SMEMBERS", "ok"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"MSET", "a", "1", "config:x", "2"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"MGET", "a", "config:x"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"RENAME", "a", "config:x"}) == Verdict::kDenyKey);
}

TEST_CASE("policy: read_only blocks writes but not reads") {
  CHECK(Keys(Orders(), {"SET", "config:x", "1"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"DEL", "config:x"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"EXPIRE", "config:x", "10"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"HSET", "config:x", "f", "v"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"GET", "config:x"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"HGETALL", "config:x"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"TTL", "config:x"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"SET", "configx", "1"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"SORT", "l", "STORE", "config:out"}) == Verdict::kDenyKey);
}

TEST_CASE("policy: key rules match the client's own names, glob and hash tags included") {
  CHECK(Keys(Orders(), {"SET", "{locked}a", "1"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"GET", "{locked}a"}) == Verdict::kDenyKey);
  CHECK(Keys(Orders(), {"TTL", "{locked}a"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"GET", "x{locked}"}) == Verdict::kAllow);
  // The rule sees "config:x", never the backend name "shop@orders:config:x".
  CHECK(Keys(Orders(), {"SET", "shop@orders:config:x", "1"}) == Verdict::kAllow);
}

TEST_CASE("policy: the first matching key rule decides") {
  // report:secret:1 matches "report:*" first, which does not deny GET.
  CHECK(Keys(Orders(), {"GET", "report:secret:1"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"HGETALL", "report:secret:1"}) == Verdict::kDenyKey);
}

TEST_CASE("policy: channels are not keys for key rules") {
  CHECK(Keys(Orders(), {"PUBLISH", "config:x", "m"}) == Verdict::kAllow);
  CHECK(Keys(Orders(), {"SUBSCRIBE", "report:x"}) == Verdict::kAllow);
}

TEST_CASE("policy: NOPERM message names the command as Redis does") {
  CHECK(NoPermCommand(Named("keys")) ==
        "NOPERM this user has no permissions to run the 'keys' command");
  CHECK(NoPermCommand(Named("client|kill")) ==
        "NOPERM this user has no permissions to run the 'client|kill' command");
}

}  // namespace
}  // namespace keyfence::tenancy
