#include "proxy/client_session.h"

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
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

namespace {
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxInflight = 1024;           // pipelined requests per client
constexpr size_t kOutputPause = 4 * 1024 * 1024;  // stop reading above this backlog
// Before AUTH on a gateway listener (like Redis processMultibulkBuffer).
constexpr size_t kPreAuthMaxArgs = 10;
constexpr size_t kPreAuthMaxBulk = 16 * 1024;
constexpr uint32_t kHotSample = 8;  // power of two
constexpr size_t kSlotKeep = 64 * 1024;   // slot reply buffers above this are freed
constexpr size_t kInputKeep = 64 * 1024;  // idle read buffers above this shrink

bool EqNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x += 32;
    if (y >= 'A' && y <= 'Z') y += 32;
    if (x != y) return false;
  }
  return true;
}
}  // namespace

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

bool ClientSession::SetTenant(const config::Tenant* t) {
  if (t == nullptr) return false;
  if (tenant_ == t) return true;
  TenantLocal& local = worker_.Tenant(t->app);
  if (tenant_ == nullptr || tenant_->app != t->app) {
    // max_connections per tenant, counted across workers (connect/auth time only).
    int64_t n = local.shared->connections.fetch_add(1, std::memory_order_relaxed) + 1;
    if (t->limits.max_connections > 0 && n > static_cast<int64_t>(t->limits.max_connections)) {
      local.shared->connections.fetch_sub(1, std::memory_order_relaxed);
      local.counters->CountRejected(RejectReason::kRateLimit);
      return false;
    }
    LeaveTenant();
    counted_connection_ = true;
    local.counters->AddConnection(1);
  }
  tenant_ = t;
  tenant_name_ = t->app;
  prefix_crc_ = protocol::Crc16(t->prefix.data(), t->prefix.size());
  local_ = &local;
  counters_ = local.counters;
  ApplyLimits();
  return true;
}

void ClientSession::LeaveTenant() {
  if (counted_connection_ && local_ != nullptr) {
    local_->shared->connections.fetch_sub(1, std::memory_order_relaxed);
    local_->counters->AddConnection(-1);
  }
  counted_connection_ = false;
  tenant_ = nullptr;
  local_ = nullptr;
  counters_ = nullptr;
}

// Big values are counted always and logged at most once a second per tenant
// and worker, with the tenant, the connection and the key (requests) or the
// command (replies).
void ClientSession::NoteBig(bool reply, size_t bytes, std::string_view what) {
  local_->counters->CountBig(reply);
  uint64_t now = Worker::NowNs();
  if (now - local_->big_log_ns < 1000000000ull) return;
  local_->big_log_ns = now;
  std::string shown(what.substr(0, 128));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  spdlog::warn("big {}: tenant={} conn={} {}={} bytes={}", reply ? "reply" : "request",
               tenant_->app, id_, reply ? "command" : "key", shown, bytes);
}

ClientSession::Admit ClientSession::AdmitRequest() {
  if (local_ == nullptr || local_->ops.unlimited()) return Admit::kGo;
  uint64_t now = Worker::NowNs();
  if (local_->ops.TryTake(1, now)) {
    delay_deadline_ns_ = 0;
    return Admit::kGo;
  }
  if (tenant_->limits.on_limit == config::OnLimit::kDelay) {
    if (delay_deadline_ns_ == 0) {
      delay_deadline_ns_ = now + uint64_t{tenant_->limits.max_delay_ms} * 1000000;
    }
    if (now < delay_deadline_ns_) {
      uint64_t wait = std::min(std::max<uint64_t>(local_->ops.WaitNs(1), 200000),
                               delay_deadline_ns_ - now);
      if (!delay_timer_) delay_timer_ = std::make_unique<asio::steady_timer>(worker_.io());
      delay_timer_->expires_after(std::chrono::nanoseconds(wait));
      auto alive = alive_;
      delay_timer_->async_wait([this, alive](const boost::system::error_code& ec) {
        if (!ec && *alive) Resume();
      });
      return Admit::kWait;
    }
  }
  delay_deadline_ns_ = 0;
  Reject(RejectReason::kRateLimit, "RATELIMIT tenant '" + tenant_->app +
                                       "' is over its limit of " +
                                       std::to_string(tenant_->limits.ops_per_sec) + " ops/s");
  return Admit::kRejected;
}

void ClientSession::ApplyLimits() {
  protocol::RequestLimits l;
  if (tenant_ != nullptr) {
    l.max_bulk_len = tenant_->limits.max_request_bytes;
  } else {
    l.max_args = kPreAuthMaxArgs;
    l.max_bulk_len = kPreAuthMaxBulk;
    l.max_inline_len = kPreAuthMaxBulk;
  }
  parser_.set_limits(l);
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
  TenantCounters* c =
      counters_ != nullptr ? counters_ : &worker_.metrics().ForTenant("unauthenticated");
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

ClientSession::Slot& ClientSession::NewSlot(ReplyRule rule) {
  if (slots_.empty()) head_seq_ = next_seq_;
  Slot& s = slots_.push_back();
  s.seq = next_seq_++;
  s.ready = false;
  s.discard = discard_this_;
  s.rule = rule;
  s.pattern.clear();
  s.data.clear();
  s.replace = false;
  s.exec_rules.clear();
  s.start_ns = last_cmd_ns_;
  s.cmd_id = cur_cmd_id_;
  return s;
}

void ClientSession::WriteReply(Slot& slot, std::string_view frame, std::string& out) {
  if (slot.discard) return;
  if (slot.replace) {
    protocol::AppendError(out, slot.pattern);
    return;
  }
  if (!frame.empty() && (frame[0] == '-' || frame[0] == '!') && tenant_ != nullptr) {
    tenancy::AppendErrorStripped(frame, tenant_->prefix, out);
    return;
  }
  if (!slot.exec_rules.empty()) {
    tenancy::ReplyContext ctx{tenant_ != nullptr ? std::string_view(tenant_->prefix) : "",
                              "", proto_};
    tenancy::RewriteExec(frame, slot.exec_rules, ctx, out);
    return;
  }
  if (slot.rule == ReplyRule::kNone) {
    out.append(frame);
    return;
  }
  tenancy::ReplyContext ctx{tenant_ != nullptr ? std::string_view(tenant_->prefix) : "",
                            slot.pattern, proto_};
  tenancy::RewriteReply(slot.rule, frame, ctx, out);
}

void ClientSession::OnReply(uint64_t tag, std::string_view frame) {
  if (closed_ || slots_.empty() || tag < head_seq_) return;
  size_t idx = static_cast<size_t>(tag - head_seq_);
  if (idx >= slots_.size()) return;
  Slot& slot = slots_.at(idx);
  uint64_t now = Worker::NowNs();
  if (local_ != nullptr) {
    local_->counters->ObserveLatencyNs(now - slot.start_ns);
    if (!local_->bytes.unlimited()) local_->bytes.Charge(static_cast<double>(frame.size()), now);
    if (frame.size() > tenant_->limits.big_value_bytes) {
      NoteBig(true, frame.size(), protocol::CommandTable::Get().ById(slot.cmd_id).name);
    }
  }
  if (idx == 0) {
    WriteReply(slot, frame, out_);
    slots_.pop_front();
    ++head_seq_;
    DeliverReady();
  } else {
    slot.data.clear();
    WriteReply(slot, frame, slot.data);
    slot.discard = false;  // already applied
    slot.ready = true;
  }
  worker_.MarkDirty(this);
}

void ClientSession::CompleteSlot(uint64_t seq, std::string_view reply) {
  if (closed_ || slots_.empty() || seq < head_seq_) return;
  size_t idx = static_cast<size_t>(seq - head_seq_);
  if (idx >= slots_.size()) return;
  Slot& slot = slots_.at(idx);
  slot.data.assign(slot.discard ? std::string_view() : reply);
  slot.ready = true;
  DeliverReady();
  worker_.MarkDirty(this);
}

void ClientSession::DeliverReady() {
  while (!slots_.empty() && slots_.front().ready) {
    Slot& s = slots_.front();
    if (!s.discard) out_.append(s.data);
    if (s.data.capacity() > kSlotKeep) std::string().swap(s.data);  // after a big reply
    slots_.pop_front();
    ++head_seq_;
  }
  MaybeReleaseDedicated();
  if (slots_.empty() && read_paused_) {
    auto alive = alive_;
    asio::post(worker_.io(), [this, alive] {
      if (*alive) Resume();
    });
  }
}

void ClientSession::MaybeReleaseDedicated() {
  if (mode_ != Mode::kDedicated || !dedicated_ || in_multi_ || watching_) return;
  if (dedicated_->pending() > 0 || !slots_.empty()) return;
  blocking_ = false;
  mode_ = Mode::kNormal;
  worker_.ReturnDedicated(std::move(dedicated_));
}

std::string& ClientSession::LocalReply() {
  if (slots_.empty() && !discard_this_) return out_;
  Slot& s = NewSlot(ReplyRule::kNone);
  s.ready = true;
  return s.data;
}

void ClientSession::FinishLocal() {
  if (!slots_.empty() && slots_.back().ready && slots_.size() == 1) DeliverReady();
  worker_.MarkDirty(this);
}

void ClientSession::ReplyError(std::string_view e) {
  protocol::AppendError(LocalReply(), e);
  FinishLocal();
}
void ClientSession::ReplySimple(std::string_view s) {
  protocol::AppendSimple(LocalReply(), s);
  FinishLocal();
}
void ClientSession::ReplyInteger(int64_t v) {
  protocol::AppendInteger(LocalReply(), v);
  FinishLocal();
}
void ClientSession::ReplyBulk(std::string_view s) {
  protocol::AppendBulk(LocalReply(), s);
  FinishLocal();
}
void ClientSession::ReplyNull() {
  protocol::AppendNull(LocalReply(), proto_);
  FinishLocal();
}

void ClientSession::SendBuilt(BackendConn& conn, std::string_view bytes, ReplyRule rule,
                              std::string_view pattern) {
  conn.out().append(bytes);
  conn.MarkDirty();
  if (in_multi_) {
    multi_rules_.emplace_back(rule, std::string(pattern));
    rule = ReplyRule::kNone;
  }
  Slot& s = NewSlot(rule);
  s.pattern.assign(pattern);
  conn.Push(this, s.seq);
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
