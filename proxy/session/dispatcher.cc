#include "proxy/session/dispatcher.h"

#include <absl/strings/match.h>

#include "protocol/error_replies.h"
#include "proxy/commands/families.h"
#include "proxy/commands/tracking.h"
#include "proxy/commands/registry.h"
#include "proxy/session/session.h"
#include "proxy/session/session_limits.h"
#include "tenancy/policy.h"
#include "tenancy/decision.h"

namespace keyfence::proxy {

namespace errors = protocol::errors;
using tenancy::Local;
using tenancy::Outcome;

namespace {

RejectReason ReasonOf(tenancy::RejectMetric m) {
  switch (m) {
    case tenancy::RejectMetric::kAuth:
      return RejectReason::kAuth;
    case tenancy::RejectMetric::kKeyRule:
      return RejectReason::kKeyRule;
    case tenancy::RejectMetric::kDenied:
    case tenancy::RejectMetric::kNone:
      break;
  }
  return RejectReason::kDenied;
}

bool ExemptFromOps(std::string_view name) {
  auto is = [name](std::string_view w) {
    return absl::EqualsIgnoreCase(absl::string_view(name.data(), name.size()),
                                  absl::string_view(w.data(), w.size()));
  };
  return (name.size() == 4 && is("quit")) || (name.size() == 5 && is("reset"));
}

// Over a memory quota these are refused: the denyoom commands, and scripts
// that may write (EVAL, EVALSHA, FCALL: their own flags say nothing of it).
bool MayGrowMemory(uint32_t flags) {
  using namespace protocol;  // NOLINT: the flag names
  constexpr uint32_t kScriptRun = kCmdNoscript | kCmdSkipMonitor | kCmdNoMandatoryKeys;
  return (flags & kCmdDenyOom) != 0 ||
         ((flags & kScriptRun) == kScriptRun && (flags & kCmdReadonly) == 0);
}

size_t KeysNamed(const tenancy::NameRefs& refs) {
  size_t n = 0;
  for (const auto& r : refs) n += r.kind == tenancy::RefKind::kKey ? 1 : 0;
  return std::max<size_t>(n, 1);
}

}  // namespace

bool Dispatcher::Dispatch(Session& s, std::span<const std::string_view> args, size_t bytes) {
  TenantBinding& binding = s.binding_;
  if (!binding.TakeRequestBytes(bytes)) {
    s.args_ = {};
    s.cur_cmd_id_ = session::kNoCommand;
    s.Reject(RejectReason::kRateLimit, binding.BytesLimitError());
    return true;
  }
  if (const config::Tenant* t = binding.tenant();
      t != nullptr && bytes > t->limits.big_value_bytes && args.size() > 1) {
    binding.NoteBig(false, bytes, args[1], s.info_.id);
  }
  if (s.host_.snapshot_version() != s.snapshot_version_) {
    s.RefreshSnapshot();
    if (s.conn_.closing()) return true;
  }
  ConnState& st = s.state_;
  st.discard_current = st.reply_mode != ReplyMode::kOn;
  if (st.reply_mode == ReplyMode::kSkip) st.reply_mode = ReplyMode::kOn;
  s.args_ = args;

  // ops_per_sec before the policy decision: every request a tenant sends
  // counts (denied ones too), and a flood of rejected requests costs no more
  // than the parse. QUIT and RESET always pass, so a client can always leave.
  if (binding.ops_limited() && !ExemptFromOps(args[0])) {
    uint64_t wait_ns = 0;
    switch (binding.AdmitRequest(&wait_ns)) {
      case TenantBinding::Admit::kGo:
        break;
      case TenantBinding::Admit::kWait:
        s.DelayFor(wait_ns);
        return false;
      case TenantBinding::Admit::kRejected:
        s.cur_cmd_id_ = session::kNoCommand;
        s.Reject(RejectReason::kRateLimit, binding.OpsLimitError());
        return true;
    }
  }
  const tenancy::SessionView view{binding.tenant(), st.proto, s.pubsub_.active(),
                                  s.tx_.open};
  const tenancy::Decision d = tenancy::Decide(view, args, &s.refs_);
  if (d.outcome == Outcome::kReject) {
    s.cur_cmd_id_ = d.cmd != nullptr ? d.cmd->id : session::kNoCommand;
    tenancy::RejectMetric m = tenancy::MetricOf(d.reject);
    std::string text = tenancy::RejectText(d, args);
    if (s.tx_.open && (d.reject == tenancy::RejectKind::kSyntax ||
                       d.reject == tenancy::RejectKind::kNotInteger)) {
      // Redis finds these when the command runs: QUEUED, and the error in EXEC's array.
      return commands::QueueError(s, text);
    }
    if (m == tenancy::RejectMetric::kNone) {
      if (s.tx_.open) s.tx_.failed = true;  // as in Redis: EXEC then aborts
      s.ReplyError(text);
    } else {
      s.Reject(ReasonOf(m), text);
    }
    return true;
  }
  if (d.outcome == Outcome::kClientExtension) {
    s.cur_cmd_id_ = session::kNoCommand;
    return commands::ClientExtension(s);
  }
  if (d.outcome == Outcome::kCrossProtocol) {
    s.CrossProtocol();
    return true;
  }
  if (binding.quota_limited()) {
    if (MayGrowMemory(d.cmd->flags)) {
      if (!binding.AdmitWrite(args, bytes, KeysNamed(s.refs_))) {
        s.cur_cmd_id_ = d.cmd->id;
        s.Reject(RejectReason::kQuota, binding.QuotaError());
        return true;
      }
    } else if ((d.cmd->flags & protocol::kCmdWrite) != 0) {
      binding.CountShrink();
    }
  }

  const tenancy::Rule& rule = *d.rule;
  ++s.info_.commands;
  s.info_.last_cmd_ns = Loop::NowNs();
  s.cur_cmd_id_ = d.cmd->id;
  if (TenantLocal* local = binding.local()) local->counters->CountRequest(d.cmd->id);
  if (s.tracking_ != nullptr && !s.replay_) {
    commands::NoteTrackedCommand(s, *d.cmd, d.outcome != Outcome::kLocal);
  }
  if (d.outcome == Outcome::kLocal) {
    Handler h = commands::LocalHandler(rule.local);
    if (h == nullptr) {
      s.ReplyError(tenancy::NoPermCommand(*d.cmd));
      return true;
    }
    if (s.tx_.open && commands::QueuedInMulti(rule.local)) {
      return commands::QueueLocal(s, *d.cmd, rule, h);
    }
    return h(s, *d.cmd, rule);
  }
  return Forward(s, *d.cmd, rule, d.route);
}

// Forwards, noting the request's first key: hot keys are sampled at random
// (one decrement and compare unless sampled), weighted back up; while the
// tenant has big values the first key rides in the reply slot to name a big
// reply (Session::OnReply).
bool Dispatcher::Forward(Session& s, const protocol::CommandInfo& cmd, const tenancy::Rule& rule,
                         tenancy::Route route) {
  static_assert(session::kHotSample == HotKeys::kSampleEvery, "one sampling rate");
  TenantLocal* local = s.binding_.local();
  if (s.refs_.empty() || s.refs_[0].kind != tenancy::RefKind::kKey) {
    return commands::Forward(s, cmd, rule, route);
  }
  const std::string_view key = s.args_[s.refs_[0].pos];
  local->hot.Observe(key);
  if (!local->hot.big.capturing(s.info_.last_cmd_ns)) return commands::Forward(s, cmd, rule, route);
  const uint64_t seq = s.conn_.replies().next_seq();
  const bool done = commands::Forward(s, cmd, rule, route);
  if (ReplySlot* slot = s.conn_.replies().Find(seq)) {
    slot->SetKey(key.substr(0, BigKeys::kMaxKeyBytes), seq);
  }
  return done;
}

}  // namespace keyfence::proxy
