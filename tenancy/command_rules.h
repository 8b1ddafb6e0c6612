// How keyfence handles each command of the generated table (default-deny).
//
// The table is data: a Rule per command id, derived from the command's key
// specs and flags, plus a short list of overrides for the commands keyfence
// answers itself, emulates within the namespace, or routes specially. A
// command is forwarded only if every key, channel and pattern in it and every
// name in its reply has a known rule (DESIGN.md "Namespaces").
// Immutable after first use; shared by all threads.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "protocol/command_table.h"

namespace keyfence::tenancy {

enum class Handling : uint8_t {
  kDeny,     // never forwarded: -NOPERM ... (or -ERR unknown command if not in the table)
  kForward,  // rewritten by ArgRule and forwarded
  kLocal,    // answered by keyfence (handshake, introspection, emulations)
};

// How the arguments are rewritten before forwarding.
enum class ArgRule : uint8_t {
  kNone,          // no key arguments (keyless safe command)
  kKeySpecs,      // key positions from the command's key specs
  kSort,          // key specs + BY/GET patterns and STORE destination
  kChannels,      // every argument from 1 is a channel ((UN)SUBSCRIBE)
  kPatterns,      // every argument from 1 is a channel pattern (P(UN)SUBSCRIBE)
  kFirstChannel,  // argument 1 is a channel (PUBLISH, SPUBLISH)
  kShardChannels, // every argument from 1 is a shard channel (S(UN)SUBSCRIBE)
  kNumsub,        // PUBSUB NUMSUB/SHARDNUMSUB: arguments from 2 are channels
  kShardNumsub,   // PUBSUB SHARDNUMSUB: arguments from 2 are shard channels
  kFirstShardChannel,  // SPUBLISH: argument 1 is a shard channel
};

// Which names in the reply are stripped of the tenant prefix.
enum class ReplyRule : uint8_t {
  kNone,
  kKeyList,      // KEYS: array of names, filtered by the client's pattern
  kScan,         // SCAN: [cursor, names], filtered by MATCH
  kFirstIsKey,   // BLPOP, BZPOPMIN, LMPOP, BLMPOP, ZMPOP, BZMPOP: element 0 is a key
  kStreams,      // XREAD/XREADGROUP: [[key, entries] ...] or {key: entries}
  kChannelList,  // PUBSUB CHANNELS/SHARDCHANNELS: names, filtered by pattern
  kNumsub,       // PUBSUB NUMSUB: [ch, n, ...] or {ch: n}
  kShardNumsub,  // PUBSUB SHARDNUMSUB: the same with shard channels (hash-tag rule)
  kPubSub,       // (un)subscribe acks and message/pmessage/smessage frames
  kSingleKey,    // a single bulk key name (RANDOMKEY)
  kConfigGet,    // CONFIG GET: only allow-listed parameters
  // EXEC only: a command keyfence answered while queueing; the position's
  // reply is the text kept with it, not an element of the backend's array.
  kQueuedLocal,
};

// Where the command runs.
enum class Route : uint8_t {
  kShared,       // multiplexed, pipelined backend connection
  kBlocking,     // dedicated connection while it blocks
  kTransaction,  // MULTI/EXEC/DISCARD/WATCH/UNWATCH: dedicated connection
  kPubSub,       // dedicated subscriber connection
};

// Commands keyfence answers or emulates itself.
enum class Local : uint8_t {
  kNone,
  kPing, kEcho, kQuit, kReset, kSelect, kHello, kAuth,
  kClientSetName, kClientGetName, kClientId, kClientInfo, kClientList, kClientReply,
  kClientKill, kClientUnblock,  // on the tenant's own connections only
  kClientTracking, kClientCaching, kClientGetRedir, kClientTrackingInfo,  // namespaced
  kCommand, kCommandCount, kCommandInfo, kCommandDocs, kCommandList, kCommandGetKeys,
  kInfo, kConfigGet, kConfigSet, kDbSize, kFlushDb, kRandomKey, kKeys, kScan,
  kReadOnly, kReadWrite, kFunctionFlush,
  kCluster,  // CLUSTER SLOTS/SHARDS/NODES/INFO/MYID/KEYSLOT single-node view
  kPubsubChannels,  // the last one (commands/registry.cc sizes its index by it)
};

struct Rule {
  Handling handling = Handling::kDeny;
  ArgRule args = ArgRule::kNone;
  ReplyRule reply = ReplyRule::kNone;
  Route route = Route::kShared;
  Local local = Local::kNone;
  bool scripts = false;    // EVAL family: allowed only with limits.allow_scripts
  bool no_db_option = false;  // COPY: the DB option would leave the namespace
  bool block_option = false;  // XREAD/XREADGROUP: BLOCK before STREAMS routes it kBlocking
  // Under the ACL backstop, runs as keyfence's own user: what keyfence fully
  // checks but an ACL cannot express (SORT BY/GET need ~*, COPY's DB option).
  bool as_keyfence = false;
};

class CommandRules {
 public:
  static const CommandRules& Get();
  const Rule& For(uint16_t id) const { return rules_[id]; }
  size_t size() const { return rules_.size(); }

 private:
  CommandRules();
  std::vector<Rule> rules_;
};

}  // namespace keyfence::tenancy
