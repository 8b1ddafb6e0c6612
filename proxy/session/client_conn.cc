#include "proxy/session/client_conn.h"

#include <sys/ioctl.h>

#include "protocol/error_replies.h"
#include "protocol/writer.h"
#include "proxy/session/session_limits.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
using namespace session;  // NOLINT: the session's named limits

ClientConn::ClientConn(Loop& loop, std::unique_ptr<ClientStream> stream, RequestHandler& handler)
    : loop_(loop),
      stream_(std::move(stream)),
      handler_(handler),
      alive_(std::make_shared<bool>(true)),
      peer_(stream_->Peer()),
      fd_(stream_->native_handle()) {}

ClientConn::~ClientConn() {
  if (buffered_at_ != nullptr) AccountBuffered(nullptr, 0);
  *alive_ = false;
  loop_.Unmark(this);
}

bool ClientConn::Start() {
  if (!loop_.mux().Add(fd_, this)) return false;
  reading_enabled_ = true;
  return true;
}

void ClientConn::StartRead() {
  if (closing()) return;
  bool want = !read_paused_;
  if (want != reading_enabled_) {
    reading_enabled_ = want;
    loop_.mux().Enable(fd_, this, want);
  }
}

void ClientConn::OnReadable() {
  if (!closed_) ReadReady();
}

// One read per wake-up unless the buffer filled up (or the stream holds
// buffered bytes the fd will not signal again), and at most kReadTurnBytes
// per wake-up: a client pipelining without pause is read again on the next
// turn (the socket stays readable, level-triggered), after every other ready
// client and the backend replies, so it cannot starve its worker's others.
void ClientConn::ReadReady() {
  size_t turn = 0;
  for (;;) {
    if (read_paused_ || close_after_flush_) break;
    char* p = in_.Prepare(kReadChunk);
    size_t room = in_.Writable();
    boost::system::error_code ec;
    size_t n = stream_->ReadSome(p, room, ec);
    if (handshake_pending_ && !stream_->handshaking()) {
      handshake_pending_ = false;
      handler_.OnHandshake(stream_->peer_cert());
      if (closing()) return;
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) return Close();
    in_.Commit(n);
    ++reads_;
    if (net_ != nullptr) net_->CountNetIn(n);
    ProcessInput();
    if (closed_) return;
    turn += n;
    if (n < room && stream_->buffered() == 0) break;
    if (turn >= kReadTurnBytes) {
      if (stream_->buffered() > 0) ReadSoon();  // the fd will not say so again
      break;
    }
  }
  in_.ShrinkIfIdle(kInputKeep);  // give back what a big request needed
  loop_.ScheduleFlush();
  StartRead();
}

bool ClientConn::Quiet() {
  const bool read_since = reads_ != reads_seen_;
  reads_seen_ = reads_;
  if (closed_) return true;
  if (read_since || !replies_.empty() || pending_output() > 0 || write_in_flight_ ||
      in_.Size() > 0 || stream_->buffered() > 0) {
    return false;
  }
  int unread = 0;
  return ::ioctl(fd_, FIONREAD, &unread) != 0 || unread == 0;
}

void ClientConn::Resume() {
  if (closed_ || !read_paused_) return;
  read_paused_ = false;
  ProcessInput();
  loop_.ScheduleFlush();
  StartRead();
}

void ClientConn::ReadSoon() {
  auto alive = alive_;
  asio::post(loop_.io(), [this, alive] {
    if (*alive && !closed_) ReadReady();
  });
}

void ClientConn::ResumeSoon() {
  if (!read_paused_) return;
  auto alive = alive_;
  asio::post(loop_.io(), [this, alive] {
    if (*alive) Resume();
  });
}

void ClientConn::BadInput(RejectReason reason, std::string_view error) {
  handler_.OnBadInput(reason);
  CloseWithError(error);
}

void ClientConn::ProcessInput() {
  if (processing_) return;
  processing_ = true;
  while (!in_.Empty() && !closing()) {
    if (replies_.size() >= kMaxInflight || out_.size() > kOutputPause) {
      read_paused_ = true;
      break;
    }
    size_t consumed = 0;
    protocol::ParseStatus st = parser_.Parse(in_.Data(), in_.Size(), &consumed);
    const uint64_t max_request = handler_.max_request_bytes();
    if (st == protocol::ParseStatus::kNeedMore) {
      size_t want = parser_.hint_total();
      if (want > max_request || in_.Size() > max_request) {
        BadInput(RejectReason::kTooLarge, protocol::errors::kRequestTooLarge);
        break;
      }
      // A declared bulk reserves at most as much again as has arrived (and
      // 64 KiB): a header alone cannot make keyfence reserve 512 MB.
      if (want > in_.Size()) {
        in_.Prepare(std::min(want - in_.Size(), std::max(in_.Size(), kMinReadAhead)));
      }
      break;
    }
    if (st == protocol::ParseStatus::kError) {
      BadInput(RejectReason::kProtocol, protocol::errors::ProtocolError(parser_.error_text()));
      break;
    }
    if (consumed > max_request) {
      BadInput(RejectReason::kTooLarge, protocol::errors::kRequestTooLarge);
      break;
    }
    args_.clear();
    for (size_t i = 0; i < parser_.argc(); ++i) args_.push_back(parser_.arg(i));
    if (!args_.empty() && !handler_.OnRequest(args_, consumed)) {
      read_paused_ = true;  // a barrier: this request again once nothing is in flight
      break;
    }
    in_.Consume(consumed);
  }
  processing_ = false;
}

bool ClientConn::CheckOutput(uint64_t now_ns, bool grew) {
  if (closed_) return false;
  const size_t pending = pending_output();
  if (pending == 0) {
    if (buffered_at_ != nullptr) AccountBuffered(nullptr, 0);
    over_soft_since_ns_ = 0;
    return true;
  }
  const OutputLimits l = handler_.output_limits();
  if (l.hard > 0 && pending > l.hard) {
    handler_.OnOutputOverLimit(l.hard, OutputLimit::kHard);
    Drop();
    return false;
  }
  if (pending >= kTenantBufferFloor || buffered_at_ != nullptr) {
    grew = grew && static_cast<int64_t>(pending) > buffered_;  // a draining reader is not growing
    const int64_t total = AccountBuffered(l.tenant_buffered, pending);
    if (grew && l.tenant > 0 && buffered_at_ != nullptr && total > static_cast<int64_t>(l.tenant)) {
      handler_.OnOutputOverLimit(l.tenant, OutputLimit::kTenant);
      Drop();
      return false;
    }
  }
  if (l.soft == 0 || pending <= l.soft) {
    over_soft_since_ns_ = 0;
    return true;
  }
  if (now_ns == 0) now_ns = Loop::NowNs();  // read only when over the soft limit
  if (over_soft_since_ns_ == 0) over_soft_since_ns_ = now_ns;
  if (now_ns - over_soft_since_ns_ < l.soft_ns) return true;
  handler_.OnOutputOverLimit(l.soft, OutputLimit::kSoft);
  Drop();
  return false;
}

void ClientConn::Flush() {
  if (closed_) return;
  // Every turn that adds output, even while a write is in flight: a client
  // that does not read cannot pile up more than its limit.
  if (!out_.empty() && !CheckOutput(0, true)) return;
  if (write_in_flight_) return;
  if (out_.empty()) {
    if (close_after_flush_ && replies_.empty()) Close();
    return;
  }
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  stream_->AsyncWrite(writing_.data(), writing_.size(), this);
}

void ClientConn::OnWritten(const boost::system::error_code& ec) {
  write_in_flight_ = false;
  if (net_ != nullptr && !ec) net_->CountNetOut(writing_.size());
  writing_.clear();
  if (ec) return Close();
  if (writing_.capacity() > 1024 * 1024) std::string().swap(writing_);
  if (buffered_at_ != nullptr) CheckOutput(0, false);  // the tenant's count goes down
  if (!out_.empty() || close_after_flush_) Flush();
  if (read_paused_ && out_.size() <= kOutputPause && replies_.size() < kMaxInflight) Resume();
}

void ClientConn::CloseWithError(std::string_view error) {
  if (closing()) return;
  protocol::AppendError(replies_.LocalReply(false, 0, 0), error);
  replies_.FinishLocal();
  close_after_flush_ = true;
  MarkDirty();
}

// This connection's part of its tenant's buffered bytes: `pending` at `at`
// (nothing below kTenantBufferFloor); returns the tenant's total.
int64_t ClientConn::AccountBuffered(std::atomic<int64_t>* at, size_t pending) {
  const int64_t want = (at != nullptr && pending >= kTenantBufferFloor) ? static_cast<int64_t>(pending) : 0;
  if (buffered_at_ != nullptr && buffered_at_ != at) {  // re-bound to another tenant, or leaving
    buffered_at_->fetch_sub(buffered_, std::memory_order_relaxed);
    buffered_at_ = nullptr;
    buffered_ = 0;
  }
  if (want == 0) {
    if (buffered_at_ != nullptr) buffered_at_->fetch_sub(buffered_, std::memory_order_relaxed);
    buffered_at_ = nullptr;
    buffered_ = 0;
    return 0;
  }
  buffered_at_ = at;
  const int64_t delta = want - buffered_;
  buffered_ = want;
  return at->fetch_add(delta, std::memory_order_relaxed) + delta;
}

void ClientConn::Close() {
  if (closed_) return;
  if (buffered_at_ != nullptr) AccountBuffered(nullptr, 0);
  closed_ = true;
  FinishClose();
}

// Over an output limit, possibly while a backend connection is delivering
// replies: the output goes at once (the memory is what the limit protects),
// nothing more is taken, and the rest of the close runs from a posted task.
void ClientConn::Drop() {
  if (closed_) return;
  if (buffered_at_ != nullptr) AccountBuffered(nullptr, 0);
  closed_ = true;
  std::string().swap(out_);  // writing_ may be in flight: freed with the connection
  auto alive = alive_;
  asio::post(loop_.io(), [this, alive] {
    if (*alive) FinishClose();
  });
}

void ClientConn::FinishClose() {
  loop_.mux().Remove(fd_);
  stream_->Close();
  handler_.OnClosed();
}

}  // namespace keyfence::proxy
