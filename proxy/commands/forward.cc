// Forwarding: a command rewritten into the namespace and sent to the backend.
// The common case (the GET path) is a shared, multiplexed connection: the
// request is written straight into the backend's buffer. Blocking commands,
// WATCH and subscribers use the client's dedicated connection; inside MULTI
// commands are queued (transactions.cc).
#include "protocol/error_replies.h"
#include "proxy/commands/families.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;
using tenancy::Route;

bool TakeDedicated(CommandContext& ctx, int slot, bool as_keyfence) {
  if (!ctx.ClaimDedicated()) {
    ctx.ReplyError(errors::kTooManyDedicated);
    return false;
  }
  std::string error;
  std::unique_ptr<BackendConn> c = ctx.backend().Dedicated(
      slot, ctx.proto(), &error, as_keyfence ? nullptr : ctx.hint().user);
  if (!c) {
    ctx.ReplyError(error);
    return false;
  }
  DedicatedLink& d = ctx.dedicated();
  d.conn = std::move(c);
  d.slot = slot;
  d.mode = DedicatedLink::Mode::kDedicated;
  return true;
}

namespace {
// The dedicated connection is only there for a blocking command: what follows
// it on the client's stream waits for it (as on a direct connection) and
// then runs wherever it belongs, instead of failing for another slot.
bool HeldForBlocking(CommandContext& ctx) {
  const DedicatedLink& d = ctx.dedicated();
  return d.active() && d.mode == DedicatedLink::Mode::kDedicated && d.blocking && !d.watching &&
         !ctx.tx().open;
}
}  // namespace

bool ForwardDedicated(CommandContext& ctx, const tenancy::Rule& rule, Route route, int slot,
                      bool* sent) {
  DedicatedLink& d = ctx.dedicated();
  if (!d.active()) {
    if (ctx.inflight()) return false;  // the shared connection's replies come first
    if (!TakeDedicated(ctx, slot)) return true;
  } else if (slot != kAnySlot && d.slot != kAnySlot && slot != d.slot) {
    if (HeldForBlocking(ctx)) return false;  // after the blocking command
    ctx.ReplyError(errors::kCrossSlot);
    return true;
  }
  if (slot != kAnySlot && d.slot == kAnySlot) d.slot = slot;
  if (!d.conn->Available()) {
    ctx.ReplyError(d.conn->down_error());
    ctx.DropDedicated();
    return true;
  }
  if (route == Route::kBlocking) {
    d.blocking = true;
    ctx.NoteBlocking(true);
  }
  if (sent != nullptr) *sent = true;
  if (route != Route::kTransaction && !d.watching) {  // may be sent again (dedicated.cc)
    std::string bytes;
    tenancy::WriteRequest(ctx.args(), ctx.refs(), ctx.tenant()->prefix, bytes);
    SendDedicated(ctx, ctx.Defer(rule.reply), std::move(bytes));
    return true;
  }
  tenancy::WriteRequest(ctx.args(), ctx.refs(), ctx.tenant()->prefix, d.conn->out());
  d.conn->MarkDirty();
  d.conn->Push(&ctx.sink(), ctx.Defer(rule.reply));
  return true;
}

namespace {
// The shared path of scripts (no redirects followed: their errors can be
// forged; max_script_ms watched) and of commands run as keyfence's own user.
bool ForwardSpecial(CommandContext& ctx, const protocol::CommandInfo& cmd,
                    const tenancy::Rule& rule, int slot) {
  Backend& backend = ctx.backend();
  uint64_t tag = ctx.Defer(rule.reply);
  tenancy::WriteRequest(ctx.args(), ctx.refs(), ctx.tenant()->prefix,
                        backend.Prepare(slot, ctx.proto(),
                                        rule.as_keyfence ? ctx.own_hint() : ctx.hint()));
  backend.Commit(&ctx.sink(), tag,
                 SendFlags{!rule.scripts, (cmd.flags & protocol::kCmdReadonly) != 0});
  if (rule.scripts && rule.args == tenancy::ArgRule::kKeySpecs) WatchScript(ctx, tag, slot);
  return true;
}
}  // namespace

bool Forward(CommandContext& ctx, const protocol::CommandInfo& cmd, const tenancy::Rule& rule,
             Route route) {
  if (route == Route::kTransaction) return TransactionCommand(ctx, cmd, rule);
  if (route == Route::kPubSub) {
    if (ctx.tx().open || ctx.dedicated().active()) {
      if (!ctx.tx().open && ctx.inflight()) return false;
      ctx.ReplyError(errors::kSubscribeWithState);
      return true;
    }
    return Subscribe(ctx, cmd);
  }
  if (rule.scripts && !ctx.tx().open && GuardScript(ctx, cmd)) return true;
  auto args = ctx.args();
  Backend& backend = ctx.backend();
  bool cross = false;
  int slot = backend.SlotOf(ctx.prefix_crc(), args, ctx.refs(), &cross);
  if (ctx.tx().open) return Queue(ctx, rule, slot, cross);
  DedicatedLink& d = ctx.dedicated();
  if (cross) {
    if (Splittable(cmd) && HeldForBlocking(ctx)) return false;  // after the blocking command
    if (Splittable(cmd) && !d.active()) {
      SplitBySlot(ctx, cmd);
    } else {
      ctx.ReplyError(errors::kCrossSlot);
    }
    return true;
  }
  if (route != Route::kShared || d.active()) return ForwardDedicated(ctx, rule, route, slot);
  if (rule.scripts || rule.as_keyfence) return ForwardSpecial(ctx, cmd, rule, slot);
  // The hot path: written once, straight into the backend's buffer.
  uint64_t tag = ctx.Defer(rule.reply);
  tenancy::WriteRequest(args, ctx.refs(), ctx.tenant()->prefix,
                        backend.Prepare(slot, ctx.proto(), ctx.hint()));
  backend.Commit(&ctx.sink(), tag, SendFlags{true, (cmd.flags & protocol::kCmdReadonly) != 0});
  return true;
}

}  // namespace keyfence::proxy::commands
