#include "proxy/client_session.h"
#include "proxy/text.h"

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "proxy/session_limits.h"
#include "protocol/slot.h"
#include "protocol/writer.h"
#include "proxy/fanout.h"
#include "proxy/scan_job.h"
#include "proxy/worker.h"
#include "tenancy/policy.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
using protocol::CommandInfo;
using protocol::CommandTable;
using tenancy::Handling;
using tenancy::Local;
using tenancy::ReplyRule;
using tenancy::Route;
using tenancy::Rule;

using namespace session;  // NOLINT: the session's named limits

ClientSession::ClientSession(Worker& worker, asio::ip::tcp::socket socket,
                             config::Listener listener, uint64_t id)
    : worker_(worker),
      socket_(std::move(socket)),
      listener_(std::move(listener)),
      id_(id),
      alive_(std::make_shared<bool>(true)),
      created_ns_(Worker::NowNs()),
      last_cmd_ns_(created_ns_) {}

ClientSession::~ClientSession() { *alive_ = false; }

void ClientSession::Start() {
  boost::system::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  auto remote = socket_.remote_endpoint(ec);
  if (!ec) remote_ip_ = remote.address().to_string();
  RefreshSnapshot();
  if (closed_) return;
  if (!listener_.tenant.empty()) {
    const config::Tenant* t = snapshot_->FindTenant(listener_.tenant);
    if (t == nullptr) return CloseWithError("ERR keyfence: this listener's tenant is not configured");
    if (!SetTenant(t)) return CloseWithError(protocol::errors::kMaxClients);
  }
  ApplyLimits();
  socket_.non_blocking(true, ec);
  if (!worker_.mux().Add(socket_.native_handle(), this)) return Close();
  reading_enabled_ = true;
}

void ClientSession::RefreshSnapshot() {
  snapshot_ = worker_.snapshot();
  snapshot_version_ = worker_.snapshot_version();
  if (tenant_ != nullptr) {
    const config::Tenant* t = snapshot_->FindTenant(tenant_name_);
    if (t == nullptr) return CloseWithError("ERR keyfence: tenant removed by configuration");
    tenant_ = t;
  }
  ApplyLimits();
}

// Reads are driven by the worker's level-triggered ReadMux: OnReadable() is
// called when the socket has data; one read per wake-up unless the buffer
// filled up. While paused (backpressure) the socket is taken out of the set.
void ClientSession::StartRead() {
  if (closed_ || close_after_flush_) return;
  bool want = !read_paused_;
  if (want != reading_enabled_) {
    reading_enabled_ = want;
    worker_.mux().Enable(socket_.native_handle(), this, want);
  }
}

void ClientSession::OnReadable() {
  if (closed_) return;
  ReadReady();
}

void ClientSession::ReadReady() {
  for (;;) {
    if (read_paused_ || close_after_flush_) break;
    char* p = in_.Prepare(kReadChunk);
    size_t room = in_.Writable();
    boost::system::error_code ec;
    size_t n = socket_.read_some(asio::buffer(p, room), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) return Close();
    in_.Commit(n);
    ProcessInput();
    if (closed_) return;
    if (n < room) break;
  }
  in_.ShrinkIfIdle(kInputKeep);  // give back what a big request needed
  worker_.ScheduleFlush();
  StartRead();
}

void ClientSession::Resume() {
  if (closed_ || !read_paused_) return;
  read_paused_ = false;
  ProcessInput();
  worker_.ScheduleFlush();
  StartRead();
}

void ClientSession::ProcessInput() {
  if (processing_) return;
  processing_ = true;
  while (!in_.Empty() && !closed_ && !close_after_flush_) {
    if (slots_.size() >= kMaxInflight || out_.size() > kOutputPause) {
      read_paused_ = true;
      break;
    }
    size_t consumed = 0;
    protocol::ParseStatus st = parser_.Parse(in_.Data(), in_.Size(), &consumed);
    const uint64_t max_request =
        tenant_ != nullptr ? tenant_->limits.max_request_bytes : kPreAuthMaxBulk * 4;
    if (st == protocol::ParseStatus::kNeedMore) {
      size_t want = parser_.hint_total();
      if (want > max_request || in_.Size() > max_request) {
        if (counters_ != nullptr) counters_->CountRejected(RejectReason::kTooLarge);
        CloseWithError("ERR Protocol error: request larger than max_request_bytes");
        break;
      }
      if (want > in_.Size()) in_.Prepare(want - in_.Size());
      break;
    }
    if (st == protocol::ParseStatus::kError) {
      if (counters_ != nullptr) counters_->CountRejected(RejectReason::kProtocol);
      CloseWithError("ERR " + parser_.error_text());
      break;
    }
    if (consumed > max_request) {
      if (counters_ != nullptr) counters_->CountRejected(RejectReason::kTooLarge);
      CloseWithError("ERR Protocol error: request larger than max_request_bytes");
      break;
    }
    if (local_ != nullptr && !local_->bytes.unlimited() &&
        !local_->bytes.TryTake(static_cast<double>(consumed), Worker::NowNs())) {
      args_.clear();
      Reject(RejectReason::kRateLimit,
             "RATELIMIT tenant '" + tenant_->app + "' is over its limit of " +
                 std::to_string(tenant_->limits.bytes_per_sec) + " bytes/s");
      in_.Consume(consumed);
      continue;
    }
    args_.clear();
    for (size_t i = 0; i < parser_.argc(); ++i) args_.push_back(parser_.arg(i));
    if (tenant_ != nullptr && consumed > tenant_->limits.big_value_bytes && args_.size() > 1) {
      NoteBig(false, consumed, args_[1]);
    }
    if (!args_.empty() && !Dispatch()) {
      read_paused_ = true;  // a barrier: retry this request once nothing is in flight
      break;
    }
    in_.Consume(consumed);
  }
  processing_ = false;
}

void ClientSession::Reject(RejectReason reason, std::string_view error) {
  // Before AUTH there is no tenant: counted under tenant="unauthenticated" so
  // that password guessing on a gateway shows in keyfence_rejected_total.
  TenantCounters* c = counters_ != nullptr ? counters_ : &worker_.Unauthenticated();
  c->CountRejected(reason);
  if (in_multi_) multi_error_ = true;
  ReplyError(error);
}

bool ClientSession::Dispatch() {
  if (worker_.snapshot_version() != snapshot_version_) {
    RefreshSnapshot();
    if (closed_ || close_after_flush_) return true;
  }
  const CommandTable& table = CommandTable::Get();
  const CommandInfo* cmd = table.Find(args_[0]);
  discard_this_ = reply_mode_ != ReplyMode::kOn;
  if (reply_mode_ == ReplyMode::kSkip) reply_mode_ = ReplyMode::kOn;
  if (cmd == nullptr) {
    std::string e = "ERR unknown command '" + std::string(args_[0].substr(0, 128)) +
                    "', with args beginning with: ";
    for (size_t i = 1; i < args_.size() && i < 4; ++i) {
      e += "'" + std::string(args_[i].substr(0, 64)) + "' ";
    }
    Reject(RejectReason::kDenied, e);
    return true;
  }
  if (!cmd->subcommands.empty() && args_.size() == 1 &&
      tenancy::CommandRules::Get().For(cmd->id).handling == Handling::kLocal) {
    // e.g. bare COMMAND: the parent itself is answered locally.
  } else if (!cmd->subcommands.empty()) {
    if (args_.size() < 2) {
      Reject(RejectReason::kDenied,
             "ERR wrong number of arguments for '" + std::string(cmd->name) + "' command");
      return true;
    }
    const CommandInfo* sub = table.FindSub(*cmd, args_[1]);
    if (sub == nullptr && cmd->name == "client" && Authenticated() &&
        (EqNoCase(args_[1], "setinfo") || EqNoCase(args_[1], "no-touch"))) {
      // Redis 7.2 handshake commands that clients send to any server.
      HandleClientExtension();
      return true;
    }
    if (sub == nullptr) {
      std::string upper(cmd->name);
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      Reject(RejectReason::kDenied, "ERR unknown subcommand '" +
                                        std::string(args_[1].substr(0, 128)) + "'. Try " +
                                        upper + " HELP.");
      return true;
    }
    cmd = sub;
  }
  const int64_t argc = static_cast<int64_t>(args_.size());
  if ((cmd->arity > 0 && argc != cmd->arity) || (cmd->arity < 0 && argc < -cmd->arity)) {
    Reject(RejectReason::kDenied,
           "ERR wrong number of arguments for '" + std::string(cmd->name) + "' command");
    return true;
  }
  const Rule& rule = tenancy::CommandRules::Get().For(cmd->id);
  if (!Authenticated() && rule.local != Local::kAuth && rule.local != Local::kHello &&
      rule.local != Local::kQuit && rule.local != Local::kReset) {
    Reject(RejectReason::kAuth, protocol::errors::kNoAuth);
    return true;
  }
  if (mode_ == Mode::kPubSub && proto_ == 2 && rule.route != Route::kPubSub &&
      rule.local != Local::kPing &&
      rule.local != Local::kQuit && rule.local != Local::kReset) {
    ReplyError("ERR Can't execute '" + std::string(cmd->name) +
               "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
               "this context");
    return true;
  }
  bool allowed = rule.handling != Handling::kDeny;
  if (rule.scripts && (tenant_ == nullptr || !tenant_->limits.allow_scripts)) allowed = false;
  if (!allowed || (tenant_ != nullptr &&
                   tenancy::CheckCommand(*tenant_, *cmd) != tenancy::Verdict::kAllow)) {
    Reject(RejectReason::kDenied, tenancy::NoPermCommand(*cmd));
    return true;
  }
  if (rule.local != Local::kQuit && rule.local != Local::kReset) {
    Admit a = AdmitRequest();
    if (a == Admit::kWait) return false;
    if (a == Admit::kRejected) return true;
  }
  ++commands_;
  last_cmd_ns_ = Worker::NowNs();
  cur_cmd_id_ = cmd->id;
  if (counters_ != nullptr) counters_->CountRequest(cmd->id);
  if (rule.handling == Handling::kLocal) return HandleLocal(*cmd, rule);
  return DispatchForward(*cmd, rule);
}

BackendConn* ClientSession::RouteShared() {
  if (dedicated_) return dedicated_.get();
  return &worker_.Shared(proto_, id_);
}

bool ClientSession::AttachDedicated() {
  dedicated_ = worker_.TakeDedicated(proto_);
  return dedicated_ != nullptr;
}

bool ClientSession::DispatchForward(const CommandInfo& cmd, const Rule& rule) {
  if (tenancy::FindNames(rule, cmd, args_, &refs_) != tenancy::FindStatus::kOk) {
    Reject(RejectReason::kDenied, "ERR syntax error");
    return true;
  }
  if (rule.no_db_option) {
    for (size_t i = 3; i < args_.size(); ++i) {
      if (EqNoCase(args_[i], "db")) {
        Reject(RejectReason::kDenied, tenancy::NoPermCommand(cmd));
        return true;
      }
    }
  }
  for (const tenancy::NameRef& r : refs_) {
    if ((r.kind == tenancy::RefKind::kChannel || r.kind == tenancy::RefKind::kChannelPattern) &&
        args_[r.pos].substr(0, 5) == "__key") {
      Reject(RejectReason::kDenied,
             "NOPERM this user has no permissions to access one of the channels used as "
             "arguments");
      return true;
    }
  }
  if (tenancy::CheckKeys(*tenant_, cmd, args_, refs_) != tenancy::Verdict::kAllow) {
    Reject(RejectReason::kKeyRule, protocol::errors::kNoPermKey);
    return true;
  }
  // Hot keys: one request in kHotSample, weighted back up.
  if (!refs_.empty() && refs_[0].kind == tenancy::RefKind::kKey &&
      (++local_->sample & (kHotSample - 1)) == 0) {
    local_->hot.Record(args_[refs_[0].pos], kHotSample);
  }
  Route route = rule.route;
  if ((cmd.name == "xread" || cmd.name == "xreadgroup") && !in_multi_) {
    for (size_t i = 1; i < args_.size(); ++i) {
      if (EqNoCase(args_[i], "streams")) break;
      if (EqNoCase(args_[i], "block")) route = Route::kBlocking;
    }
  }
  // RESP3 clients may run any command while subscribed: on the subscriber
  // connection, in order with their replies (pushes are told apart by type).
  if (mode_ == Mode::kPubSub && route != Route::kPubSub) route = Route::kShared;
  if (worker_.cluster()) return DispatchCluster(cmd, rule, route);
  const std::string_view name = cmd.name;
  BackendConn* conn = nullptr;
  switch (route) {
    case Route::kShared:
      conn = RouteShared();
      break;
    case Route::kBlocking:
      if (!dedicated_) {
        if (inflight() > 0) return false;
        if (!AttachDedicated()) break;
        mode_ = Mode::kDedicated;
      }
      blocking_ = true;
      conn = dedicated_.get();
      break;
    case Route::kTransaction:
      if (!dedicated_) {
        if (name == "exec" || name == "discard") {
          ReplyError(name == "exec" ? "ERR EXEC without MULTI" : "ERR DISCARD without MULTI");
          return true;
        }
        if (name == "unwatch") {
          ReplySimple("OK");
          return true;
        }
        if (inflight() > 0) return false;
        if (!AttachDedicated()) break;
        mode_ = Mode::kDedicated;
      }
      conn = dedicated_.get();
      break;
    case Route::kPubSub:
      if (mode_ != Mode::kPubSub) {
        if (inflight() > 0 || dedicated_) {
          if (inflight() > 0) return false;
          ReplyError("ERR keyfence: SUBSCRIBE is not allowed inside a transaction");
          return true;
        }
        if (!AttachDedicated()) break;
        dedicated_->set_unsolicited(this);
        mode_ = Mode::kPubSub;
      }
      conn = dedicated_.get();
      break;
  }
  if (conn == nullptr || !conn->Available()) {
    ReplyError(conn != nullptr ? conn->down_error()
                               : std::string_view("ERR keyfence: no backend connection"));
    if (conn != nullptr && conn->dedicated()) {
      dedicated_.reset();
      mode_ = Mode::kNormal;
      in_multi_ = watching_ = blocking_ = false;
    }
    return true;
  }
  if (name == "exec" && multi_error_) {
    // A queued command failed here (denied, unknown, arity): like Redis, the
    // transaction is discarded.
    protocol::AppendCommand(conn->out(), {"DISCARD"});
    conn->MarkDirty();
    in_multi_ = watching_ = multi_error_ = false;
    multi_rules_.clear();
    Slot& slot = NewSlot(ReplyRule::kNone);
    slot.replace = true;
    slot.pattern = "EXECABORT Transaction discarded because of previous errors.";
    conn->Push(this, slot.seq);
    return true;
  }
  tenancy::WriteRequest(args_, refs_, tenant_->prefix, conn->out());
  conn->MarkDirty();
  if (route == Route::kPubSub) return true;  // replies arrive as unsolicited frames
  ReplyRule reply = rule.reply;
  bool exec = false;
  if (name == "multi") {
    in_multi_ = true;
    multi_error_ = false;
    multi_rules_.clear();
  } else if (name == "exec" || name == "discard") {
    exec = name == "exec";
    in_multi_ = false;
    watching_ = false;
  } else if (name == "watch") {
    watching_ = true;
  } else if (name == "unwatch") {
    watching_ = false;
  } else if (in_multi_) {
    multi_rules_.emplace_back(reply, std::string());
    reply = ReplyRule::kNone;
  }
  Slot& slot = NewSlot(reply);
  if (exec) slot.exec_rules = std::move(multi_rules_);
  conn->Push(this, slot.seq);
  return true;
}

void ClientSession::OnUnsolicited(std::string_view frame) {
  if (closed_) return;
  TrackSubscriptions(frame);
  tenancy::ReplyContext ctx{tenant_->prefix, "", proto_};
  tenancy::RewriteReply(ReplyRule::kPubSub, frame, ctx, out_);
  worker_.MarkDirty(this);
  if (mode_ == Mode::kPubSub && classic_subs_ == 0 && shard_subs_ == 0) {
    // Unsubscribed from everything: the connection is clean again and goes
    // back to the pool once its other requests (RESP3) are answered.
    mode_ = Mode::kDedicated;
    dedicated_->set_unsolicited(nullptr);
    MaybeReleaseDedicated();
  }
}

void ClientSession::OnBackendClosed() {
  if (mode_ != Mode::kPubSub) return;
  CloseWithError("ERR keyfence: subscriber connection to the backend was lost");
}

void ClientSession::Flush() {
  if (closed_ || write_in_flight_) return;
  if (out_.empty()) {
    if (close_after_flush_ && slots_.empty()) Close();
    return;
  }
  uint64_t limit = tenant_ != nullptr ? tenant_->limits.client_output_buffer_bytes : 0;
  if (limit > 0 && out_.size() > limit) {
    spdlog::warn("client {} tenant {}: output buffer over {} bytes, closing", id_, tenant_name_,
                 limit);
    return Close();
  }
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  auto alive = alive_;
  asio::async_write(socket_, asio::buffer(writing_),
                    [this, alive](const boost::system::error_code& ec, size_t) {
                      if (!*alive) return;
                      write_in_flight_ = false;
                      writing_.clear();
                      if (ec) return Close();
                      if (writing_.capacity() > 1024 * 1024) std::string().swap(writing_);
                      if (!out_.empty() || close_after_flush_) Flush();
                      if (read_paused_ && out_.size() <= kOutputPause && slots_.size() < kMaxInflight)
                        Resume();
                    });
}

void ClientSession::CloseWithError(std::string_view error) {
  if (closed_ || close_after_flush_) return;
  discard_this_ = false;
  ReplyError(error);  // after the replies to the requests before it
  close_after_flush_ = true;
  worker_.MarkDirty(this);
}

void ClientSession::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  worker_.mux().Remove(socket_.native_handle());
  socket_.close(ec);
  worker_.ForgetEverywhere(this);
  for (auto& f : fanouts_) worker_.ForgetEverywhere(f.get());
  fanouts_.clear();
  jobs_.clear();
  if (dedicated_) {
    dedicated_->set_unsolicited(nullptr);
    dedicated_->Forget(this);
    BackendConn* c = dedicated_.release();
    asio::post(worker_.io(), [c] { delete c; });
  }
  LeaveTenant();
  if (delay_timer_) delay_timer_->cancel();
  worker_.SessionClosed(this);
}

void ClientSession::JobDone(ScanJob* job) {
  for (auto& j : jobs_) {
    if (j.get() == job) {
      ScanJob* raw = j.release();
      asio::post(worker_.io(), [raw] { delete raw; });
      break;
    }
  }
  std::erase_if(jobs_, [](const auto& p) { return p == nullptr; });
}

}  // namespace keyfence::proxy
