// What a command handler can do: the narrow interface between commands and
// the client session (Envoy redis_proxy's SplitCallbacks, in spirit). A
// handler reads the request, answers in order (now, or later through a
// deferred reply slot), and reaches the tenant, the connection state, the
// backend and the client's dedicated connection; nothing else of the session.
// Worker-local.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "protocol/command_table.h"
#include "protocol/writer.h"
#include "proxy/backend/backend.h"
#include "proxy/base/metrics.h"
#include "proxy/base/tenant_state.h"
#include "proxy/commands/state.h"
#include "proxy/commands/tracking.h"
#include "proxy/net/client_stream.h"
#include "tenancy/command_rules.h"
#include "tenancy/key_finder.h"

namespace keyfence::proxy {

// A multi-step operation a handler starts (fan-out, namespace scan); owned
// by the session until it calls Finished().
class AsyncOp {
 public:
  virtual ~AsyncOp() = default;
};

// What the session tells about itself (CLIENT INFO, INFO).
struct SessionInfo {
  uint64_t id = 0;
  PeerInfo peer;
  uint64_t created_ns = 0;
  uint64_t last_cmd_ns = 0;
  uint64_t commands = 0;
  uint16_t cmd_id = 0;  // the command in progress (or the last one)
};

enum class BindResult : uint8_t { kOk, kStateHeld, kTooManyConnections };

class CommandContext {
 public:
  virtual ~CommandContext() = default;

  // The request: args()[0] is the command name; refs() its names (forwarded
  // commands only). Valid during the handler call.
  std::span<const std::string_view> args() const { return args_; }
  const tenancy::NameRefs& refs() const { return refs_; }

  // Replies, in request order. BeginReply() gives the buffer to append one
  // whole reply to; EndReply() closes it.
  virtual std::string& BeginReply() = 0;
  virtual void EndReply() = 0;
  // A reply slot filled later: its tag is what sink() receives the reply
  // with (or what Complete() takes). `pattern` filters names for list
  // replies. ("slot" alone means a hash slot everywhere else.)
  virtual uint64_t Defer(tenancy::ReplyRule rule, std::string_view pattern = {}) = 0;
  virtual void SetExecRules(uint64_t tag, ExecRules rules) = 0;
  virtual void Complete(uint64_t tag, std::string_view reply) = 0;
  ReplySink& sink() { return *sink_; }
  // A push (pub/sub message or ack) for the client: after every reply owed
  // now, never discarded by CLIENT REPLY. Append one frame, then EndReply().
  virtual std::string& BeginPush() = 0;
  // Sends `error` after the replies owed, then closes the connection.
  virtual void CloseWithError(std::string_view error) = 0;
  // Deletes a backend connection once its handlers are done.
  virtual void Retire(std::unique_ptr<BackendConn> conn) = 0;
  // A refused request: counted under `reason`, answered with `error`.
  virtual void Reject(RejectReason reason, std::string_view error) = 0;
  // Counts this client against the tenant's limits.max_dedicated_connections
  // before it takes its first dedicated or subscriber connection; false (and
  // nothing counted) at the cap. Released once it holds none.
  virtual bool ClaimDedicated() = 0;
  // Counts a refusal under `reason` without answering (the answer is Redis's).
  virtual void CountRejected(RejectReason reason) = 0;
  // Replies still owed to this client (a barrier waits for none).
  virtual bool inflight() const = 0;

  // The connection.
  virtual const config::Tenant* tenant() const = 0;
  // The tenant's process-wide state (scripts, dedicated count); null before AUTH.
  virtual TenantShared* tenant_shared() = 0;
  // Runs `visit` on every worker's thread over that worker's clients (of every
  // tenant: filter by tenant()); `done` gets the answers, in worker order, on
  // this client's thread, unless it closed meanwhile. Cold paths only (CLIENT
  // LIST/KILL/UNBLOCK). `visit` runs concurrently on several threads: it may
  // capture only values.
  using PeerVisit = std::function<std::string(std::span<CommandContext* const>)>;
  using PeersDone = std::function<void(CommandContext&, std::vector<std::string>&)>;
  virtual void AskPeers(PeerVisit visit, PeersDone done) = 0;
  // CLIENT KILL: closes this connection now (its replies still owed are dropped).
  virtual void Kill() = 0;
  // CLIENT UNBLOCK: answers a blocking command that waits (nil, or -UNBLOCKED
  // with `error`) and drops its dedicated connection; false if none waits.
  virtual bool Unblock(bool error) = 0;
  // The tenant's counters summed over every worker (INFO; a cold path).
  virtual TenantTotals tenant_totals() = 0;
  // This client waits in a blocking command (on) or no longer (INFO
  // blocked_clients, counted per tenant across workers).
  virtual void NoteBlocking(bool on) = 0;
  // A reply slot from Defer() still waits for its reply.
  virtual bool Owed(uint64_t tag) = 0;
  virtual uint16_t prefix_crc() const = 0;
  // Client-side caching: this client's state (null: not tracking), and the worker's hub.
  std::unique_ptr<TrackingState>& tracking() { return tracking_; }
  virtual TrackingHub& tracking_hub() = 0;
  // Runs fn on the thread of client `id` with it (null: gone), now if it is
  // on this worker. fn may capture only values.
  virtual void PostToClient(uint64_t id, std::function<void(CommandContext*)> fn) = 0;
  ConnState& state() { return state_; }
  DedicatedLink& dedicated() { return dedicated_; }
  PubSubState& pubsub() { return pubsub_; }
  Transaction& tx() { return tx_; }
  virtual const SessionInfo& info() = 0;
  virtual const config::Snapshot& snapshot() const = 0;
  virtual const config::Listener& listener() const = 0;

  // The backend; hint() spreads this client over connections_per_node and
  // names the tenant's backend ACL user (backend.acl: per_tenant; else null).
  // own_hint(): keyfence's own user, for its emulations (SCAN walks and the
  // like, which a tenant's user may not run) and subscriber connections
  // (Redis ACLs take a PSUBSCRIBE pattern only if it equals an allowed one).
  virtual Backend& backend() = 0;
  BackendHint hint() const { return {hint_, backend_user_}; }
  BackendHint own_hint() const { return {hint_, nullptr}; }
  // Gives the dedicated connection back (pooled if clean) or drops it.
  virtual void DropDedicated() = 0;

  // Async operations owned by the session.
  virtual void Adopt(std::unique_ptr<AsyncOp> op) = 0;
  virtual void Finished(AsyncOp* op) = 0;
  // Calls fn(*this) once, `ms` from now, unless the connection closed first.
  virtual void WakeAfter(uint32_t ms, void (*fn)(CommandContext&)) = 0;

  // Tenant and lifecycle (handshake commands).
  // Failed AUTH is throttled per client address and user name: the first
  // failures go free, then each next attempt waits (50 ms doubling to 1 s),
  // and after kAuthMaxFailures in a minute that pair is refused. Returns the
  // wait in ns, 0 to go on, or UINT64_MAX when refused; remembers `user` for
  // AuthFailed().
  virtual uint64_t AuthWait(std::string_view user) = 0;
  virtual void AuthFailed() = 0;
  // Pauses this client's input for `ns`, then hands the same request again
  // (the handler returns false).
  virtual void DelayRequest(uint64_t ns) = 0;
  virtual BindResult Bind(const config::Tenant* t) = 0;
  virtual void ResetConnection() = 0;  // RESET: back to a fresh connection
  virtual void CloseAfterReply() = 0;  // QUIT

  // Helpers over BeginReply()/EndReply().
  // INFO errorstats / failed_calls of keyfence's own error replies.
  virtual void NoteErrorReply(std::string_view error) = 0;
  void ReplyError(std::string_view e) {
    NoteErrorReply(e);
    protocol::AppendError(BeginReply(), e);
    EndReply();
  }
  void ReplySimple(std::string_view s) {
    protocol::AppendSimple(BeginReply(), s);
    EndReply();
  }
  void ReplyInteger(int64_t v) {
    protocol::AppendInteger(BeginReply(), v);
    EndReply();
  }
  void ReplyBulk(std::string_view s) {
    protocol::AppendBulk(BeginReply(), s);
    EndReply();
  }
  void ReplyNull() {
    protocol::AppendNull(BeginReply(), state().proto);
    EndReply();
  }
  int proto() const { return state_.proto; }

  // A local command queued in MULTI: while capturing, the handler's reply
  // goes to *into (the client gets nothing), and Defer() makes a
  // Transaction::Capture entry whose tag routes the later reply there.
  void BeginCapture(std::string* into) { capture_ = into; }
  void EndCapture() { capture_ = nullptr; }

 protected:
  std::string* capture_ = nullptr;
  // Plain data the request path reads without a virtual call; the session
  // fills it (args_/refs_ per request).
  std::span<const std::string_view> args_;
  tenancy::NameRefs refs_;
  ConnState state_;
  DedicatedLink dedicated_;
  PubSubState pubsub_;
  Transaction tx_;
  std::unique_ptr<TrackingState> tracking_;
  uint64_t hint_ = 0;
  const BackendUser* backend_user_ = nullptr;
  ReplySink* sink_ = nullptr;
};

// A command handler. Returns false for a barrier: the request is retried
// once no reply is owed to the client (e.g. switching to a dedicated
// connection waits for the shared one's replies).
using Handler = bool (*)(CommandContext& ctx, const protocol::CommandInfo& cmd,
                         const tenancy::Rule& rule);

}  // namespace keyfence::proxy
