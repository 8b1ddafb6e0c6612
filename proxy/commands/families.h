// Every command handler, by family. registry.cc binds them to the command
// rules (tenancy::Local / Route); each family lives in its own file.
#pragma once

#include "proxy/commands/context.h"

namespace keyfence::proxy::commands {

// handshake.cc: connection and handshake.
bool Ping(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Echo(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Quit(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Reset(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Select(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Hello(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Auth(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);

// client.cc: CLIENT subcommands.
bool Client(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
// CLIENT SETINFO / NO-TOUCH (Redis 7.2, not in the 7.0 table).
bool ClientExtension(CommandContext&);

// introspection.cc: INFO, CONFIG GET, COMMAND, CLUSTER, no-ops.
bool Info(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
// CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO (tracking.cc).
bool ClientTracking(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool ClientCaching(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool ClientGetRedir(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool ClientTrackingInfo(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool ConfigGet(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool ConfigSet(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool CommandDocs(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool CommandGetKeys(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Cluster(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Ok(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool FunctionFlush(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
// FUNCTION/SCRIPT FLUSH take nothing or SYNC/ASYNC.
bool FlushOptionOk(std::span<const std::string_view> args);

// keyspace.cc: emulations over the tenant's namespace.
bool Keys(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool Scan(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
bool WalkNamespace(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);

// pubsub.cc
bool PubsubChannels(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
// (S|P)(UN)SUBSCRIBE on the client's subscriber connections (subscriptions.cc).
bool Subscribe(CommandContext& ctx, const protocol::CommandInfo& cmd);
// PING on a RESP2 subscribed connection: answered in pub/sub form by a node.
void PingSubscribed(CommandContext& ctx);
// Drops every subscriber connection (RESET, close, nothing subscribed).
void DropSubscriptions(CommandContext& ctx);

// transactions.cc: MULTI, EXEC, DISCARD, WATCH, UNWATCH (one implementation
// for every backend) and queueing inside MULTI.
bool TransactionCommand(CommandContext&, const protocol::CommandInfo&, const tenancy::Rule&);
// A command inside MULTI: validated and kept for EXEC.
bool Queue(CommandContext& ctx, const tenancy::Rule& rule, int slot, bool cross);
// Inside MULTI: whether local command `what` is queued (all but QUIT, RESET and
// CLIENT REPLY, which act at once as in Redis), and queueing it: it runs now,
// its reply is kept for EXEC's array and the client gets QUEUED.
bool QueuedInMulti(tenancy::Local what);
// Inside MULTI: an error Redis would give when the command runs, kept for
// EXEC's array (the client gets QUEUED).
bool QueueError(CommandContext& ctx, std::string_view error);
bool QueueLocal(CommandContext& ctx, const protocol::CommandInfo& cmd, const tenancy::Rule& rule,
                Handler handler);

// forward.cc: a command forwarded to the backend (shared, blocking, pub/sub).
bool Forward(CommandContext& ctx, const protocol::CommandInfo& cmd, const tenancy::Rule& rule,
             tenancy::Route route);
// Sends the request on the client's dedicated connection for `slot`, taking
// one first if needed (false: a barrier).
bool ForwardDedicated(CommandContext& ctx, const tenancy::Rule& rule, tenancy::Route route,
                      int slot, bool* sent = nullptr);
// Takes a dedicated connection for `slot`; false (and an error reply) if none.
// as_keyfence: as keyfence's own user under the ACL backstop (a transaction
// of commands keyfence checked fully, such as KEYS, and no script).
bool TakeDedicated(CommandContext& ctx, int slot, bool as_keyfence = false);
// scripts.cc: the tenant's script namespace (true: answered here) and the
// max_script_ms watch of a script just sent.
bool GuardScript(CommandContext& ctx, const protocol::CommandInfo& cmd);
void WatchScript(CommandContext& ctx, uint64_t tag, int slot);

// dedicated.cc: sends a request on the dedicated connection, to be sent
// again if the slot moves under it (blocking commands, not WATCH/MULTI).
void SendDedicated(CommandContext& ctx, uint64_t tag, std::string bytes);

// multikey.cc: MGET/MSET/DEL/UNLINK/EXISTS/TOUCH split by slot and merged.
bool Splittable(const protocol::CommandInfo& cmd);
void SplitBySlot(CommandContext& ctx, const protocol::CommandInfo& cmd);

}  // namespace keyfence::proxy::commands
