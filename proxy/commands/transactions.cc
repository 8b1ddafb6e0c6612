// MULTI / EXEC / DISCARD / WATCH / UNWATCH, one implementation for every
// backend: MULTI is answered here and the commands after it are validated and
// kept (QUEUED); EXEC sends MULTI ... EXEC on the client's dedicated
// connection to the node that owns their single slot (standalone: the
// server). WATCH takes that connection first, so EXEC runs where the keys
// are watched. A command refused while queueing makes EXEC abort, as in Redis.
#include "protocol/error_replies.h"
#include "proxy/commands/families.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;
using tenancy::ReplyRule;

namespace {

void SendUnwatch(DedicatedLink& d, ReplySink* sink, uint64_t tag) {
  d.watching = false;
  protocol::AppendCommand(d.conn->out(), {"UNWATCH"});
  d.conn->Push(sink, tag);
  d.conn->MarkDirty();
}

bool Exec(CommandContext& ctx) {
  proxy::Transaction& tx = ctx.tx();
  DedicatedLink& d = ctx.dedicated();
  tx.open = false;
  if (tx.failed) {
    // Tag 0 is no reply slot: the reply is dropped, and its arrival lets the
    // connection go back to the pool.
    if (d.active() && d.watching) SendUnwatch(d, &ctx.sink(), 0);
    tx.Clear();
    ctx.ReplyError(errors::kExecAbort);
    return true;
  }
  if (tx.pending > 0) {  // a queued namespace walk is still running
    tx.open = true;
    return false;
  }
  if (!d.active()) {
    if (ctx.inflight()) {
      tx.open = true;  // retried once the earlier replies are in
      return false;
    }
    if (!TakeDedicated(ctx, tx.slot, tx.keyfence_only && !tx.scripts)) {
      tx.Clear();
      return true;
    }
  }
  if (!d.conn->Available()) {
    ctx.ReplyError(d.conn->down_error());
    ctx.DropDedicated();
    tx.Clear();
    return true;
  }
  std::string& o = d.conn->out();
  protocol::AppendCommand(o, {"MULTI"});
  d.conn->Push(nullptr, 0);
  o.append(tx.bytes);
  for (size_t i = 0; i < tx.count; ++i) d.conn->Push(nullptr, 0);  // +QUEUED
  protocol::AppendCommand(o, {"EXEC"});
  d.conn->MarkDirty();
  d.watching = false;
  uint64_t tag = ctx.Defer(ReplyRule::kNone);
  ctx.SetExecRules(tag, std::move(tx.rules));
  d.conn->Push(&ctx.sink(), tag);
  tx.Clear();
  return true;
}

}  // namespace

bool Queue(CommandContext& ctx, const tenancy::Rule& rule, int slot, bool cross) {
  proxy::Transaction& tx = ctx.tx();
  if (cross || (slot != kAnySlot && tx.slot != kAnySlot && slot != tx.slot)) {
    tx.failed = true;
    ctx.ReplyError(errors::kCrossSlot);
    return true;
  }
  if (slot != kAnySlot) tx.slot = slot;
  tenancy::WriteRequest(ctx.args(), ctx.refs(), ctx.tenant()->prefix, tx.bytes);
  ++tx.count;
  tx.keyfence_only |= rule.as_keyfence;
  tx.scripts |= rule.scripts;
  tx.rules.emplace_back(rule.reply, std::string());
  ctx.ReplySimple("QUEUED");
  return true;
}

bool QueuedInMulti(tenancy::Local what) {
  using tenancy::Local;
  return what != Local::kQuit && what != Local::kReset && what != Local::kClientReply;
}

bool QueueError(CommandContext& ctx, std::string_view error) {
  proxy::Transaction& tx = ctx.tx();
  if (tx.rules.size() >= Transaction::kMaxQueued) {
    tx.failed = true;
    ctx.ReplyError(errors::kTooManyQueued);
    return true;
  }
  std::string reply;
  protocol::AppendError(reply, error);
  tx.rules.emplace_back(ReplyRule::kQueuedLocal, std::move(reply));
  ctx.ReplySimple("QUEUED");
  return true;
}

bool QueueLocal(CommandContext& ctx, const protocol::CommandInfo& cmd, const tenancy::Rule& rule,
                Handler handler) {
  using tenancy::Local;
  proxy::Transaction& tx = ctx.tx();
  if (rule.local == Local::kFlushDb) {
    // A namespace walk cannot be made atomic with the queued writes around it.
    tx.failed = true;
    ctx.ReplyError(errors::kFlushInMulti);
    return true;
  }
  // Queued commands run when queued: those that act on the connection or on
  // other connections would act even if the transaction is discarded.
  if (rule.local == Local::kAuth || rule.local == Local::kHello ||
      rule.local == Local::kClientKill || rule.local == Local::kClientUnblock ||
      rule.local == Local::kClientTracking || rule.local == Local::kConfigSet) {
    tx.failed = true;
    ctx.ReplyError(errors::NotInMulti(cmd.name));
    return true;
  }
  if (tx.rules.size() >= Transaction::kMaxQueued) {
    tx.failed = true;
    ctx.ReplyError(errors::kTooManyQueued);
    return true;
  }
  const size_t rules = tx.rules.size();
  const size_t captures = tx.captures.size();
  const bool failed = tx.failed;
  std::string reply;
  ctx.BeginCapture(&reply);
  const bool done = handler(ctx, cmd, rule);
  ctx.EndCapture();
  tx.failed = failed;  // the handler's own error is its reply in EXEC's array
  if (!done) return false;  // comes again (a delay): nothing was kept
  if (tx.captures.size() > captures) {  // its reply comes later (a namespace walk)
    ctx.ReplySimple("QUEUED");
    return true;
  }
  if (tx.rules.size() > rules) {  // queued as a backend command (KEYS P*, CONFIG GET)
    ctx.BeginReply().append(reply);  // its QUEUED
    ctx.EndReply();
    return true;
  }
  if (reply.empty()) protocol::AppendSimple(reply, "OK");  // (every handler answers)
  tx.rules.emplace_back(ReplyRule::kQueuedLocal, std::move(reply));
  ctx.ReplySimple("QUEUED");
  return true;
}

bool TransactionCommand(CommandContext& ctx, const protocol::CommandInfo& cmd,
                        const tenancy::Rule& rule) {
  proxy::Transaction& tx = ctx.tx();
  DedicatedLink& d = ctx.dedicated();
  const std::string_view name = cmd.name;
  if (name == "multi") {
    if (tx.open) {
      ctx.ReplyError(errors::kMultiNested);
      return true;
    }
    tx.Clear();
    tx.open = true;
    tx.slot = d.active() ? d.slot : kAnySlot;
    ctx.ReplySimple("OK");
    return true;
  }
  if (name == "exec" || name == "discard") {
    if (!tx.open) {
      ctx.ReplyError(name == "exec" ? errors::kExecWithoutMulti : errors::kDiscardWithoutMulti);
      return true;
    }
    if (name == "exec") return Exec(ctx);
    tx.Clear();
    if (d.active() && d.watching) {  // DISCARD also forgets WATCHed keys
      SendUnwatch(d, &ctx.sink(), ctx.Defer(ReplyRule::kNone));
    } else {
      ctx.ReplySimple("OK");
    }
    return true;
  }
  bool cross = false;
  int slot = ctx.backend().SlotOf(ctx.prefix_crc(), ctx.args(), ctx.refs(), &cross);
  if (tx.open) {
    if (name == "watch") {
      ctx.ReplyError(errors::kWatchInMulti);
      return true;
    }
    return Queue(ctx, rule, slot, cross);  // UNWATCH inside MULTI is queued
  }
  if (name == "unwatch" && !d.active()) {
    ctx.ReplySimple("OK");
    return true;
  }
  if (cross) {
    ctx.ReplyError(errors::kCrossSlot);
    return true;
  }
  bool sent = false;
  if (!ForwardDedicated(ctx, rule, tenancy::Route::kTransaction, slot, &sent)) return false;
  if (sent) d.watching = name == "watch";
  return true;
}

}  // namespace keyfence::proxy::commands
