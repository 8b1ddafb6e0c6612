// Tests of the generated command table (protocol/commands_gen.inc via CommandTable).
#include "protocol/command_table.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <string_view>

namespace keyfence::protocol {
namespace {

const CommandTable& T() { return CommandTable::Get(); }

const CommandInfo& Must(std::string_view full_name) {
  const CommandInfo* cmd = T().FindByFullName(full_name);
  REQUIRE(cmd != nullptr);
  return *cmd;
}

// The first key spec of `cmd` that begins with `keyword`, or nullptr.
const KeySpec* KeywordSpec(const CommandInfo& cmd, std::string_view keyword) {
  for (const KeySpec& ks : cmd.key_specs) {
    if (ks.begin == KeySpec::Begin::kKeyword && ks.keyword == keyword) return &ks;
  }
  return nullptr;
}

TEST_CASE("Find is case-insensitive and returns top-level commands only", "[command_table]") {
  const CommandInfo* get = T().Find("GET");
  REQUIRE(get != nullptr);
  CHECK(get->name == "get");
  CHECK(get->parent == nullptr);
  CHECK(T().Find("get") == get);
  CHECK(T().Find("Get") == get);
  CHECK(T().Find("gEt") == get);
  CHECK(T().FindByFullName("GET") == get);

  CHECK(T().Find("CLIENT|KILL") == nullptr);  // a subcommand is not a top-level command
  CHECK(T().Find("client") != nullptr);
}

TEST_CASE("Unknown names are rejected", "[command_table]") {
  CHECK(T().Find("nosuchcommand") == nullptr);
  CHECK(T().Find("") == nullptr);
  CHECK(T().Find("ge") == nullptr);
  CHECK(T().Find("gett") == nullptr);
  CHECK(T().Find(std::string(1000, 'a')) == nullptr);
  CHECK(T().Find(std::string_view("get\0", 4)) == nullptr);
  CHECK(T().FindByFullName("client|nosuch") == nullptr);
  CHECK(T().FindByFullName("client|") == nullptr);
  CHECK(T().FindByFullName("|kill") == nullptr);
  CHECK(T().FindByFullName("get|x") == nullptr);
  CHECK(T().FindSub(Must("get"), "x") == nullptr);
  CHECK(T().FindSub(Must("client"), "") == nullptr);
  CHECK(T().FindSub(Must("client"), std::string(1000, 'k')) == nullptr);
  CHECK(T().FindSub(Must("client"), "kill|x") == nullptr);
}

TEST_CASE("Subcommands by full name and by FindSub", "[command_table]") {
  const CommandInfo* client = T().Find("CLIENT");
  REQUIRE(client != nullptr);
  const CommandInfo* kill = T().FindByFullName("CLIENT|KILL");
  REQUIRE(kill != nullptr);
  CHECK(kill->name == "client|kill");
  CHECK(kill->parent == client);
  CHECK(T().FindByFullName("client|kill") == kill);
  CHECK(T().FindByFullName("Client|Kill") == kill);
  CHECK(T().FindSub(*client, "KILL") == kill);
  CHECK(T().FindSub(*client, "kill") == kill);
  CHECK(T().FindSub(*client, "kIlL") == kill);
  // A subcommand of another parent is not found through the wrong parent.
  CHECK(T().FindSub(Must("config"), "kill") == nullptr);
  CHECK(T().FindSub(*client, "GETNAME") == &Must("client|getname"));

  // The longest name in the table is still found; one character more is not.
  const CommandInfo& cfr = Must("CLUSTER|COUNT-FAILURE-REPORTS");
  CHECK(T().FindSub(Must("cluster"), "count-failure-reports") == &cfr);
  CHECK(T().FindSub(Must("cluster"), "count-failure-reportsX") == nullptr);
}

TEST_CASE("Commands with subcommands list them", "[command_table]") {
  for (const char* name :
       {"acl", "client", "cluster", "command", "config", "function", "latency", "memory", "module",
        "object", "pubsub", "script", "slowlog", "xgroup", "xinfo"}) {
    INFO(name);
    CHECK(!Must(name).subcommands.empty());
  }
  CHECK(Must("debug").subcommands.empty());
  CHECK(Must("get").subcommands.empty());
  CHECK(T().FindByFullName("object|encoding") != nullptr);
  CHECK(T().FindByFullName("xgroup|create") != nullptr);
  CHECK(T().FindByFullName("memory|usage") != nullptr);
  CHECK(T().FindByFullName("config|set") != nullptr);
}

TEST_CASE("Arity, flags and groups of known commands", "[command_table]") {
  CHECK(Must("get").arity == 2);
  CHECK(Must("set").arity == -3);
  CHECK(Must("mget").arity == -2);
  CHECK(Must("client|kill").arity == -3);
  CHECK(Must("object|encoding").arity == 3);

  CHECK((Must("get").flags & kCmdReadonly) != 0);
  CHECK((Must("get").flags & kCmdFast) != 0);
  CHECK((Must("get").flags & kCmdWrite) == 0);
  CHECK((Must("set").flags & kCmdWrite) != 0);
  CHECK((Must("set").flags & kCmdDenyOom) != 0);
  CHECK((Must("blpop").flags & kCmdBlocking) != 0);
  CHECK((Must("subscribe").flags & kCmdPubsub) != 0);
  CHECK((Must("xread").flags & kCmdMovableKeys) != 0);
}

TEST_CASE("Key specs", "[command_table]") {
  SECTION("SET: one key at index 1") {
    const CommandInfo& set = Must("set");
    REQUIRE(set.key_specs.size() == 1);
    const KeySpec& ks = set.key_specs[0];
    CHECK(ks.begin == KeySpec::Begin::kIndex);
    CHECK(ks.index == 1);
    CHECK(ks.find == KeySpec::Find::kRange);
    CHECK(ks.lastkey == 0);
    CHECK(ks.keystep == 1);
    CHECK(ks.limit == 0);
    CHECK((ks.flags & kKsRW) != 0);
  }
  SECTION("GET: read-only key") {
    REQUIRE(Must("get").key_specs.size() == 1);
    CHECK((Must("get").key_specs[0].flags & kKsRO) != 0);
  }
  SECTION("MSET: every other argument") {
    const CommandInfo& mset = Must("mset");
    REQUIRE(mset.key_specs.size() == 1);
    CHECK(mset.key_specs[0].index == 1);
    CHECK(mset.key_specs[0].lastkey == -1);
    CHECK(mset.key_specs[0].keystep == 2);
  }
  SECTION("ZUNIONSTORE: destination, then numkeys-counted sources") {
    const CommandInfo& zu = Must("zunionstore");
    REQUIRE(zu.key_specs.size() == 2);
    CHECK(zu.key_specs[0].begin == KeySpec::Begin::kIndex);
    CHECK(zu.key_specs[0].index == 1);
    CHECK(zu.key_specs[0].find == KeySpec::Find::kRange);
    CHECK((zu.key_specs[0].flags & kKsOW) != 0);
    const KeySpec& src = zu.key_specs[1];
    CHECK(src.begin == KeySpec::Begin::kIndex);
    CHECK(src.index == 2);
    CHECK(src.find == KeySpec::Find::kKeynum);
    CHECK(src.keynumidx == 0);
    CHECK(src.firstkey == 1);
    CHECK(src.step == 1);
  }
  SECTION("XREAD: keys after the STREAMS keyword, first half of the rest") {
    const CommandInfo& xread = Must("xread");
    REQUIRE(xread.key_specs.size() == 1);
    const KeySpec& ks = xread.key_specs[0];
    CHECK(ks.begin == KeySpec::Begin::kKeyword);
    CHECK(ks.keyword == "STREAMS");
    CHECK(ks.startfrom == 1);
    CHECK(ks.find == KeySpec::Find::kRange);
    CHECK(ks.lastkey == -1);
    CHECK(ks.keystep == 1);
    CHECK(ks.limit == 2);
  }
  SECTION("GEORADIUS: STORE and STOREDIST keywords") {
    const CommandInfo& geo = Must("georadius");
    CHECK(geo.key_specs[0].begin == KeySpec::Begin::kIndex);
    const KeySpec* store = KeywordSpec(geo, "STORE");
    REQUIRE(store != nullptr);
    CHECK(store->startfrom == 6);
    CHECK(store->find == KeySpec::Find::kRange);
    CHECK(store->lastkey == 0);
    CHECK((store->flags & kKsOW) != 0);
    CHECK(KeywordSpec(geo, "STOREDIST") != nullptr);
  }
  SECTION("SORT: a spec Redis cannot describe (BY/GET/STORE)") {
    const CommandInfo& sort = Must("sort");
    REQUIRE(sort.key_specs.size() == 3);
    CHECK(sort.key_specs[0].begin == KeySpec::Begin::kIndex);
    bool has_unknown = false;
    for (const KeySpec& ks : sort.key_specs) {
      if (ks.begin == KeySpec::Begin::kUnknown) {
        has_unknown = true;
        CHECK(ks.find == KeySpec::Find::kUnknown);
      }
    }
    CHECK(has_unknown);
  }
  SECTION("Subcommand key specs") {
    const CommandInfo& enc = Must("object|encoding");
    REQUIRE(enc.key_specs.size() == 1);
    CHECK(enc.key_specs[0].index == 2);
  }
  SECTION("Commands without keys") {
    CHECK(Must("ping").key_specs.empty());
    CHECK(Must("client|kill").key_specs.empty());
  }
}

TEST_CASE("ACL categories", "[command_table]") {
  uint32_t bit = 0;
  REQUIRE(CommandTable::ParseCategory("@dangerous", &bit));
  CHECK(bit == kAclDangerous);
  bit = 0;
  REQUIRE(CommandTable::ParseCategory("dangerous", &bit));
  CHECK(bit == kAclDangerous);
  bit = 0;
  REQUIRE(CommandTable::ParseCategory("@DANGEROUS", &bit));
  CHECK(bit == kAclDangerous);
  REQUIRE(CommandTable::ParseCategory("SortedSet", &bit));
  CHECK(bit == kAclSortedSet);
  REQUIRE(CommandTable::ParseCategory("@hyperloglog", &bit));
  CHECK(bit == kAclHyperLogLog);

  bit = 12345;
  CHECK_FALSE(CommandTable::ParseCategory("@nope", &bit));
  CHECK_FALSE(CommandTable::ParseCategory("", &bit));
  CHECK_FALSE(CommandTable::ParseCategory("@", &bit));
  CHECK_FALSE(CommandTable::ParseCategory("@@dangerous", &bit));
  CHECK_FALSE(CommandTable::ParseCategory("@all", &bit));  // not a single category bit
  CHECK(bit == 12345);

  CHECK(CommandTable::CategoryName(kAclDangerous) == "dangerous");
  CHECK(CommandTable::CategoryName(kAclKeyspace) == "keyspace");
  CHECK(CommandTable::CategoryName(kAclScripting) == "scripting");
  CHECK(CommandTable::CategoryName(0).empty());
  CHECK(CommandTable::CategoryName(kAclRead | kAclWrite).empty());
  CHECK(CommandTable::CategoryName(1u << 31).empty());
  for (uint32_t i = 0; i <= 20; ++i) {
    std::string_view name = CommandTable::CategoryName(1u << i);
    INFO(i);
    REQUIRE(!name.empty());
    uint32_t parsed = 0;
    REQUIRE(CommandTable::ParseCategory(name, &parsed));
    CHECK(parsed == 1u << i);
  }

  CHECK((Must("flushall").acl_categories & kAclDangerous) != 0);
  CHECK((Must("keys").acl_categories & kAclDangerous) != 0);
  CHECK((Must("flushdb").acl_categories & kAclDangerous) != 0);
  CHECK((Must("get").acl_categories & kAclDangerous) == 0);
  CHECK((Must("get").acl_categories & kAclString) != 0);
  CHECK((Must("get").acl_categories & kAclRead) != 0);
  CHECK((Must("client|kill").acl_categories & kAclAdmin) != 0);
}

TEST_CASE("Ids are dense and ById round-trips", "[command_table]") {
  const size_t n = T().size();
  REQUIRE(n > 300);  // Redis 7.0: 240 commands and 126 subcommands
  size_t counted = 0;
  std::set<std::string_view> names;
  for (size_t i = 0; i < n; ++i) {
    const CommandInfo& cmd = T().ById(static_cast<uint16_t>(i));
    INFO(cmd.name);
    CHECK(cmd.id == i);
    CHECK(T().FindByFullName(cmd.name) == &cmd);
    CHECK(names.insert(cmd.name).second);
    ++counted;
  }
  CHECK(counted == n);

  size_t total = 0;
  for (const CommandInfo& cmd : T().commands()) total += 1 + cmd.subcommands.size();
  CHECK(total == n);
  CHECK(T().ById(Must("get").id).name == "get");
  CHECK(&T().ById(Must("client|kill").id) == &Must("client|kill"));
}

TEST_CASE("Top-level commands are sorted and subcommands point at their parent",
          "[command_table]") {
  std::string_view prev;
  for (const CommandInfo& cmd : T().commands()) {
    INFO(cmd.name);
    CHECK(cmd.parent == nullptr);
    CHECK(prev < cmd.name);
    CHECK(cmd.name.find('|') == std::string_view::npos);
    CHECK(T().Find(cmd.name) == &cmd);
    prev = cmd.name;
    for (const CommandInfo& sub : cmd.subcommands) {
      INFO(sub.name);
      CHECK(sub.parent == &cmd);
      CHECK(sub.subcommands.empty());
      REQUIRE(sub.name.size() > cmd.name.size() + 1);
      CHECK(sub.name.substr(0, cmd.name.size() + 1) == std::string(cmd.name) + "|");
      CHECK(T().FindSub(cmd, sub.name.substr(cmd.name.size() + 1)) == &sub);
      CHECK(T().Find(sub.name) == nullptr);
    }
  }
}

TEST_CASE("Generated from Redis 7", "[command_table]") {
  CHECK(CommandTable::RedisVersion().substr(0, 2) == "7.");
}

}  // namespace
}  // namespace keyfence::protocol
