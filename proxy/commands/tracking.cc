// CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO, the per-request
// notes of a tracking client, and the delivery of its invalidations
// (tracking.h).
#include "proxy/commands/tracking.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "protocol/error_replies.h"
#include "protocol/writer.h"
#include "proxy/base/text.h"
#include "proxy/commands/context.h"
#include "proxy/commands/families.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;

namespace {

constexpr uint64_t kNoloopWindowNs = 1'000'000'000;  // an own write's echo is expected within
constexpr size_t kNoloopSweepAt = 4096;  // own writes remembered before expired ones go
constexpr std::string_view kInvalidateChannel = "__redis__:invalidate";

// The invalidation frame as `proto` (and, for RESP2, a pub/sub message) wants it.
std::string InvalidationFrame(int proto, const std::string* key) {
  std::string f;
  if (proto >= 3) {
    protocol::AppendPushHeader(f, 2, 3);
    protocol::AppendBulk(f, "invalidate");
  } else {
    protocol::AppendArrayHeader(f, 3);
    protocol::AppendBulk(f, "message");
    protocol::AppendBulk(f, kInvalidateChannel);
  }
  if (key != nullptr) {
    protocol::AppendArrayHeader(f, 1);
    protocol::AppendBulk(f, *key);
  } else {
    protocol::AppendNull(f, proto);
  }
  return f;
}

// As Redis: a RESP3 connection gets a push; a RESP2 one only as a redirect
// target in pub/sub mode.
void Deliver(CommandContext& target, const std::string* key, bool redirected) {
  if (target.proto() < 3 && !(redirected && target.pubsub().active())) return;
  target.BeginPush().append(InvalidationFrame(target.proto(), key));
  target.EndReply();
}

// Waits for the PING behind the hub's PREFIX on every master, then answers OK.
class TrackingWait final : public AsyncOp, public ReplySink {
 public:
  TrackingWait(CommandContext& ctx, uint64_t tag) : ctx_(ctx), tag_(tag) {}
  void Expect(size_t waits) { waits_ = waits; }
  ~TrackingWait() override { ctx_.tracking_hub().Forget(this); }
  void OnReply(uint64_t, std::string_view frame) override {
    if (!frame.empty() && frame[0] == '-' && error_.empty()) {  // a master could not be reached
      tenancy::AppendErrorStripped(frame, ctx_.tenant() != nullptr ? ctx_.tenant()->prefix : "",
                                   error_);
    }
    if (waits_ > 0 && --waits_ == 0) {
      ctx_.Complete(tag_, error_.empty() ? std::string_view("+OK\r\n") : error_);
      ctx_.Finished(this);
    }
  }

 private:
  CommandContext& ctx_;
  uint64_t tag_;
  size_t waits_ = 0;
  std::string error_;
};

struct TrackingRequest {
  bool on = false, bcast = false, optin = false, optout = false, noloop = false;
  bool redirect_given = false;
  uint64_t redirect = 0;
  std::vector<std::string> prefixes;
};

// Parses CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
// [OPTOUT] [NOLOOP] and checks it against the current state; an error text or "".
std::string ParseTracking(std::span<const std::string_view> args, const TrackingState* cur,
                          TrackingRequest* r) {
  if (EqNoCase(args[2], "on")) {
    r->on = true;
  } else if (!EqNoCase(args[2], "off")) {
    return std::string(errors::kSyntax);
  }
  for (size_t i = 3; i < args.size(); ++i) {
    const bool more = i + 1 < args.size();
    if (EqNoCase(args[i], "redirect") && more) {
      const std::string_view v = args[++i];
      int64_t id = 0;
      if (std::from_chars(v.data(), v.data() + v.size(), id).ptr != v.data() + v.size() ||
          v.empty()) {
        return std::string(errors::kNotInteger);
      }
      r->redirect_given = true;
      r->redirect = static_cast<uint64_t>(id);
    } else if (EqNoCase(args[i], "bcast")) {
      r->bcast = true;
    } else if (EqNoCase(args[i], "optin")) {
      r->optin = true;
    } else if (EqNoCase(args[i], "optout")) {
      r->optout = true;
    } else if (EqNoCase(args[i], "noloop")) {
      r->noloop = true;
    } else if (EqNoCase(args[i], "prefix") && more) {
      r->prefixes.emplace_back(args[++i]);
    } else {
      return std::string(errors::kSyntax);
    }
  }
  if (!r->on) return "";
  if (cur != nullptr && cur->bcast != r->bcast) return std::string(errors::kTrackingSwitchBcast);
  if (r->optin && r->optout) return std::string(errors::kTrackingBothOpt);
  if (cur != nullptr && ((cur->optin && r->optout) || (cur->optout && r->optin))) {
    return std::string(errors::kTrackingSwitchOpt);
  }
  if (r->bcast && (r->optin || r->optout)) return std::string(errors::kTrackingBcastOpt);
  if (!r->bcast && !r->prefixes.empty()) return std::string(errors::kTrackingPrefixNeedsBcast);
  const auto overlap = [](std::string_view a, std::string_view b) {
    return a.starts_with(b) || b.starts_with(a);
  };
  for (size_t i = 0; i < r->prefixes.size(); ++i) {
    if (cur != nullptr) {
      for (const std::string& e : cur->prefixes) {
        if (overlap(r->prefixes[i], e)) return errors::TrackingPrefixOverlap(r->prefixes[i], e, true);
      }
    }
    for (size_t j = i + 1; j < r->prefixes.size(); ++j) {
      if (overlap(r->prefixes[i], r->prefixes[j])) {
        return errors::TrackingPrefixOverlap(r->prefixes[i], r->prefixes[j], false);
      }
    }
  }
  return "";
}

// Tracking on, as parsed: the state, the hub's PREFIX, then OK once it is in force.
void EnableTracking(CommandContext& ctx, const TrackingRequest& r, uint64_t tag) {
  std::unique_ptr<TrackingState>& t = ctx.tracking();
  const std::string& prefix = ctx.tenant()->prefix;
  if (t == nullptr) {
    t = std::make_unique<TrackingState>();
    t->tenant_prefix = prefix;
    ctx.tracking_hub().Join(ctx, prefix);
  }
  // As Redis: the modes are the request's, the prefixes add up.
  t->bcast = r.bcast;
  t->optin = r.optin;
  t->optout = r.optout;
  t->noloop = r.noloop;
  t->redirect = r.redirect;
  t->prefixes.insert(t->prefixes.end(), r.prefixes.begin(), r.prefixes.end());
  auto wait = std::make_unique<TrackingWait>(ctx, tag);
  const size_t waits = ctx.tracking_hub().Ensure(ctx.backend(), prefix, wait.get());
  if (waits == 0) {  // no master reachable now: the hub flushes when one opens
    ctx.Complete(tag, "+OK\r\n");
    return;
  }
  wait->Expect(waits);
  ctx.Adopt(std::move(wait));
}

}  // namespace

void SendInvalidation(CommandContext& ctx, const std::string* key) {
  TrackingState* t = ctx.tracking().get();
  if (t == nullptr) return;
  if (t->redirect == 0 || t->redirect == ctx.info().id) return Deliver(ctx, key, false);
  std::optional<std::string> k;
  if (key != nullptr) k = *key;
  ctx.PostToClient(t->redirect, [k = std::move(k), prefix = t->tenant_prefix](CommandContext* c) {
    if (c == nullptr || c->tenant() == nullptr || c->tenant()->prefix != prefix) return;
    Deliver(*c, k ? &*k : nullptr, true);
  });
}

void NoteTrackedCommand(CommandContext& ctx, const protocol::CommandInfo& cmd, bool forwarded) {
  TrackingState& t = *ctx.tracking();
  // CLIENT CACHING's flag holds for the next command (which still sees it,
  // TRACKINGINFO included) and is gone from the one after.
  const bool given = t.caching_armed && !t.caching_spent;
  if (t.caching_armed) {
    if (t.caching_spent) t.caching_armed = false;
    t.caching_spent = true;
  }
  if (!forwarded) return;
  const auto args = ctx.args();
  if ((cmd.flags & protocol::kCmdReadonly) != 0 && !t.bcast &&
      !((t.optin && !given) || (t.optout && given))) {
    for (const tenancy::NameRef& ref : ctx.refs()) {
      if (ref.kind != tenancy::RefKind::kKey) continue;
      if (t.keys.size() >= TrackingState::kMaxTrackedKeys &&  // as tracking-table-max-keys
          !t.keys.contains(std::string(args[ref.pos]))) {
        std::string evicted = *t.keys.begin();
        t.keys.erase(t.keys.begin());
        SendInvalidation(ctx, &evicted);
      }
      t.keys.emplace(std::string(args[ref.pos]));
    }
  }
  // Every forwarded command of a tracking client (BCAST ones too) opens the
  // hub connections a loss closed.
  ctx.tracking_hub().Ensure(ctx.backend(), t.tenant_prefix);
  if (t.noloop && (cmd.flags & protocol::kCmdWrite) != 0) {
    const uint64_t now = Loop::NowNs();
    const uint64_t until = now + kNoloopWindowNs;
    if (t.own.size() >= kNoloopSweepAt) {  // writes that changed nothing leave entries
      absl::erase_if(t.own, [now](const auto& e) { return e.second.second <= now; });
      if (t.own.size() >= kNoloopSweepAt) t.own.clear();  // a flood: echoes may show
    }
    for (const tenancy::NameRef& ref : ctx.refs()) {
      if (ref.kind != tenancy::RefKind::kKey) continue;
      auto& own = t.own[std::string(args[ref.pos])];
      ++own.first;
      own.second = until;
    }
  }
}

void StopTracking(CommandContext& ctx) {
  std::unique_ptr<TrackingState>& t = ctx.tracking();
  if (t == nullptr) return;
  ctx.tracking_hub().Leave(ctx, t->tenant_prefix);
  t.reset();
}

bool ClientTracking(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  TrackingRequest r;
  std::string e = ParseTracking(ctx.args(), ctx.tracking().get(), &r);
  if (!e.empty()) {
    ctx.ReplyError(e);
    return true;
  }
  if (!r.on) {
    StopTracking(ctx);
    ctx.ReplySimple("OK");
    return true;
  }
  const uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  if (!r.redirect_given || r.redirect == ctx.info().id) {
    EnableTracking(ctx, r, tag);
    return true;
  }
  // The target: a connection of the same tenant, on any worker.
  const uint64_t target = r.redirect;
  const std::string prefix = ctx.tenant()->prefix;
  ctx.AskPeers(
      [target, prefix](std::span<CommandContext* const> peers) {
        for (CommandContext* p : peers) {
          if (p->info().id == target && p->tenant() != nullptr && p->tenant()->prefix == prefix) {
            return std::string("1");
          }
        }
        return std::string();
      },
      [tag, r, prefix](CommandContext& c, std::vector<std::string>& answers) {
        const bool found = std::any_of(answers.begin(), answers.end(),
                                       [](const std::string& a) { return !a.empty(); });
        // The connection may have changed meanwhile (RESET, another tenant).
        if (!found || c.tenant() == nullptr || c.tenant()->prefix != prefix) {
          std::string err;
          protocol::AppendError(err, errors::kTrackingNoRedirTarget);
          c.Complete(tag, err);
          return;
        }
        EnableTracking(c, r, tag);
      });
  return true;
}

bool ClientCaching(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  TrackingState* t = ctx.tracking().get();
  const std::string_view opt = ctx.args()[2];
  if (t == nullptr) {
    ctx.ReplyError(errors::kCachingNotTracking);
  } else if (EqNoCase(opt, "yes")) {
    if (!t->optin) return ctx.ReplyError(errors::kCachingYesNotOptin), true;
    t->caching_armed = true;
    t->caching_spent = false;
    ctx.ReplySimple("OK");
  } else if (EqNoCase(opt, "no")) {
    if (!t->optout) return ctx.ReplyError(errors::kCachingNoNotOptout), true;
    t->caching_armed = true;
    t->caching_spent = false;
    ctx.ReplySimple("OK");
  } else {
    ctx.ReplyError(errors::kSyntax);
  }
  return true;
}

bool ClientGetRedir(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  const TrackingState* t = ctx.tracking().get();
  ctx.ReplyInteger(t == nullptr ? -1 : static_cast<int64_t>(t->redirect));
  return true;
}

bool ClientTrackingInfo(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  const TrackingState* t = ctx.tracking().get();
  const int proto = ctx.proto();
  std::vector<std::string_view> flags;
  if (t == nullptr) {
    flags.push_back("off");
  } else {
    flags.push_back("on");
    if (t->bcast) flags.push_back("bcast");
    if (t->optin) flags.push_back("optin");
    if (t->optout) flags.push_back("optout");
    if (t->caching_armed) flags.push_back(t->optin ? "caching-yes" : "caching-no");
    if (t->noloop) flags.push_back("noloop");
  }
  std::string& out = ctx.BeginReply();
  protocol::AppendMapHeader(out, 3, proto);
  protocol::AppendBulk(out, "flags");
  protocol::AppendSetHeader(out, flags.size(), proto);
  for (std::string_view f : flags) protocol::AppendBulk(out, f);
  protocol::AppendBulk(out, "redirect");
  protocol::AppendInteger(out, t == nullptr ? -1 : static_cast<int64_t>(t->redirect));
  protocol::AppendBulk(out, "prefixes");
  protocol::AppendArrayHeader(out, t == nullptr ? 0 : t->prefixes.size());
  if (t != nullptr) {
    for (const std::string& p : t->prefixes) protocol::AppendBulk(out, p);
  }
  ctx.EndReply();
  return true;
}

}  // namespace keyfence::proxy::commands
