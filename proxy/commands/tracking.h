// Client-side caching, namespaced (CLIENT TRACKING, CACHING, GETREDIR,
// TRACKINGINFO). A tracking client keeps using the shared connections; what
// it costs is worker-wide, not per client:
//
//   TrackingHub (one per worker) holds one RESP3 connection per master, as
//   keyfence's own user, in CLIENT TRACKING ON BCAST mode with one PREFIX per
//   tenant that has tracking clients on the worker. Every change to such a
//   tenant's keys arrives there as an `invalidate` push.
//   TrackingState (one per tracking client) is Redis's per-client state,
//   emulated: the keys it read (default, OPTIN/OPTOUT modes: remembered when
//   the read is sent, so an invalidation that races the read's reply still
//   reaches the client, after that reply), its BCAST prefixes (client-side;
//   none: the whole namespace), NOLOOP's own writes not yet echoed, and the
//   REDIRECT target (another connection of the same tenant, on any worker).
//
// Invalidations are delivered behind the replies owed at that moment (a push
// through BeginPush), with client-side names; a key reaches only clients of
// the tenant whose prefix it carries. A lost hub connection, or one opened
// again, sends every tracking client of the worker a flush (null)
// invalidation: writes may have been missed. Bounds: kMaxTrackedKeys keys
// remembered per client (past it one is invalidated per new key, as Redis's
// tracking-table-max-keys does), clients bounded by max_connections.
// Worker-local.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include "protocol/command_table.h"
#include "proxy/backend/backend.h"
#include "proxy/net/loop.h"

namespace keyfence::proxy {

class CommandContext;

struct TrackingState {
  static constexpr size_t kMaxTrackedKeys = 100000;
  bool bcast = false, optin = false, optout = false, noloop = false;
  bool caching_armed = false;  // CLIENT CACHING yes|no: for the next command
  bool caching_spent = false;  // that next command came (cleared by the one after)
  uint64_t redirect = 0;       // keyfence client id; 0: this connection
  std::string tenant_prefix;   // the namespace it tracks
  std::vector<std::string> prefixes;      // BCAST, client-side
  absl::flat_hash_set<std::string> keys;  // read, client-side (not BCAST)
  // NOLOOP: own writes whose invalidation has not come back yet, with the
  // time they stop counting (a write that changed nothing sends none).
  absl::flat_hash_map<std::string, std::pair<uint32_t, uint64_t>> own;
};

class TrackingHub {
 public:
  explicit TrackingHub(Loop& loop);
  ~TrackingHub();
  TrackingHub(const TrackingHub&) = delete;
  TrackingHub& operator=(const TrackingHub&) = delete;

  // A client of `prefix`'s tenant starts or stops tracking.
  void Join(CommandContext& c, const std::string& prefix);
  void Leave(CommandContext& c, const std::string& prefix);
  // Opens what is missing: a connection to every master, the tenant's PREFIX
  // on each. Called when a client starts tracking and on its reads. With
  // `waiter`: a PING follows on every connection (its reply says the PREFIX
  // is in force there); returns how many replies `waiter` will get.
  size_t Ensure(Backend& backend, const std::string& prefix, ReplySink* waiter = nullptr);
  // `waiter` is going away: its PING replies are dropped.
  void Forget(ReplySink* waiter);

 private:
  struct Link;
  void Track(Link& link, const std::string& prefix);  // its PREFIX on `link`, once
  void OnPush(std::string_view frame);
  void Lost(Link* link);
  void FlushAll();
  void Invalidate(std::string_view backend_key);

  Loop& loop_;
  std::vector<std::unique_ptr<Link>> links_;
  absl::flat_hash_map<std::string, std::vector<CommandContext*>> tenants_;  // by prefix
  uint64_t retry_after_ns_ = 0;  // no new connection before (after a failure)
  // Masters whose connection was lost or never made: when one opens, writes
  // may have been missed, so the tracking clients flush.
  absl::flat_hash_set<std::string> gaps_;
  bool linked_ = false;  // a first set of connections was made
};

namespace commands {

// The request being dispatched, for a tracking client: remembers the keys
// of a read, notes a NOLOOP write, and spends CLIENT CACHING's flag.
void NoteTrackedCommand(CommandContext& ctx, const protocol::CommandInfo& cmd, bool forwarded);
// Stops tracking (CLIENT TRACKING OFF, RESET, the connection's end).
void StopTracking(CommandContext& ctx);
// Delivers one invalidation (a client-side key; null: flush) to `ctx` or its
// redirect target.
void SendInvalidation(CommandContext& ctx, const std::string* key);

}  // namespace commands
}  // namespace keyfence::proxy
