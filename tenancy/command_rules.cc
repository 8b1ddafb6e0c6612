#include "tenancy/command_rules.h"

#include <string_view>
#include <utility>

namespace keyfence::tenancy {
namespace {

using protocol::CommandInfo;
using protocol::CommandTable;
using protocol::KeySpec;

// Commands answered or emulated by keyfence itself.
constexpr std::pair<std::string_view, Local> kLocal[] = {
    {"ping", Local::kPing},
    {"echo", Local::kEcho},
    {"quit", Local::kQuit},
    {"reset", Local::kReset},
    {"select", Local::kSelect},
    {"hello", Local::kHello},
    {"auth", Local::kAuth},
    {"client|setname", Local::kClientSetName},
    {"client|getname", Local::kClientGetName},
    {"client|id", Local::kClientId},
    {"client|info", Local::kClientInfo},
    {"client|list", Local::kClientList},
    {"client|reply", Local::kClientReply},
    {"client|kill", Local::kClientKill},
    {"client|unblock", Local::kClientUnblock},
    {"client|tracking", Local::kClientTracking},
    {"client|caching", Local::kClientCaching},
    {"client|getredir", Local::kClientGetRedir},
    {"client|trackinginfo", Local::kClientTrackingInfo},
    {"command", Local::kCommand},
    {"command|count", Local::kCommandCount},
    {"command|info", Local::kCommandInfo},
    {"command|docs", Local::kCommandDocs},
    {"command|list", Local::kCommandList},
    {"command|getkeys", Local::kCommandGetKeys},
    {"info", Local::kInfo},
    {"config|get", Local::kConfigGet},
    {"config|set", Local::kConfigSet},
    {"dbsize", Local::kDbSize},
    {"flushdb", Local::kFlushDb},
    {"flushall", Local::kFlushDb},
    {"randomkey", Local::kRandomKey},
    {"keys", Local::kKeys},
    {"scan", Local::kScan},
    {"readonly", Local::kReadOnly},
    {"readwrite", Local::kReadWrite},
    {"function|flush", Local::kFunctionFlush},
    {"cluster|slots", Local::kCluster},
    {"cluster|shards", Local::kCluster},
    {"cluster|nodes", Local::kCluster},
    {"cluster|info", Local::kCluster},
    {"cluster|myid", Local::kCluster},
    {"cluster|keyslot", Local::kCluster},
    {"pubsub|channels", Local::kPubsubChannels},
    {"pubsub|shardchannels", Local::kPubsubChannels},
};

// Keyless commands that reveal nothing about other tenants.
constexpr std::string_view kKeylessSafe[] = {
    "time",        "lolwut",       "lastsave",      "object|help", "xinfo|help",
    "xgroup|help", "memory|help",  "pubsub|help",   "command|help", "client|help",
    "config|help", "function|help", "script|help",
};

struct Special {
  std::string_view name;
  ArgRule args;
  ReplyRule reply;
  Route route;
};

// Pub/sub, transactions and key-name replies.
constexpr Special kSpecial[] = {
    {"subscribe", ArgRule::kChannels, ReplyRule::kPubSub, Route::kPubSub},
    {"unsubscribe", ArgRule::kChannels, ReplyRule::kPubSub, Route::kPubSub},
    {"psubscribe", ArgRule::kPatterns, ReplyRule::kPubSub, Route::kPubSub},
    {"punsubscribe", ArgRule::kPatterns, ReplyRule::kPubSub, Route::kPubSub},
    {"ssubscribe", ArgRule::kShardChannels, ReplyRule::kPubSub, Route::kPubSub},
    {"sunsubscribe", ArgRule::kShardChannels, ReplyRule::kPubSub, Route::kPubSub},
    {"publish", ArgRule::kFirstChannel, ReplyRule::kNone, Route::kShared},
    {"spublish", ArgRule::kFirstShardChannel, ReplyRule::kNone, Route::kShared},
    {"pubsub|numsub", ArgRule::kNumsub, ReplyRule::kNumsub, Route::kShared},
    {"pubsub|shardnumsub", ArgRule::kShardNumsub, ReplyRule::kShardNumsub, Route::kShared},
    {"multi", ArgRule::kNone, ReplyRule::kNone, Route::kTransaction},
    {"exec", ArgRule::kNone, ReplyRule::kNone, Route::kTransaction},
    {"discard", ArgRule::kNone, ReplyRule::kNone, Route::kTransaction},
    {"watch", ArgRule::kKeySpecs, ReplyRule::kNone, Route::kTransaction},
    {"unwatch", ArgRule::kNone, ReplyRule::kNone, Route::kTransaction},
    {"wait", ArgRule::kNone, ReplyRule::kNone, Route::kBlocking},
    {"sort", ArgRule::kSort, ReplyRule::kNone, Route::kShared},
    {"sort_ro", ArgRule::kSort, ReplyRule::kNone, Route::kShared},
    {"blpop", ArgRule::kKeySpecs, ReplyRule::kFirstIsKey, Route::kBlocking},
    {"brpop", ArgRule::kKeySpecs, ReplyRule::kFirstIsKey, Route::kBlocking},
    {"bzpopmin", ArgRule::kKeySpecs, ReplyRule::kFirstIsKey, Route::kBlocking},
    {"bzpopmax", ArgRule::kKeySpecs, ReplyRule::kFirstIsKey, Route::kBlocking},
    {"blmpop", ArgRule::kKeySpecs, ReplyRule::kFirstIsKey, Route::kBlocking},
    {"bzmpop", ArgRule::kKeySpecs, ReplyRule::kFirstIsKey, Route::kBlocking},
    {"lmpop", ArgRule::kKeySpecs, ReplyRule::kFirstIsKey, Route::kShared},
    {"zmpop", ArgRule::kKeySpecs, ReplyRule::kFirstIsKey, Route::kShared},
    // XREAD/XREADGROUP block only with BLOCK (Rule::block_option; Decide checks it).
    {"xread", ArgRule::kKeySpecs, ReplyRule::kStreams, Route::kShared},
    {"xreadgroup", ArgRule::kKeySpecs, ReplyRule::kStreams, Route::kShared},
};

// Keyed commands that would still leave the namespace (other DBs, raw payloads
// crafted by the client, server-side functions) are denied outright.
constexpr std::string_view kDenyKeyed[] = {"move", "restore", "restore-asking", "migrate",
                                           "fcall", "fcall_ro", "pfdebug"};
constexpr std::string_view kScripts[] = {"eval", "evalsha", "eval_ro", "evalsha_ro"};

bool SpecsComplete(const CommandInfo& c) {
  if (c.key_specs.empty()) return false;
  for (const KeySpec& ks : c.key_specs) {
    if (ks.begin == KeySpec::Begin::kUnknown || ks.find == KeySpec::Find::kUnknown) return false;
    if (ks.flags & (protocol::kKsIncomplete | protocol::kKsNotKey)) return false;
  }
  return true;
}

template <typename T, size_t N>
bool Contains(const T (&list)[N], std::string_view name) {
  for (const auto& x : list) {
    if (x == name) return true;
  }
  return false;
}

// The default rule from flags and key specs: forward only what is provably
// confined to the namespace.
Rule DefaultRule(const CommandInfo& c) {
  Rule r;
  if (!c.subcommands.empty()) return r;  // the parent alone is not a command
  if (c.flags & (protocol::kCmdAdmin | protocol::kCmdPubsub)) return r;
  if (c.acl_categories & (protocol::kAclDangerous | protocol::kAclScripting)) return r;
  if (Contains(kDenyKeyed, c.name)) return r;
  if (SpecsComplete(c)) {
    r.handling = Handling::kForward;
    r.args = ArgRule::kKeySpecs;
    if (c.flags & protocol::kCmdBlocking) r.route = Route::kBlocking;
    return r;
  }
  if (c.key_specs.empty() && !(c.flags & protocol::kCmdMovableKeys) &&
      Contains(kKeylessSafe, c.name)) {
    r.handling = Handling::kForward;
  }
  return r;
}

}  // namespace

CommandRules::CommandRules() {
  const CommandTable& table = CommandTable::Get();
  rules_.resize(table.size());
  for (size_t id = 0; id < table.size(); ++id) {
    rules_[id] = DefaultRule(table.ById(static_cast<uint16_t>(id)));
  }
  auto set = [&](std::string_view name, auto&& fn) {
    const CommandInfo* c = table.FindByFullName(name);
    if (c != nullptr) fn(rules_[c->id]);
  };
  for (const auto& entry : kLocal) {  // (no structured binding: clang 14 can't capture it)
    set(entry.first, [&](Rule& r) {
      r = Rule{};
      r.handling = Handling::kLocal;
      r.local = entry.second;
    });
  }
  for (const Special& s : kSpecial) {
    set(s.name, [&](Rule& r) {
      r = Rule{};
      r.handling = Handling::kForward;
      r.args = s.args;
      r.reply = s.reply;
      r.route = s.route;
    });
  }
  for (std::string_view name : kScripts) {
    set(name, [](Rule& r) {
      r = Rule{};
      r.handling = Handling::kForward;
      r.args = ArgRule::kKeySpecs;
      r.scripts = true;
    });
  }
  // With allow_scripts, clients load scripts and call them by SHA (redis-py's
  // register_script, ioredis defineCommand): SCRIPT LOAD/EXISTS are keyless.
  // SCRIPT FLUSH forgets the tenant's own SHAs (proxy: commands/scripts.cc).
  for (std::string_view name : {"script|load", "script|exists", "script|flush"}) {
    set(name, [](Rule& r) {
      r = Rule{};
      r.handling = Handling::kForward;
      r.scripts = true;
    });
  }
  set("copy", [](Rule& r) {
    r.no_db_option = true;
    r.as_keyfence = true;
  });
  for (std::string_view name : {"sort", "sort_ro"}) {
    set(name, [](Rule& r) { r.as_keyfence = true; });
  }
  for (std::string_view name : {"xread", "xreadgroup"}) {
    set(name, [](Rule& r) { r.block_option = true; });
  }
  // The reply to KEYS inside MULTI/EXEC, SCAN etc. are handled by the proxy's
  // emulations; PUBSUB NUMPAT counts every tenant's patterns: denied.
}

const CommandRules& CommandRules::Get() {
  static const CommandRules* rules = new CommandRules();
  return *rules;
}

}  // namespace keyfence::tenancy
