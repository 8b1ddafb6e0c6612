// Replies on the client's dedicated connection while it serves blocking
// commands. In a cluster the slot of a waiting BLPOP can move: the old node
// answers MOVED when the slot leaves it, ASK or TRYAGAIN while it migrates,
// CLUSTERDOWN during a failover. The request is then sent again where the
// slot lives (a new dedicated connection if the node changed), MOVED at once
// and the others after a backoff (20 ms doubling to 200 ms), for as long as
// backend.retry_budget_ms allows; the client never sees the redirect.
// A resent blocking command starts its timeout again. Requests under WATCH or
// MULTI are not resent (their state lives on the old node). Worker-local.
#include <algorithm>

#include "protocol/error_replies.h"
#include "proxy/commands/families.h"
#include "proxy/net/loop.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;

namespace {

constexpr int kMaxHops = 50;
constexpr uint32_t kRetryFirstMs = 20;
constexpr uint32_t kRetryMaxMs = 200;

enum class Redirect : uint8_t { kNone, kMoved, kLater };

Redirect Classify(std::string_view frame) {
  if (frame.size() < 2 || frame[0] != '-') return Redirect::kNone;
  const std::string_view e = frame.substr(1);
  if (e.starts_with("MOVED ")) return Redirect::kMoved;
  if (e.starts_with("ASK ") || e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN")) {
    return Redirect::kLater;
  }
  return Redirect::kNone;
}

void Fail(CommandContext& ctx, const DedicatedRequest& r, std::string_view error) {
  ctx.sink().OnReply(r.tag, errors::Frame(error));
}

void FailHeld(CommandContext& ctx, std::string_view error) {
  std::deque<DedicatedRequest> held = std::move(ctx.dedicated().held);
  ctx.dedicated().held.clear();
  for (const DedicatedRequest& r : held) Fail(ctx, r, error);
}

bool SameNode(const config::Endpoint& a, const config::Endpoint& b) {
  return a.host == b.host && a.port == b.port;
}

// Sends the held requests again on a connection to the slot's node now.
void Resend(CommandContext& ctx) {
  DedicatedLink& d = ctx.dedicated();
  config::Endpoint ep;
  const bool known = ctx.backend().NodeFor(d.slot, &ep);
  if (!known || !d.conn || !d.conn->connected() || !SameNode(d.conn->endpoint(), ep)) {
    std::string error;
    std::unique_ptr<BackendConn> c = ctx.backend().Dedicated(d.slot, ctx.proto(), &error,
                                                             ctx.hint().user);
    if (!c) return FailHeld(ctx, error);
    ctx.Retire(std::move(d.conn));
    d.conn = std::move(c);
  }
  if (!d.conn->Available()) return FailHeld(ctx, d.conn->down_error());
  for (DedicatedRequest& r : d.held) {
    d.conn->out().append(r.bytes);
    d.conn->Push(d.sink.get(), r.tag);
    d.sent.push_back(std::move(r));
  }
  d.held.clear();
  d.conn->MarkDirty();
}

void ScheduleResend(CommandContext& ctx);

void WakeResend(CommandContext& ctx) {
  DedicatedLink& d = ctx.dedicated();
  d.wake_armed = false;
  if (d.held.empty()) return;
  if (d.conn && d.conn->pending() > 0) return ScheduleResend(ctx);  // earlier replies first
  Resend(ctx);
}

void ScheduleResend(CommandContext& ctx) {
  DedicatedLink& d = ctx.dedicated();
  if (d.wake_armed) return;
  d.retry_ms = d.retry_ms == 0 ? kRetryFirstMs : std::min(d.retry_ms * 2, kRetryMaxMs);
  d.wake_armed = true;
  ctx.WakeAfter(d.retry_ms, &WakeResend);
}

class DedicatedSink final : public ReplySink {
 public:
  explicit DedicatedSink(CommandContext& ctx) : ctx_(ctx) {}

  void OnReply(uint64_t tag, std::string_view frame) override {
    DedicatedLink& d = ctx_.dedicated();
    if (d.sent.empty() || d.sent.front().tag != tag) return ctx_.sink().OnReply(tag, frame);
    DedicatedRequest r = std::move(d.sent.front());
    d.sent.pop_front();
    const Redirect kind = Classify(frame);
    if (kind == Redirect::kNone) {
      d.retry_ms = 0;
      if (d.sent.empty() && d.held.empty()) ctx_.NoteBlocking(false);  // served: no longer blocked
      return ctx_.sink().OnReply(tag, frame);
    }
    const uint64_t now = Loop::NowNs();
    if (r.first_retry_ns == 0) r.first_retry_ns = now;
    const uint64_t budget = uint64_t{ctx_.snapshot().backend.retry_budget_ms} * 1000000;
    if (++r.hops > kMaxHops || now - r.first_retry_ns > budget) {
      const bool redirect = frame.substr(1).starts_with("MOVED") || frame.substr(1).starts_with("ASK");
      return Fail(ctx_, r, redirect ? errors::kTooManyRetries : frame.substr(1, frame.size() - 3));
    }
    ctx_.backend().NoteRedirect(frame);  // MOVED: the slot table follows
    d.held.push_back(std::move(r));
    if (kind == Redirect::kMoved && d.conn->pending() == 0) return Resend(ctx_);
    ScheduleResend(ctx_);
  }

 private:
  CommandContext& ctx_;
};

}  // namespace

void SendDedicated(CommandContext& ctx, uint64_t tag, std::string bytes) {
  DedicatedLink& d = ctx.dedicated();
  if (!d.sink) d.sink = std::make_unique<DedicatedSink>(ctx);
  d.conn->out().append(bytes);
  d.conn->MarkDirty();
  d.conn->Push(d.sink.get(), tag);
  d.sent.push_back({tag, std::move(bytes)});
}

}  // namespace keyfence::proxy::commands
