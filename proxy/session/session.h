// One client session: the connection (ClientConn), the tenant it is bound to,
// its connection state, its dedicated backend connection and transaction, and
// the async operations its commands started. It is the CommandContext that
// command handlers talk back through, and the sink of its backend replies.
// Requests go through the Dispatcher (dispatcher.cc).
// Worker-local. Owned by its worker; destroyed after it closed (its pending
// backend entries are Forget()-ed first).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/commands/context.h"
#include "proxy/session/client_conn.h"
#include "proxy/session/session_host.h"
#include "proxy/session/tenant_binding.h"

namespace keyfence::proxy {

class Session final : public RequestHandler,
                      public CommandContext,
                      public ReplySink {
 public:
  Session(SessionHost& host, std::unique_ptr<ClientStream> stream, config::Listener listener,
          uint64_t id);
  ~Session() override;

  void Start();
  // Picks up a new config between requests: a removed tenant's connection is
  // closed with an error reply.
  void RefreshSnapshot();
  void Close() { conn_.Close(); }
  bool closed() const { return conn_.closed(); }
  // Requests whose replies are still owed (a blocked BLPOP counts).
  // Shutdown drain: nothing under way on the connection (ClientConn::Quiet).
  bool quiet() { return conn_.Quiet(); }
  uint64_t id() const { return info_.id; }

  // RequestHandler (dispatcher.cc).
  bool OnRequest(std::span<const std::string_view> args, size_t bytes) override;
  uint64_t max_request_bytes() const override;
  OutputLimits output_limits() const override;
  void OnOutputOverLimit(uint64_t limit, OutputLimit which) override;
  // The periodic output-limit check (worker tick).
  void CheckOutput(uint64_t now_ns) { conn_.CheckOutput(now_ns); }
  void OnBadInput(RejectReason reason) override;
  // An HTTP request line (`POST`, `Host:`) on the Redis port: a web page the
  // client's host opened scripting this port. Logged, counted, closed without
  // a reply (Redis does the same).
  void CrossProtocol();
  void OnClosed() override;

  // ReplySink: a backend reply for reply slot `tag`.
  void OnReply(uint64_t tag, std::string_view frame) override;
  void Captured(uint64_t tag, std::string_view reply, bool backend);

  // CommandContext.
  std::string& BeginReply() override;
  void EndReply() override;
  uint64_t Defer(tenancy::ReplyRule rule, std::string_view pattern) override;
  void SetExecRules(uint64_t tag, ExecRules rules) override;
  void Complete(uint64_t tag, std::string_view reply) override;
  std::string& BeginPush() override;
  void CloseWithError(std::string_view error) override { conn_.CloseWithError(error); }
  void Retire(std::unique_ptr<BackendConn> conn) override;
  void Reject(RejectReason reason, std::string_view error) override;
  // decisions.cc: the decision log line of a refusal (rate-limited per tenant and reason).
  // `about_command`: false for refusals of the connection itself (its certificate, the
  // pre-AUTH timeout), which name no command.
  void LogDecision(RejectReason reason, std::string_view error, bool about_command = true);
  void CountRejected(RejectReason reason) override { OnBadInput(reason); }
  bool ClaimDedicated() override;
  bool inflight() const override { return !conn_.replies().empty(); }
  const config::Tenant* tenant() const override { return binding_.tenant(); }
  TenantShared* tenant_shared() override {
    return binding_.local() != nullptr ? binding_.local()->shared : nullptr;
  }
  TenantTotals tenant_totals() override { return host_.registry().TotalsFor(binding_.name()); }
  void NoteBlocking(bool on) override;
  void AskPeers(PeerVisit visit, PeersDone done) override;
  void Kill() override { conn_.Close(); }
  bool Unblock(bool error) override;
  bool Owed(uint64_t tag) override {
    const ReplySlot* s = conn_.replies().Find(tag);
    return s != nullptr && !s->ready;
  }
  uint16_t prefix_crc() const override { return binding_.prefix_crc(); }
  const SessionInfo& info() override;
  const config::Snapshot& snapshot() const override { return *snapshot_; }
  const config::Listener& listener() const override { return listener_; }
  void OnHandshake(const PeerCert* cert) override;
  Backend& backend() override { return host_.backend(); }
  void DropDedicated() override;
  void Adopt(std::unique_ptr<AsyncOp> op) override { ops_.push_back(std::move(op)); }
  void Finished(AsyncOp* op) override;
  void WakeAfter(uint32_t ms, void (*fn)(CommandContext&)) override;
  uint64_t AuthWait(std::string_view user) override;
  void DelayRequest(uint64_t ns) override { DelayFor(ns); }
  void AuthFailed() override;
  BindResult Bind(const config::Tenant* t) override;
  void ResetConnection() override;
  void CloseAfterReply() override { conn_.CloseAfterFlush(); }
  void NoteErrorReply(std::string_view error) override;
  TrackingHub& tracking_hub() override { return host_.tracking_hub(); }
  void PostToClient(uint64_t id, std::function<void(CommandContext*)> fn) override;

 private:
  friend class Dispatcher;
  TenantShared* blocked_at_ = nullptr;  // counted in its `blocked` (NoteBlocking)
  // After replies left: the dedicated connection may go back to the pool, and
  // a paused client may go on.
  void AfterDelivery();
  void MaybeReleaseDedicated();
  // Waits `ns` (on_limit: delay), then resumes the input.
  void DelayFor(uint64_t ns);
  // A gateway connection without a tenant: counted against the per-address
  // and total caps, and closed if it does not AUTH within preauth_timeout_ms.
  void EnterUnauthenticated();
  void LeaveUnauthenticated();
  // The tenant's backend ACL user for hint() (after any change of tenant or config).
  void PickBackendUser();

  SessionHost& host_;
  config::Listener listener_;
  std::string cert_name_;  // tenant_from: the certificate name that chose the tenant
  ClientConn conn_;
  TenantBinding binding_;
  config::SnapshotPtr snapshot_;
  uint64_t snapshot_version_ = 0;
  SessionInfo info_;
  std::vector<std::unique_ptr<AsyncOp>> ops_;
  std::unique_ptr<boost::asio::steady_timer> delay_timer_;
  std::unique_ptr<boost::asio::steady_timer> preauth_timer_;
  bool unauthenticated_ = false;  // counted by the host
  std::string auth_key_;          // "<address> <user>" of the AUTH being checked
  TenantShared* dedicated_claim_ = nullptr;  // counted in its `dedicated`
  void ReleaseDedicatedClaim();
  std::shared_ptr<bool> alive_;
  // The request being dispatched; `replay_`: it was held (a barrier, a
  // delay) and comes again, so its one-time notes are not taken twice.
  uint16_t cur_cmd_id_ = 0;
  bool held_ = false;
  bool replay_ = false;
};

}  // namespace keyfence::proxy
