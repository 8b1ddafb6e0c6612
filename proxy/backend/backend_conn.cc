#include "proxy/backend/backend_conn.h"
#include "protocol/error_replies.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "protocol/writer.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr uint64_t kBackoffMinMs = 50;
constexpr uint64_t kBackoffMaxMs = 2000;
constexpr size_t kReadChunk = 16 * 1024;
}  // namespace

BackendConn::BackendConn(BackendHost& host, config::Endpoint endpoint, int proto, bool dedicated,
                         const BackendUser* user)
    : host_(host),
      loop_(host.loop()),
      endpoint_(std::move(endpoint)),
      proto_(proto),
      dedicated_(dedicated),
      user_(user),
      socket_(host.loop().io()),
      timer_(host.loop().io()),
      framer_(protocol::ReplyLimits{}),
      alive_(std::make_shared<bool>(true)) {}

BackendConn::~BackendConn() {
  *alive_ = false;
  host_.loop().Unmark(this);
  boost::system::error_code ec;
  socket_.close(ec);
  timer_.cancel();
}

bool BackendConn::Reconnectable() {
  if (state_ == State::kBackoff) {
    if (Loop::NowNs() < backoff_until_ns_) return false;
    state_ = State::kIdle;
  }
  if (state_ == State::kClosed) return false;
  if (state_ == State::kIdle) Connect();
  return state_ != State::kBackoff && state_ != State::kClosed;
}

void BackendConn::Connect() {
  state_ = State::kConnecting;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(endpoint_.host, ec);
  if (ec) {
    // Host names are resolved synchronously once per connect (cold path).
    tcp::resolver resolver(host_.loop().io());
    auto results = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
    if (ec || results.empty()) return Fail("cannot resolve the host name");
    addr = results.begin()->endpoint().address();
  }
  framer_.Reset();
  in_.Consume(in_.Size());
  // Handshake first: AUTH, then HELLO 3 on RESP3 connections. Requests that
  // arrive meanwhile are queued behind it in out_.
  std::string hs;
  const auto& be = host_.settings();
  handshake_replies_ = 0;
  if (user_ != nullptr) {
    protocol::AppendCommand(hs, {"AUTH", user_->name, user_->password});
    ++handshake_replies_;
  } else if (!be.password.empty()) {
    if (be.username.empty()) {
      protocol::AppendCommand(hs, {"AUTH", be.password});
    } else {
      protocol::AppendCommand(hs, {"AUTH", be.username, be.password});
    }
    ++handshake_replies_;
  }
  if (proto_ == 3) {
    protocol::AppendCommand(hs, {"HELLO", "3"});
    ++handshake_replies_;
  }
  if (readonly_) {
    protocol::AppendCommand(hs, {"READONLY"});
    ++handshake_replies_;
  }
  out_.insert(0, hs);
  socket_ = tcp::socket(host_.loop().io());
  auto alive = alive_;
  timer_.expires_after(std::chrono::milliseconds(be.connect_timeout_ms));
  timer_.async_wait([this, alive](const boost::system::error_code& e) {
    if (!*alive || e || state_ != State::kConnecting) return;
    Fail("connect timeout");
  });
  socket_.async_connect(tcp::endpoint(addr, endpoint_.port),
                        [this, alive](const boost::system::error_code& e) {
                          if (!*alive) return;
                          OnConnected(e);
                        });
}

void BackendConn::OnConnected(const boost::system::error_code& ec) {
  if (state_ != State::kConnecting) return;
  timer_.cancel();
  if (ec) return Fail(ec.message());
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);
  state_ = State::kReady;
  backoff_ms_ = 0;
  StartRead();
  Flush();
}


void BackendConn::Flush() {
  if (state_ != State::kReady || write_in_flight_ || out_.empty()) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  auto alive = alive_;
  asio::async_write(socket_, asio::buffer(writing_),
                    [this, alive](const boost::system::error_code& ec, size_t n) {
                      if (!*alive) return;
                      OnWrite(ec, n);
                    });
}

void BackendConn::OnWrite(const boost::system::error_code& ec, size_t) {
  write_in_flight_ = false;
  writing_.clear();
  if (writing_.capacity() > 1024 * 1024) std::string().swap(writing_);
  if (ec) return Fail(ec.message());
  if (!out_.empty()) Flush();
}

// Same read discipline as ClientSession::StartRead: wait for readiness only
// when the socket is drained, so no read returns EAGAIN in steady state.
void BackendConn::StartRead() {
  if (read_in_flight_ || state_ != State::kReady) return;
  read_in_flight_ = true;
  auto alive = alive_;
  socket_.async_wait(asio::socket_base::wait_read,
                     [this, alive](const boost::system::error_code& ec) {
                       if (!*alive) return;
                       read_in_flight_ = false;
                       if (ec) {
                         if (ec != asio::error::operation_aborted) Fail(ec.message());
                         return;
                       }
                       ReadReady();
                     });
}

void BackendConn::ReadReady() {
  auto alive = alive_;
  for (;;) {
    char* p = in_.Prepare(kReadChunk);
    size_t room = in_.Writable();
    boost::system::error_code ec;
    size_t n = socket_.read_some(asio::buffer(p, room), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) return Fail(ec == asio::error::eof ? "connection closed by backend" : ec.message());
    in_.Commit(n);
    if (!DeliverFrames()) return;
    if (!*alive || state_ != State::kReady) return;
    if (n < room) break;
  }
  host_.loop().ScheduleFlush();
  in_.ShrinkIfIdle(256 * 1024);
  StartRead();
}

// Matches complete replies to waiting sinks. False if this connection failed
// or was destroyed meanwhile.
bool BackendConn::DeliverFrames() {
  auto alive = alive_;
  while (!in_.Empty()) {
    size_t consumed = 0;
    protocol::ParseStatus st = framer_.Frame(in_.Data(), in_.Size(), &consumed);
    if (st == protocol::ParseStatus::kNeedMore) {
      size_t want = framer_.hint_total();
      if (want > in_.Size()) in_.Prepare(want - in_.Size());
      break;
    }
    if (st == protocol::ParseStatus::kError) {
      Fail("protocol error in backend reply");
      return false;
    }
    std::string_view frame(in_.Data(), consumed);
    if (handshake_replies_ > 0) {
      --handshake_replies_;  // internal: no Pending entry
      if (!frame.empty() && (frame[0] == '-' || frame[0] == '!')) {
        spdlog::error("backend {} rejected the handshake: {}", endpoint_.ToString(),
                      std::string(frame.substr(0, frame.find('\r'))));
        Fail("backend handshake failed");
        return false;
      }
    } else if (pending_.empty() || framer_.is_push()) {
      if (unsolicited_ != nullptr) unsolicited_->OnUnsolicited(frame);
      if (!*alive) return false;
    } else {
      Pending p = pending_.front();
      pending_.pop_front();
      if (p.sink != nullptr) p.sink->OnReply(p.tag, frame);
      if (!*alive) return false;
    }
    in_.Consume(consumed);
  }
  return true;
}

void BackendConn::Forget(ReplySink* sink) {
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (pending_.at(i).sink == sink) pending_.at(i).sink = nullptr;
  }
}

bool BackendConn::CheckTimeout(uint64_t now_ns, uint64_t timeout_ns) {
  if (pending_.empty()) return false;
  if (now_ns - pending_.front().sent_ns < timeout_ns) return false;
  spdlog::warn("backend {}: request timed out, closing the connection", endpoint_.ToString());
  host_.metrics().CountBackendError(endpoint_.ToString(), "timeout");
  FailPending(protocol::errors::kBackendTimeout);
  Close("timeout");
  return true;
}

void BackendConn::FailPending(std::string_view error_line) {
  std::string frame;
  protocol::AppendError(frame, error_line);
  auto alive = alive_;
  handshake_replies_ = 0;  // internal: no Pending entries
  while (!pending_.empty()) {
    Pending p = pending_.front();
    pending_.pop_front();
    if (p.sink != nullptr) p.sink->OnReply(p.tag, frame);
    if (!*alive) return;
  }
}

// Drops the socket and everything queued or half-read on it.
void BackendConn::ResetSocket() {
  boost::system::error_code ec;
  socket_.close(ec);
  timer_.cancel();
  out_.clear();
  writing_.clear();
  write_in_flight_ = false;
  read_in_flight_ = false;
  framer_.Reset();
  in_.Consume(in_.Size());
}

void BackendConn::NotifyClosed() {
  if (unsolicited_ == nullptr) return;
  UnsolicitedSink* u = unsolicited_;
  unsolicited_ = nullptr;
  u->OnBackendClosed();
}

void BackendConn::Close(std::string_view reason) {
  spdlog::debug("backend {}: closing ({})", endpoint_.ToString(), reason);
  ResetSocket();
  state_ = dedicated_ ? State::kClosed : State::kIdle;
  NotifyClosed();
}

void BackendConn::Fail(std::string_view why) {
  if (state_ == State::kClosed) return;
  spdlog::warn("backend {}: {}", endpoint_.ToString(), why);
  host_.metrics().CountBackendError(endpoint_.ToString(), "connect");
  down_error_ = protocol::errors::BackendUnavailable(why);
  auto alive = alive_;
  ResetSocket();
  backoff_ms_ = backoff_ms_ == 0 ? kBackoffMinMs : std::min(backoff_ms_ * 2, kBackoffMaxMs);
  backoff_until_ns_ = Loop::NowNs() + backoff_ms_ * 1000000;
  state_ = dedicated_ ? State::kClosed : State::kBackoff;
  FailPending(down_error_);
  if (!*alive) return;
  NotifyClosed();
  if (*alive) host_.loop().FlushDirty();
}

}  // namespace keyfence::proxy
