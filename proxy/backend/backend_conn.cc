#include "proxy/backend/backend_conn.h"

#include "proxy/backend/node_health.h"
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
  tls_.reset();
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
  timer_.async_wait([this, alive, gen = ++timer_gen_](const boost::system::error_code& e) {
    // (gen: a completion already queued when the timer was re-armed is stale)
    if (!*alive || e || state_ != State::kConnecting || gen != timer_gen_) return;
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
  if (auto ctx = host_.backend_tls()) {
    tls_ = std::make_unique<TlsClient>(std::move(ctx), socket_.native_handle(), endpoint_.host);
    // The connect timeout keeps running: it bounds the handshake too.
    auto alive = alive_;
    timer_.expires_after(std::chrono::milliseconds(host_.settings().connect_timeout_ms));
    timer_.async_wait([this, alive, gen = ++timer_gen_](const boost::system::error_code& e) {
      if (!*alive || e || state_ != State::kConnecting || gen != timer_gen_) return;
      Fail("TLS handshake timeout");
    });
    return ContinueHandshake();
  }
  Ready();
}

void BackendConn::Ready() {
  state_ = State::kReady;
  node_health::NoteUp(endpoint_.ToString());
  backoff_ms_ = 0;
  StartRead();
  Flush();
}

void BackendConn::WaitSocket(asio::socket_base::wait_type w, void (BackendConn::*then)()) {
  auto alive = alive_;
  socket_.async_wait(w, [this, alive, then](const boost::system::error_code& ec) {
    if (!*alive || ec == asio::error::operation_aborted) return;
    if (ec) return Fail(ec.message());
    (this->*then)();
  });
}

void BackendConn::ContinueHandshake() {
  if (state_ != State::kConnecting) return;
  switch (tls_->Handshake()) {
    case TlsClient::Io::kDone:
      timer_.cancel();
      return Ready();
    case TlsClient::Io::kWantRead:
      return WaitSocket(asio::socket_base::wait_read, &BackendConn::ContinueHandshake);
    case TlsClient::Io::kWantWrite:
      return WaitSocket(asio::socket_base::wait_write, &BackendConn::ContinueHandshake);
    case TlsClient::Io::kClosed:
    case TlsClient::Io::kError:
      spdlog::error("backend {}: TLS handshake failed: {}", endpoint_.ToString(),
                    tls_->error_text());
      return Fail("TLS handshake failed");
  }
}

// backend.tls: SSL_write until writing_ is out or the socket is full (then
// wait for it to be writable); completes like async_write.
void BackendConn::ContinueTlsWrite() {
  while (tls_written_ < writing_.size()) {
    TlsClient::Io io;
    const size_t n = tls_->Write(writing_.data() + tls_written_, writing_.size() - tls_written_, &io);
    if (n > 0) {
      tls_written_ += n;
      continue;
    }
    if (io == TlsClient::Io::kWantWrite || io == TlsClient::Io::kWantRead) {
      return WaitSocket(io == TlsClient::Io::kWantWrite ? asio::socket_base::wait_write
                                                         : asio::socket_base::wait_read,
                        &BackendConn::ContinueTlsWrite);
    }
    return CompleteTlsWrite(asio::error::connection_reset);
  }
  CompleteTlsWrite({});
}

// Like an asio completion, never inside Flush() itself.
void BackendConn::CompleteTlsWrite(const boost::system::error_code& ec) {
  auto alive = alive_;
  asio::post(loop_.io(), [this, alive, ec, gen = socket_gen_] {
    if (*alive && gen == socket_gen_) OnWrite(ec, tls_written_);  // not a later socket's
  });
}


void BackendConn::Flush() {
  if (state_ != State::kReady || write_in_flight_ || out_.empty()) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  if (tls_) {
    tls_written_ = 0;
    return ContinueTlsWrite();
  }
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
    size_t n;
    if (tls_) {
      TlsClient::Io io;
      n = tls_->Read(p, room, &io);
      if (n == 0) {
        // Only this says the socket is drained: a read returns one TLS record,
        // and the rest may wait in the kernel (the readiness wait is
        // edge-triggered and would not fire for it).
        if (io == TlsClient::Io::kWantRead || io == TlsClient::Io::kWantWrite) break;
        return Fail(io == TlsClient::Io::kClosed ? std::string("connection closed by backend")
                                                 : "TLS: " + tls_->error_text());
      }
    } else {
      n = socket_.read_some(asio::buffer(p, room), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) return Fail(ec == asio::error::eof ? "connection closed by backend" : ec.message());
    }
    in_.Commit(n);
    if (!DeliverFrames()) return;
    if (!*alive || state_ != State::kReady) return;
    if (n < room && !tls_) break;  // plain: a short read drained the socket
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
  ++socket_gen_;
  tls_.reset();
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
  // One line per outage of the node (node_health), not one per connection and attempt.
  // A connection that could not be made: one line per outage of the node (node_health).
  // One that was up and failed (a TLS alert at the first read, a reset) says why itself:
  // that is no outage of the node (an idle timeout, CLIENT KILL).
  if (state_ == State::kConnecting) {
    spdlog::debug("backend {}: {}", endpoint_.ToString(), why);
    node_health::NoteFailure(endpoint_.ToString(), why);
  } else {
    spdlog::warn("backend {}: {}", endpoint_.ToString(), why);
  }
  host_.metrics().CountBackendError(endpoint_.ToString(), "connect");
  // Before the connection was up nothing was written: the requests waiting
  // did not run, and say so (a router may send them elsewhere).
  down_error_ = state_ == State::kConnecting
                    ? protocol::errors::BackendUnavailable(
                          std::string(protocol::errors::kNotSent) + std::string(why))
                    : protocol::errors::BackendUnavailable(why);
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
