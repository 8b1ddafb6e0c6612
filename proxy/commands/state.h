// Per-connection state that command handlers read and change, as plain data
// (DESIGN/STYLE: a session's mode is one enum and small state objects, not a
// dozen bools). Owned by the session; worker-local.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "proxy/backend/backend.h"
#include "tenancy/command_rules.h"

namespace keyfence::proxy {

// The reply rules of the commands of a transaction, in order (EXEC's array).
using ExecRules = std::vector<std::pair<tenancy::ReplyRule, std::string>>;

enum class ReplyMode : uint8_t { kOn, kOff, kSkip };  // CLIENT REPLY

struct ConnState {
  int proto = 2;
  std::string name;  // CLIENT SETNAME
  std::string lib_name, lib_ver;
  ReplyMode reply_mode = ReplyMode::kOn;
  // The last script sent (limits.max_script_ms watches it).
  uint64_t script_tag = 0;
  int script_slot = -1;
  bool discard_current = false;  // CLIENT REPLY OFF/SKIP applies to this request
};

// A request on the dedicated connection that may have to be sent again
// (its slot moved while a blocking command waited on it).
struct DedicatedRequest {
  uint64_t tag = 0;
  std::string bytes;
  uint64_t first_retry_ns = 0;  // budget: backend.retry_budget_ms from here
  int hops = 0;
};

// The client's own backend connection, while it needs one (blocking
// commands, WATCH, EXEC). Subscriptions use PubSubState instead.
struct DedicatedLink {
  enum class Mode : uint8_t { kNone, kDedicated };
  std::unique_ptr<BackendConn> conn;
  Mode mode = Mode::kNone;
  int slot = kAnySlot;      // the hash slot it was taken for (cluster: the node)
  bool blocking = false;    // a blocking command was sent on it
  bool watching = false;    // WATCHed keys live on it
  // Blocking commands (no WATCH, no MULTI): the replies come through `sink`,
  // which sends a request again when a redirect answers it (dedicated.cc).
  std::unique_ptr<ReplySink> sink;
  std::deque<DedicatedRequest> sent;  // on conn, in order
  std::deque<DedicatedRequest> held;  // redirected: to be sent again
  uint32_t retry_ms = 0;
  bool wake_armed = false;
  bool active() const { return conn != nullptr; }
};

// One client command's reply: its acks, made when the command was sent
// (with Redis's counts, whichever connection answers first); the reply slot
// completes when every connection has acked its part.
struct AckWait {
  uint64_t tag = 0;
  size_t remaining = 0;  // backend acks still due
  std::string data;      // the client's acks
  std::string error;     // a part failed: the reply is this error instead
};

// A part of a subscription command sent on one connection.
struct LinkAcks {
  // The client command's reply slot; null for keyfence's own resubscribe,
  // whose acks the client never sees.
  std::shared_ptr<AckWait> wait;
  size_t count = 0;     // acks still due on this connection
  int slot = kAnySlot;  // shard parts: where it was routed (a redirect re-routes it)
  bool shard = false;   // SSUBSCRIBE / SUNSUBSCRIBE (else the classic link's)
  bool subscribe = false;
  std::vector<std::string> names;  // shard subscribes: the client's channel names
  std::string bytes;  // the request, for a resend
  int resends = 0;
};

// A subscriber connection to one node: classic channels and patterns (on the
// classic one), and the shard channels whose slots that node serves.
struct SubLink {
  std::unique_ptr<BackendConn> conn;
  std::unique_ptr<UnsolicitedSink> sink;  // routes its frames back with this link
  std::deque<LinkAcks> acks;  // FIFO: acks this connection still owes
  absl::flat_hash_set<std::string> shard;  // shard channels subscribed here (client names)
  // Cluster: this master's link holds the client's keyspace-notification
  // channels and patterns (a node emits only its own keys' events).
  bool keyspace = false;
};

// The client's subscriptions: a subscriber connection per node it needs
// (Redis Cluster serves a shard channel only on its slot's node), and what
// it is subscribed to, so that a lost connection or a slot that moved is
// resubscribed where it lives now without the client noticing.
struct PubSubState {
  std::vector<std::unique_ptr<SubLink>> links;
  SubLink* classic = nullptr;  // the link of SUBSCRIBE/PSUBSCRIBE
  // Client names, as asked for (updated when a command is sent): the acks'
  // counts, and what a new connection subscribes again.
  absl::flat_hash_set<std::string> channels, patterns, shards;
  // Recovery: shard channels without a connection, command parts waiting
  // for one, the classic set to subscribe again; since when (0: nothing lost).
  absl::flat_hash_set<std::string> orphans;
  std::deque<LinkAcks> parked;
  bool classic_lost = false;
  bool keyspace_lost = false;  // cluster: a master's keyspace subscriptions to restore
  uint64_t lost_since_ns = 0;
  uint32_t retry_ms = 0;
  bool wake_armed = false;
  uint32_t classic_tries = 0;  // spreads classic reconnects over the masters
  // Subscribed (or restoring, or a command waiting to be sent).
  bool wants() const {
    return !channels.empty() || !patterns.empty() || !shards.empty() || !parked.empty();
  }
  bool active() const { return !links.empty() || wants(); }
  int64_t classic_count() const { return static_cast<int64_t>(channels.size() + patterns.size()); }
  int64_t shard_count() const { return static_cast<int64_t>(shards.size()); }
};

// MULTI ... EXEC: keyfence answers MULTI and keeps the rewritten commands;
// EXEC sends MULTI ... EXEC to the node owning their (single) slot. Commands
// keyfence answers itself (PING, INFO, CLIENT ..., DBSIZE) are QUEUED too:
// they run when queued, their reply is kept at its position (a
// ReplyRule::kQueuedLocal entry of `rules`) and EXEC's array carries it there.
struct Transaction {
  // A queued local command whose reply comes later (a namespace walk):
  // reply slot tags with kCaptureBit name the entry and the transaction.
  static constexpr uint64_t kCaptureBit = uint64_t{1} << 63;
  // Commands keyfence answers, queued in one transaction (capture tags keep
  // the index in 16 bits; each may be a namespace walk).
  static constexpr size_t kMaxQueued = 4096;
  struct Capture {
    size_t index = 0;  // in rules
    tenancy::ReplyRule rule = tenancy::ReplyRule::kNone;
    std::string pattern;
  };
  bool open = false;   // after MULTI
  bool failed = false; // a queued command was refused: EXEC aborts
  int slot = kAnySlot;
  std::string bytes;   // the queued commands
  size_t count = 0;    // of them (the backend's EXEC array)
  ExecRules rules;     // every position of the client's EXEC array
  bool keyfence_only = false;  // a queued command runs as keyfence (KEYS, SORT BY, COPY)
  bool scripts = false;        // a queued script: the tenant's user is a must
  std::vector<Capture> captures;  // by tag & 0xffff
  size_t pending = 0;             // captures still without their reply
  uint32_t generation = 0;        // a late reply of an earlier transaction is dropped
  uint64_t CaptureTag(size_t capture) const {
    return kCaptureBit | (uint64_t{generation} << 16) | capture;
  }
  void Clear() {
    open = failed = keyfence_only = scripts = false;
    slot = kAnySlot;
    bytes.clear();
    count = 0;
    rules.clear();
    captures.clear();
    pending = 0;
    ++generation;
  }
};

}  // namespace keyfence::proxy
