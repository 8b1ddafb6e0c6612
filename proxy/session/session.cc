#include "proxy/session/session.h"

#include "proxy/session/cert_tenant.h"

#include <array>
#include <atomic>
#include "proxy/session/reply_stats.h"
#include "proxy/session/session_limits.h"

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "proxy/commands/families.h"
#include "proxy/commands/tracking.h"
#include "proxy/session/dispatcher.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
namespace errors = protocol::errors;
using tenancy::ReplyRule;

void Session::NoteErrorReply(std::string_view error) {
  binding_.counters().CountErrorReply(cur_cmd_id_, error);
}

Session::Session(SessionHost& host, std::unique_ptr<ClientStream> stream,
                 config::Listener listener, uint64_t id)
    : host_(host),
      listener_(std::move(listener)),
      conn_(host.loop(), std::move(stream), *this),
      binding_(host),
      alive_(std::make_shared<bool>(true)) {
  info_.id = id;
  hint_ = id;
  sink_ = this;
  info_.peer = conn_.peer();
  info_.created_ns = Loop::NowNs();
  info_.last_cmd_ns = info_.created_ns;
}

Session::~Session() {
  *alive_ = false;
  commands::StopTracking(*this);
}

void Session::PostToClient(uint64_t id, std::function<void(CommandContext*)> fn) {
  host_.PostToSession(id, [fn = std::move(fn)](Session* s) { fn(s); });
}

void Session::Start() {
  RefreshSnapshot();
  if (conn_.closing()) return;
  if (listener_.tenant_from != config::TenantFrom::kAuth) {
    // The tenant comes from the client certificate, once the handshake is done.
    conn_.ExpectHandshake();
    EnterUnauthenticated();
    if (conn_.closing()) return;
  } else if (!listener_.tenant.empty()) {
    const config::Tenant* t = snapshot_->FindTenant(listener_.tenant);
    if (t == nullptr) return conn_.CloseWithError(errors::kListenerTenantMissing);
    if (!binding_.Bind(t)) return conn_.CloseWithError(errors::kMaxClients);
  } else {
    EnterUnauthenticated();
    if (conn_.closing()) return;
  }
  conn_.parser().set_limits(binding_.ParserLimits());
  PickBackendUser();
  if (!conn_.Start()) conn_.Close();
}

void Session::OnHandshake(const PeerCert* cert) {
  if (listener_.tenant_from == config::TenantFrom::kAuth) return;
  const CertTenant c = TenantFromCert(*snapshot_, listener_.tenant_from, cert);
  if (c.tenant == nullptr) {
    binding_.counters().CountRejected(RejectReason::kAuth);
    LogDecision(RejectReason::kAuth,
                std::string("client certificate names ") +
                    (c.ambiguous ? "more than one tenant" : "no tenant") + " (" +
                    (c.names.empty() ? std::string("no name") : c.names) + ")",
                false);
    return conn_.CloseWithError(c.ambiguous ? errors::kCertManyTenants : errors::kCertNoTenant);
  }
  // From now on the connection is as one on a listener of that tenant: AUTH
  // only as its users, RESET keeps it.
  listener_.tenant = c.tenant->app;
  cert_name_ = c.matched;
  LeaveUnauthenticated();
  if (!binding_.Bind(c.tenant)) return conn_.CloseWithError(errors::kMaxClients);
  conn_.parser().set_limits(binding_.ParserLimits());
  PickBackendUser();
}

bool Session::ClaimDedicated() {
  if (dedicated_claim_ != nullptr) return true;
  TenantShared* ts = tenant_shared();
  if (ts == nullptr) return true;
  const uint32_t cap = binding_.tenant()->limits.max_dedicated_connections;
  if (ts->dedicated.fetch_add(1, std::memory_order_relaxed) >= cap && cap != 0) {
    ts->dedicated.fetch_sub(1, std::memory_order_relaxed);
    binding_.counters().CountRejected(RejectReason::kDenied);
    return false;
  }
  dedicated_claim_ = ts;
  return true;
}

void Session::ReleaseDedicatedClaim() {
  if (dedicated_claim_ == nullptr || dedicated_.active() || pubsub_.active()) return;
  dedicated_claim_->dedicated.fetch_sub(1, std::memory_order_relaxed);
  dedicated_claim_ = nullptr;
}

void Session::PickBackendUser() {
  const config::Tenant* t = binding_.tenant();
  backend_user_ = t != nullptr ? host_.BackendUserFor(t->app) : nullptr;
  conn_.CountBytesInto(&binding_.counters());  // INFO net_input/output_bytes
}

void Session::EnterUnauthenticated() {
  if (unauthenticated_) return;
  const config::Limits& l = snapshot_->default_limits;
  const uint64_t total = std::max<uint64_t>(1, snapshot_->max_clients / 2);
  if (!host_.TryAddUnauthenticated(info_.peer.remote_ip, l.max_unauthenticated_per_ip, total)) {
    spdlog::warn("client {} from {}: too many unauthenticated connections; closing", info_.id,
                 info_.peer.remote_ip);
    return conn_.CloseWithError(errors::kTooManyUnauthenticated);
  }
  unauthenticated_ = true;
  if (l.preauth_timeout_ms == 0) return;
  if (!preauth_timer_) preauth_timer_ = std::make_unique<asio::steady_timer>(host_.loop().io());
  preauth_timer_->expires_after(std::chrono::milliseconds(l.preauth_timeout_ms));
  auto alive = alive_;
  preauth_timer_->async_wait([this, alive](const boost::system::error_code& ec) {
    if (ec || !*alive || !unauthenticated_ || conn_.closing()) return;
    binding_.counters().CountRejected(RejectReason::kAuth);
    LogDecision(RejectReason::kAuth, errors::kPreauthTimeout, false);
    conn_.CloseWithError(errors::kPreauthTimeout);
  });
}

void Session::LeaveUnauthenticated() {
  if (!unauthenticated_) return;
  unauthenticated_ = false;
  host_.RemoveUnauthenticated(info_.peer.remote_ip);
  if (preauth_timer_) preauth_timer_->cancel();
}

void Session::RefreshSnapshot() {
  snapshot_ = host_.snapshot();
  snapshot_version_ = host_.snapshot_version();
  if (binding_.tenant() != nullptr) {
    const config::Tenant* t = snapshot_->FindTenant(binding_.name());
    if (t == nullptr) return conn_.CloseWithError(errors::kTenantRemoved);
    if (!cert_name_.empty()) {  // chosen by its certificate: does the name still choose it?
      const config::Tenant* by_cert = snapshot_->FindTenantByCertName(cert_name_);
      if (by_cert == nullptr || by_cert->app != t->app) {
        return conn_.CloseWithError(errors::kCertNoTenant);
      }
    }
    binding_.Bind(t);  // the same tenant: its new limits
  }
  conn_.parser().set_limits(binding_.ParserLimits());
  PickBackendUser();
}

uint64_t Session::max_request_bytes() const {
  const config::Tenant* t = binding_.tenant();
  return t != nullptr ? t->limits.max_request_bytes : session::kPreAuthMaxBulk * 4;
}

OutputLimits Session::output_limits() const {
  const config::Tenant* t = binding_.tenant();
  const config::Limits& l = t != nullptr ? t->limits : snapshot_->default_limits;
  TenantLocal* local = binding_.local();
  return {l.client_output_buffer_bytes, l.client_output_buffer_soft_bytes,
          uint64_t{l.client_output_buffer_soft_seconds} * 1000000000,
          l.tenant_output_buffer_bytes, local != nullptr ? &local->shared->buffered : nullptr};
}

void Session::OnBadInput(RejectReason reason) {
  if (binding_.local() != nullptr) binding_.counters().CountRejected(reason);
}

void Session::CrossProtocol() {
  OnBadInput(RejectReason::kProtocol);
  static std::atomic<uint64_t> last_log_ns{0};  // at most one line a second
  const uint64_t now = Loop::NowNs();
  uint64_t last = last_log_ns.load(std::memory_order_relaxed);
  if (now - last > 1000000000 &&
      last_log_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    spdlog::warn("client {} from {}: possible SECURITY ATTACK: an HTTP request line on a Redis "
                 "port (cross-protocol scripting); connection closed",
                 info_.id, info_.peer.remote_ip);
  }
  conn_.CloseAfterFlush();  // the replies before it, then nothing more is read
  conn_.MarkDirty();
}

void Session::OnClosed() {
  backend().Forget(this);
  ops_.clear();
  commands::StopTracking(*this);
  commands::DropSubscriptions(*this);
  DropDedicated();
  ReleaseDedicatedClaim();
  binding_.Leave();
  if (delay_timer_) delay_timer_->cancel();
  LeaveUnauthenticated();
  host_.SessionClosed(this);
}

bool Session::OnRequest(std::span<const std::string_view> args, size_t bytes) {
  replay_ = held_;  // the same request again (its handler returned false)
  held_ = !Dispatcher::Dispatch(*this, args, bytes);
  return !held_;
}

// --- replies ---------------------------------------------------------------

std::string& Session::BeginReply() {
  if (capture_ != nullptr) return *capture_;
  return conn_.replies().LocalReply(state_.discard_current, info_.last_cmd_ns, cur_cmd_id_);
}

void Session::EndReply() {
  if (capture_ != nullptr) return;
  conn_.replies().FinishLocal();
  conn_.MarkDirty();
  AfterDelivery();
}

uint64_t Session::Defer(ReplyRule rule, std::string_view pattern) {
  if (capture_ != nullptr) {  // queued in MULTI: the reply goes to the EXEC array
    tx_.rules.emplace_back(ReplyRule::kQueuedLocal, std::string());
    tx_.captures.push_back({tx_.rules.size() - 1, rule, std::string(pattern)});
    ++tx_.pending;
    return tx_.CaptureTag(tx_.captures.size() - 1);
  }
  ReplySlot& s = conn_.replies().Push(rule, state_.discard_current, info_.last_cmd_ns, cur_cmd_id_);
  if (!pattern.empty()) s.pattern.assign(pattern);
  return s.seq;
}

void Session::SetExecRules(uint64_t tag, ExecRules rules) {
  ReplySlot* s = conn_.replies().Find(tag);
  if (s != nullptr) s->exec_rules = std::move(rules);
}

void Session::OnReply(uint64_t tag, std::string_view frame) {
  if (conn_.closed()) return;
  if ((tag & Transaction::kCaptureBit) != 0) return Captured(tag, frame, true);
  ReplySlot* slot = conn_.replies().Find(tag);
  if (slot == nullptr) {  // a reply nobody waits for (tag 0: an internal UNWATCH)
    AfterDelivery();
    return;
  }
  if (TenantLocal* local = binding_.local()) {
    uint64_t now = Loop::NowNs();
    const uint64_t ns = now - slot->start_ns;
    local->counters->ObserveLatencyNs(ns);
    local->counters->CountCommandTime(slot->cmd_id, ns);
    if (frame[0] == '-' || frame[0] == '!') [[unlikely]] {
      session::CountErrorFrame(*local->counters, slot->cmd_id, frame);
    } else if (session::IsLookup(slot->cmd_id)) {
      local->counters->CountLookup(!session::IsNullFrame(frame));
    }
    binding_.ChargeReply(frame.size(), now);
    if (frame.size() > binding_.tenant()->limits.big_value_bytes) {
      binding_.NoteBigKey(frame.size(), slot->key(),
                          protocol::CommandTable::Get().ById(slot->cmd_id).name, info_.id);
    }
  }
  const config::Tenant* t = binding_.tenant();
  conn_.replies().Deliver(*slot, frame,
                          ReplyView{t != nullptr ? std::string_view(t->prefix) : "", state_.proto});
  // A client that holds unread replies is checked as each one lands, not only
  // at the end of the backend's read batch (which may carry many megabytes).
  if (conn_.pending_output() >= session::kTenantBufferFloor && !conn_.CheckOutput(0, true)) return;
  conn_.MarkDirty();
  AfterDelivery();
}

void Session::Complete(uint64_t tag, std::string_view reply) {
  if (conn_.closed()) return;
  if ((tag & Transaction::kCaptureBit) != 0) return Captured(tag, reply, false);
  ReplySlot* s = conn_.replies().Find(tag);
  if (s == nullptr) return;
  if (!reply.empty() && reply[0] == '-' && binding_.local() != nullptr) {
    session::CountErrorFrame(*binding_.local()->counters, s->cmd_id, reply);
  }
  conn_.replies().Complete(*s, reply);
  conn_.MarkDirty();
  AfterDelivery();
}

// The later reply of a local command queued in MULTI: kept at its position
// of the EXEC array (`backend`: a backend frame, rewritten by the rule).
void Session::Captured(uint64_t tag, std::string_view reply, bool backend) {
  const uint32_t generation = static_cast<uint32_t>(tag >> 16);
  const size_t i = static_cast<size_t>(tag & 0xffff);
  if (generation != tx_.generation || i >= tx_.captures.size()) return;  // discarded since
  const Transaction::Capture& c = tx_.captures[i];
  std::string& out = tx_.rules[c.index].second;
  out.clear();
  const config::Tenant* t = binding_.tenant();
  if (backend && t != nullptr) {
    ReplySlot slot;
    slot.rule = c.rule;
    slot.pattern = c.pattern;
    ReplyQueue::Write(slot, reply, ReplyView{t->prefix, state_.proto}, out);
  } else {
    out.assign(reply);
  }
  if (tx_.pending > 0) --tx_.pending;
  if (tx_.pending == 0) conn_.ResumeSoon();  // an EXEC may be waiting for it
}

void Session::AfterDelivery() {
  MaybeReleaseDedicated();
  if (dedicated_claim_ != nullptr) ReleaseDedicatedClaim();
  if (conn_.replies().empty()) conn_.ResumeSoon();
}

void Session::Reject(RejectReason reason, std::string_view error) {
  // Before AUTH there is no tenant: counted under tenant="unauthenticated" so
  // that password guessing on a gateway shows in keyfence_rejected_total.
  binding_.counters().CountRejected(reason);
  binding_.counters().CountCommandRejected(cur_cmd_id_, reason);
  LogDecision(reason, error);
  // errorstats counts the reply; failed_calls does not (Redis keeps them apart).
  const uint16_t cmd = cur_cmd_id_;
  cur_cmd_id_ = session::kNoCommand;
  if (tx_.open) tx_.failed = true;
  ReplyError(error);
  cur_cmd_id_ = cmd;
}

// --- pub/sub and the dedicated connection -----------------------------------

std::string& Session::BeginPush() {
  return conn_.replies().LocalReply(false, info_.last_cmd_ns, cur_cmd_id_);
}

void Session::Retire(std::unique_ptr<BackendConn> conn) {
  if (!conn) return;
  conn->Forget(this);
  if (dedicated_.sink) conn->Forget(dedicated_.sink.get());
  BackendConn* c = conn.release();
  asio::post(host_.loop().io(), [c] { delete c; });  // may be inside its own handler
}

void Session::AskPeers(PeerVisit visit, PeersDone done) {
  SessionHost* host = &host_;
  const uint64_t me = info_.id;
  host_.AskAllWorkers(
      [visit = std::move(visit)](std::span<Session* const> sessions) {
        std::vector<CommandContext*> peers(sessions.begin(), sessions.end());
        return visit(peers);
      },
      [host, me, done = std::move(done)](std::vector<std::string> answers) {
        if (Session* s = host->FindSession(me)) done(*s, answers);
      });
}

// Only a lone blocking request (nothing pipelined behind it on the dedicated
// connection, no WATCH, no MULTI) is unblocked: dropping the connection ends
// it on the backend, and nothing else is lost with it.
bool Session::Unblock(bool error) {
  DedicatedLink& d = dedicated_;
  if (!d.active() || !d.blocking || d.watching || tx_.open) return false;
  if (d.sent.size() + d.held.size() != 1 || d.conn->pending() != d.sent.size()) return false;
  const uint64_t tag = d.sent.empty() ? d.held.front().tag : d.sent.front().tag;
  const ReplySlot* slot = conn_.replies().Find(tag);
  if (slot == nullptr) return false;
  const std::string_view cmd = protocol::CommandTable::Get().ById(slot->cmd_id).name;
  DropDedicated();  // the backend's blocking command ends with its connection
  std::string reply;
  if (error) {
    protocol::AppendError(reply, protocol::errors::kUnblocked);
  } else if (state_.proto >= 3) {
    reply = "_\r\n";
  } else {  // a timed-out BLMOVE/BRPOPLPUSH is a null bulk, the others a null array
    reply = (cmd == "blmove" || cmd == "brpoplpush") ? "$-1\r\n" : "*-1\r\n";
  }
  Complete(tag, reply);
  return true;
}

void Session::NoteBlocking(bool on) {
  if (on == (blocked_at_ != nullptr)) return;
  if (on) {
    blocked_at_ = tenant_shared();
    if (blocked_at_ != nullptr) blocked_at_->blocked.fetch_add(1, std::memory_order_relaxed);
  } else {
    blocked_at_->blocked.fetch_sub(1, std::memory_order_relaxed);
    blocked_at_ = nullptr;
  }
}

void Session::MaybeReleaseDedicated() {
  DedicatedLink& d = dedicated_;
  if (d.mode != DedicatedLink::Mode::kDedicated || !d.conn || tx_.open || d.watching) return;
  if (d.conn->pending() > 0 || !conn_.replies().empty()) return;
  d.blocking = false;
  NoteBlocking(false);
  d.mode = DedicatedLink::Mode::kNone;
  d.slot = kAnySlot;
  d.sent.clear();
  backend().ReturnDedicated(std::move(d.conn));
}

void Session::DropDedicated() {
  DedicatedLink& d = dedicated_;
  Retire(std::move(d.conn));
  d.mode = DedicatedLink::Mode::kNone;
  d.slot = kAnySlot;
  d.blocking = d.watching = false;
  NoteBlocking(false);
  d.sent.clear();
  d.held.clear();
}

void Session::Finished(AsyncOp* op) {
  for (auto& p : ops_) {
    if (p.get() == op) {
      AsyncOp* raw = p.release();
      asio::post(host_.loop().io(), [raw] { delete raw; });
      break;
    }
  }
  std::erase_if(ops_, [](const auto& p) { return p == nullptr; });
}

// --- tenant and lifecycle ---------------------------------------------------

const SessionInfo& Session::info() {
  info_.cmd_id = cur_cmd_id_;
  return info_;
}

// A connection that holds backend state for one tenant (a subscription, a
// transaction, WATCHed keys, replies still owed) cannot become another
// tenant: that state would keep serving the first namespace.
BindResult Session::Bind(const config::Tenant* t) {
  const config::Tenant* cur = binding_.tenant();
  if (cur != nullptr && t != nullptr && cur->app != t->app &&
      (dedicated_.active() || pubsub_.active() || tx_.open || inflight())) {
    return BindResult::kStateHeld;
  }
  if (!binding_.Bind(t)) return BindResult::kTooManyConnections;
  if (t != nullptr) LeaveUnauthenticated();
  // Tracking belongs to a namespace: another tenant starts without it.
  if (cur != nullptr && (t == nullptr || cur->app != t->app)) commands::StopTracking(*this);
  conn_.parser().set_limits(binding_.ParserLimits());
  PickBackendUser();
  return BindResult::kOk;
}

void Session::ResetConnection() {
  commands::StopTracking(*this);
  DropDedicated();
  commands::DropSubscriptions(*this);
  tx_.Clear();
  state_ = ConnState{};
  if (listener_.tenant.empty()) {
    binding_.Leave();
    EnterUnauthenticated();
  }
  conn_.parser().set_limits(binding_.ParserLimits());
  PickBackendUser();
}

void Session::DelayFor(uint64_t ns) {
  if (!delay_timer_) delay_timer_ = std::make_unique<asio::steady_timer>(host_.loop().io());
  delay_timer_->expires_after(std::chrono::nanoseconds(ns));
  auto alive = alive_;
  delay_timer_->async_wait([this, alive](const boost::system::error_code& ec) {
    if (!ec && *alive) conn_.Resume();
  });
}

void Session::WakeAfter(uint32_t ms, void (*fn)(CommandContext&)) {
  // Rare (retries while the backend changes): a timer each, kept by its handler.
  auto t = std::make_shared<asio::steady_timer>(host_.loop().io(), std::chrono::milliseconds(ms));
  auto alive = alive_;
  t->async_wait([this, alive, fn, t](const boost::system::error_code& ec) {
    if (!ec && *alive && !conn_.closed()) fn(*this);
  });
}

}  // namespace keyfence::proxy
