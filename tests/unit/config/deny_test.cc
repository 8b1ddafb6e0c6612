// deny_commands: command names, subcommands and ACL categories compiled into CommandSets.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "config_test_util.h"
#include "protocol/command_table.h"

namespace keyfence::config {
namespace {

using protocol::CommandTable;

uint16_t Id(std::string_view name) {
  const protocol::CommandInfo* info = CommandTable::Get().FindByFullName(name);
  REQUIRE(info != nullptr);
  return info->id;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST_CASE("deny: CommandSet basics") {
  CommandSet s(10);
  CHECK(s.empty());
  CHECK(s.ids().empty());
  s.Add(3);
  s.Add(7);
  s.Add(99);  // out of range: ignored
  CHECK_FALSE(s.empty());
  CHECK(s.Contains(3));
  CHECK_FALSE(s.Contains(4));
  CHECK_FALSE(s.Contains(99));
  CHECK(s.ids() == std::vector<uint16_t>{3, 7});
  CommandSet o(20);
  o.Add(15);
  o.Add(3);
  s.Merge(o);
  CHECK(s.ids() == std::vector<uint16_t>{3, 7, 15});
  CHECK(CommandSet().empty());
  CHECK_FALSE(CommandSet().Contains(0));
}

TEST_CASE("deny: command names, case-insensitive, with their subcommands") {
  const SnapshotPtr s = testing::MustLoad(testing::WithBase(R"(tenants:
  a:
    deny_commands: [keys, "CLIENT|KILL", Config]
)"));
  const Tenant& t = *s->FindTenant("a");
  CHECK(t.deny.Contains(Id("keys")));
  CHECK(t.deny.Contains(Id("client|kill")));
  CHECK_FALSE(t.deny.Contains(Id("client")));
  CHECK_FALSE(t.deny.Contains(Id("client|list")));
  CHECK(t.deny.Contains(Id("config")));
  CHECK(t.deny.Contains(Id("config|get")));
  CHECK(t.deny.Contains(Id("config|set")));
  CHECK_FALSE(t.deny.Contains(Id("get")));
  const std::vector<std::string> names = DeniedNames(t.deny);
  CHECK(Contains(names, "keys"));
  CHECK(Contains(names, "client|kill"));
  CHECK(Contains(names, "config|set"));
}

TEST_CASE("deny: an ACL category expands to every command in it") {
  const SnapshotPtr s = testing::MustLoad(testing::WithBase(R"(tenants:
  a:
    deny_commands: ["@dangerous"]
  b:
    deny_commands: ["@STRING"]
)"));
  const Tenant& a = *s->FindTenant("a");
  CHECK(a.deny.Contains(Id("flushall")));
  CHECK(a.deny.Contains(Id("keys")));
  CHECK(a.deny.Contains(Id("client|kill")));
  CHECK_FALSE(a.deny.Contains(Id("get")));
  uint32_t bit = 0;
  REQUIRE(CommandTable::ParseCategory("@dangerous", &bit));
  const CommandTable& table = CommandTable::Get();
  for (size_t id = 0; id < table.size(); ++id) {
    const protocol::CommandInfo& c = table.ById(static_cast<uint16_t>(id));
    INFO(c.name);
    CHECK(a.deny.Contains(c.id) == ((c.acl_categories & bit) != 0));
  }
  const Tenant& b = *s->FindTenant("b");
  CHECK(b.deny.Contains(Id("get")));
  CHECK(b.deny.Contains(Id("append")));
  CHECK_FALSE(b.deny.Contains(Id("hget")));
}

TEST_CASE("deny: the global list is merged into every tenant") {
  const SnapshotPtr s = testing::MustLoad(testing::WithBase(R"(policy:
  deny_commands: [SORT]
tenants:
  a:
    deny_commands: [KEYS]
  b: {}
)"));
  CHECK(s->global_deny.Contains(Id("sort")));
  CHECK_FALSE(s->global_deny.Contains(Id("keys")));
  const Tenant& a = *s->FindTenant("a");
  CHECK(a.deny.Contains(Id("sort")));
  CHECK(a.deny.Contains(Id("keys")));
  const Tenant& b = *s->FindTenant("b");
  CHECK(b.deny.Contains(Id("sort")));
  CHECK_FALSE(b.deny.Contains(Id("keys")));
  CHECK(DeniedNames(b.deny) == std::vector<std::string>{"sort"});
}

TEST_CASE("deny: key rules") {
  const SnapshotPtr s = testing::MustLoad(testing::WithBase(R"(tenants:
  a:
    key_rules:
      - match: "report:*"
        deny_commands: [HGETALL, SMEMBERS, LRANGE]
      - match: "config:*"
        read_only: true
      - match: "both:*"
        read_only: true
        deny_commands: [GET]
)"));
  const Tenant& t = *s->FindTenant("a");
  REQUIRE(t.key_rules.size() == 3);
  CHECK(t.key_rules[0].match == "report:*");
  CHECK(DeniedNames(t.key_rules[0].deny) ==
        std::vector<std::string>{"hgetall", "lrange", "smembers"});
  CHECK_FALSE(t.key_rules[0].read_only);
  CHECK(t.key_rules[1].deny.empty());
  CHECK(t.key_rules[1].read_only);
  CHECK(t.key_rules[2].read_only);
  CHECK(t.key_rules[2].deny.Contains(Id("get")));
  CHECK(t.deny.empty());  // key rules do not leak into the tenant's deny set
}

}  // namespace
}  // namespace keyfence::config
