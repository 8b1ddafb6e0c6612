// CommandRules: default-deny properties over the whole generated table, plus
// the specific expectations of DESIGN.md "Namespaces".
#include "tenancy/command_rules.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "tenancy_test_util.h"

namespace keyfence::tenancy {
namespace {

using protocol::CommandInfo;
using protocol::CommandTable;
using protocol::KeySpec;
using testing::Named;
using testing::RuleOf;

template <typename F>
void ForEachCommand(F&& f) {
  const CommandTable& table = CommandTable::Get();
  for (size_t id = 0; id < table.size(); ++id) {
    const CommandInfo& c = table.ById(static_cast<uint16_t>(id));
    INFO("command " << c.name);
    f(c, CommandRules::Get().For(c.id));
  }
}

bool In(std::initializer_list<std::string_view> list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

bool SpecsComplete(const CommandInfo& c) {
  for (const KeySpec& ks : c.key_specs) {
    if (ks.begin == KeySpec::Begin::kUnknown || ks.find == KeySpec::Find::kUnknown) return false;
    if (ks.flags & (protocol::kKsIncomplete | protocol::kKsNotKey)) return false;
  }
  return true;
}

bool IsChannelRule(ArgRule a) {
  return a == ArgRule::kChannels || a == ArgRule::kPatterns || a == ArgRule::kFirstChannel ||
         a == ArgRule::kShardChannels || a == ArgRule::kNumsub || a == ArgRule::kShardNumsub ||
         a == ArgRule::kFirstShardChannel;
}

TEST_CASE("command_rules: one rule per command of the table") {
  CHECK(CommandRules::Get().size() == CommandTable::Get().size());
  CHECK(&CommandRules::Get() == &CommandRules::Get());
}

TEST_CASE("command_rules: admin and @dangerous commands are denied unless handled locally") {
  // SORT and SORT_RO are @dangerous only because BY/GET reach arbitrary keys;
  // keyfence rewrites those patterns into the namespace (ArgRule::kSort).
  ForEachCommand([](const CommandInfo& c, const Rule& r) {
    const bool risky =
        (c.flags & protocol::kCmdAdmin) || (c.acl_categories & protocol::kAclDangerous);
    if (!risky) return;
    if (In({"sort", "sort_ro"}, c.name)) {
      CHECK(r.handling == Handling::kForward);
      CHECK(r.args == ArgRule::kSort);
      return;
    }
    CHECK(r.handling != Handling::kForward);
  });
}

TEST_CASE("command_rules: forwarded key specs are complete unless the rule is special") {
  ForEachCommand([](const CommandInfo& c, const Rule& r) {
    if (r.handling != Handling::kForward) return;
    if (r.args == ArgRule::kSort || IsChannelRule(r.args)) return;
    CHECK(SpecsComplete(c));
    if (r.args == ArgRule::kKeySpecs) CHECK_FALSE(c.key_specs.empty());
  });
}

TEST_CASE("command_rules: no forwarded command with keys skips the rewrite") {
  ForEachCommand([](const CommandInfo& c, const Rule& r) {
    if (r.handling != Handling::kForward) return;
    if (!c.key_specs.empty() || (c.flags & protocol::kCmdMovableKeys)) {
      CHECK(r.args != ArgRule::kNone);
    }
    if (c.flags & protocol::kCmdPubsub) CHECK(IsChannelRule(r.args));
  });
}

TEST_CASE("command_rules: every forwarded keyless command is on a short allow-list") {
  ForEachCommand([](const CommandInfo& c, const Rule& r) {
    if (r.handling != Handling::kForward || r.args != ArgRule::kNone) return;
    const bool help = c.parent != nullptr && c.name.ends_with("|help");
    // SCRIPT LOAD/EXISTS/FLUSH are keyless but gated like EVAL (allow_scripts);
    // keyfence answers EXISTS and FLUSH from the tenant's own SHAs.
    CHECK((help || (r.scripts && In({"script|load", "script|exists", "script|flush"}, c.name)) ||
           In({"time", "lolwut", "lastsave", "multi", "exec", "discard", "unwatch", "wait"},
              c.name)));
  });
}

TEST_CASE("command_rules: a container command alone is never forwarded") {
  // Only COMMAND (the full table) is a command on its own; keyfence answers it.
  ForEachCommand([](const CommandInfo& c, const Rule& r) {
    if (c.subcommands.empty()) return;
    if (c.name == "command") {
      CHECK(r.handling == Handling::kLocal);
    } else {
      CHECK(r.handling == Handling::kDeny);
    }
  });
}

TEST_CASE("command_rules: local rules name their emulation, others none") {
  ForEachCommand([](const CommandInfo&, const Rule& r) {
    if (r.handling == Handling::kLocal) {
      CHECK(r.local != Local::kNone);
      CHECK(r.args == ArgRule::kNone);
    } else {
      CHECK(r.local == Local::kNone);
    }
    if (r.handling == Handling::kDeny) {
      CHECK(r.args == ArgRule::kNone);
      CHECK(r.reply == ReplyRule::kNone);
    }
  });
}

TEST_CASE("command_rules: blocking commands never run on a shared connection") {
  ForEachCommand([](const CommandInfo& c, const Rule& r) {
    if (r.handling != Handling::kForward || !(c.flags & protocol::kCmdBlocking)) return;
    if (In({"xread", "xreadgroup"}, c.name)) return;  // block only with BLOCK: decided later
    CHECK(r.route == Route::kBlocking);
  });
}

TEST_CASE("command_rules: local emulations") {
  struct Case {
    std::string_view name;
    Local local;
  };
  const Case cases[] = {
      {"flushall", Local::kFlushDb},
      {"flushdb", Local::kFlushDb},
      {"keys", Local::kKeys},
      {"scan", Local::kScan},
      {"dbsize", Local::kDbSize},
      {"randomkey", Local::kRandomKey},
      {"info", Local::kInfo},
      {"hello", Local::kHello},
      {"auth", Local::kAuth},
      {"client|setname", Local::kClientSetName},
      {"client|getname", Local::kClientGetName},
      {"client|id", Local::kClientId},
      {"client|list", Local::kClientList},
      {"client|info", Local::kClientInfo},
      {"client|reply", Local::kClientReply},
      {"config|set", Local::kConfigSet},  // notify-keyspace-events only (else NOPERM)
      {"client|tracking", Local::kClientTracking},
      {"client|caching", Local::kClientCaching},
      {"client|getredir", Local::kClientGetRedir},
      {"client|trackinginfo", Local::kClientTrackingInfo},
      {"config|get", Local::kConfigGet},
      {"ping", Local::kPing},
      {"echo", Local::kEcho},
      {"quit", Local::kQuit},
      {"reset", Local::kReset},
      {"select", Local::kSelect},
      {"command", Local::kCommand},
      {"command|info", Local::kCommandInfo},
      {"command|count", Local::kCommandCount},
      {"command|docs", Local::kCommandDocs},
      {"readonly", Local::kReadOnly},
      {"readwrite", Local::kReadWrite},
      {"function|flush", Local::kFunctionFlush},
      {"cluster|slots", Local::kCluster},
      {"cluster|shards", Local::kCluster},
      {"cluster|nodes", Local::kCluster},
      {"cluster|keyslot", Local::kCluster},
      {"pubsub|channels", Local::kPubsubChannels},
  };
  for (const Case& k : cases) {
    INFO(k.name);
    const Rule& r = RuleOf(Named(k.name));
    CHECK(r.handling == Handling::kLocal);
    CHECK(r.local == k.local);
  }
}

TEST_CASE("command_rules: dangerous commands are denied") {
  for (std::string_view name : {"debug",
                                "config|rewrite",
                                "config|resetstat",
                                "shutdown",
                                "monitor",
                                "migrate",
                                "move",
                                "swapdb",
                                "slaveof",
                                "replicaof",
                                "sync",
                                "psync",
                                "save",
                                "bgsave",
                                "bgrewriteaof",
                                "script|kill",
                                "fcall",
                                "fcall_ro",
                                "restore",
                                "restore-asking",
                                "client|pause",
                                "client|unpause",
                                "client|no-evict",
                                "pubsub|numpat",
                                "function|load",
                                "function|delete",
                                "function|restore",
                                "pfdebug",
                                "failover",
                                "cluster|setslot",
                                "cluster|getkeysinslot",
                                "cluster|countkeysinslot",
                                "object",
                                "client",
                                "config"}) {
    INFO(name);
    CHECK(RuleOf(Named(name)).handling == Handling::kDeny);
  }
  for (std::string_view parent : {"acl", "module", "slowlog", "latency"}) {
    const CommandInfo& p = Named(parent);
    INFO(parent);
    CHECK(RuleOf(p).handling == Handling::kDeny);
    REQUIRE_FALSE(p.subcommands.empty());
    for (const CommandInfo& sub : p.subcommands) {
      INFO(sub.name);
      CHECK(RuleOf(sub).handling == Handling::kDeny);
    }
  }
}

TEST_CASE("command_rules: scripts are forwarded only as scripts") {
  for (std::string_view name : {"eval", "evalsha", "eval_ro", "evalsha_ro"}) {
    INFO(name);
    const Rule& r = RuleOf(Named(name));
    CHECK(r.handling == Handling::kForward);
    CHECK(r.args == ArgRule::kKeySpecs);
    CHECK(r.scripts);
  }
  ForEachCommand([](const CommandInfo& c, const Rule& r) {
    if (r.scripts) {
      CHECK(In({"eval", "evalsha", "eval_ro", "evalsha_ro", "script|load", "script|exists",
                "script|flush"},
               c.name));
    }
  });
}

TEST_CASE("command_rules: COPY is marked so its DB option can be refused") {
  CHECK(RuleOf(Named("copy")).no_db_option);
  CHECK(RuleOf(Named("copy")).handling == Handling::kForward);
  ForEachCommand([](const CommandInfo& c, const Rule& r) {
    if (r.no_db_option) CHECK(c.name == "copy");
  });
}

TEST_CASE("command_rules: replies that name keys have a reply rule") {
  for (std::string_view name :
       {"blpop", "brpop", "bzpopmin", "bzpopmax", "blmpop", "bzmpop", "lmpop", "zmpop"}) {
    INFO(name);
    CHECK(RuleOf(Named(name)).reply == ReplyRule::kFirstIsKey);
  }
  CHECK(RuleOf(Named("xread")).reply == ReplyRule::kStreams);
  CHECK(RuleOf(Named("xreadgroup")).reply == ReplyRule::kStreams);
  CHECK(RuleOf(Named("pubsub|numsub")).reply == ReplyRule::kNumsub);
  CHECK(RuleOf(Named("pubsub|shardnumsub")).reply == ReplyRule::kShardNumsub);
  CHECK(RuleOf(Named("get")).reply == ReplyRule::kNone);
}

TEST_CASE("command_rules: pub/sub and transactions get their routes") {
  for (std::string_view name :
       {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"}) {
    INFO(name);
    const Rule& r = RuleOf(Named(name));
    CHECK(r.handling == Handling::kForward);
    CHECK(r.route == Route::kPubSub);
    CHECK(r.reply == ReplyRule::kPubSub);
  }
  CHECK(RuleOf(Named("publish")).args == ArgRule::kFirstChannel);
  CHECK(RuleOf(Named("spublish")).args == ArgRule::kFirstShardChannel);
  for (std::string_view name : {"multi", "exec", "discard", "watch", "unwatch"}) {
    INFO(name);
    CHECK(RuleOf(Named(name)).route == Route::kTransaction);
  }
  CHECK(RuleOf(Named("watch")).args == ArgRule::kKeySpecs);
  CHECK(RuleOf(Named("get")).route == Route::kShared);
  CHECK(RuleOf(Named("blpop")).route == Route::kBlocking);
}

TEST_CASE("command_rules: ordinary data commands are forwarded with their key specs") {
  for (std::string_view name :
       {"get", "set", "mget", "mset", "del", "hset", "zadd", "xadd", "zunionstore", "georadius",
        "lmove", "object|encoding", "memory|usage", "xgroup|create", "xinfo|stream"}) {
    INFO(name);
    const Rule& r = RuleOf(Named(name));
    CHECK(r.handling == Handling::kForward);
    CHECK(r.args == ArgRule::kKeySpecs);
    CHECK_FALSE(r.scripts);
  }
}

}  // namespace
}  // namespace keyfence::tenancy
