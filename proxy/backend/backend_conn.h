// One connection to a backend redis-server, multiplexed and pipelined: many
// client sessions append rewritten requests to out(), each Push()es a sink for
// its reply, and replies are matched to sinks in FIFO order.
//
// Writes: requests are appended during a loop turn and flushed once, with one
// write, at the end of the turn (Loop::FlushDirty). Connecting, the
// handshake (AUTH, HELLO 3 for RESP3 connections) and reconnect backoff are
// internal; while the backend is down, requests fail at once with an error.
// Worker-local: used only from its worker's thread.
#pragma once

#include <cstdint>
#include "proxy/base/ring.h"
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>

#include "config/config.h"
#include "protocol/reply_parser.h"
#include "proxy/base/buffer.h"
#include "proxy/backend/backend_host.h"
#include "proxy/net/loop.h"
#include "proxy/net/tls_client.h"

namespace keyfence::proxy {

// Whom a backend connection authenticates as: a tenant's ACL user
// (backend.acl: per_tenant, see acl_users.h), or null for keyfence's own
// (backend.username/password). Immutable once made; never freed.
struct BackendUser {
  std::string name;
  std::string password;
  uint32_t index = 0;  // dense, for per-user connection slots
};

// Which shared connection a request takes: `spread` spreads clients over
// connections_per_node; `user` whom it runs as.
struct BackendHint {
  uint64_t spread = 0;
  const BackendUser* user = nullptr;
};

// Receives replies in FIFO order. `frame` is one complete reply, valid only
// during the call.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void OnReply(uint64_t tag, std::string_view frame) = 0;
};

// Receives frames that arrive with no request waiting (pub/sub pushes), and
// the connection's death.
class UnsolicitedSink {
 public:
  virtual ~UnsolicitedSink() = default;
  virtual void OnUnsolicited(std::string_view frame) = 0;
  virtual void OnBackendClosed() = 0;
};

class BackendConn : public Flushable {
 public:
  BackendConn(BackendHost& host, config::Endpoint endpoint, int proto, bool dedicated,
              const BackendUser* user = nullptr);
  ~BackendConn() override;
  BackendConn(const BackendConn&) = delete;
  BackendConn& operator=(const BackendConn&) = delete;

  // False while in reconnect backoff: callers answer with down_error().
  bool Available() { return state_ == State::kReady || Reconnectable(); }
  std::string_view down_error() const { return down_error_; }

  // The buffer to append one request to; then call Push() for its reply.
  std::string& out() { return out_; }
  void Push(ReplySink* sink, uint64_t tag) {
    Pending& p = pending_.push_back();
    p.sink = sink;
    p.tag = tag;
    p.sent_ns = Loop::NowNs();
  }
  // Marks this connection to be flushed at the end of the loop turn.
  void MarkDirty() { loop_.MarkBackendDirty(this); }
  // Writes out() now if no write is in flight (called by Loop::FlushDirty).
  void Flush() override;

  // Forget every waiting sink (their owner is going away); their replies, when
  // they come, are dropped.
  void Forget(ReplySink* sink);
  void set_unsolicited(UnsolicitedSink* s) { unsolicited_ = s; }
  size_t pending() const { return pending_.size(); }
  int proto() const { return proto_; }
  // A connection for replica reads: READONLY is part of its handshake.
  void set_readonly(bool r) { readonly_ = r; }
  bool dedicated() const { return dedicated_; }
  const BackendUser* user() const { return user_; }
  uint64_t idle_since_ns = 0;  // NodePool's idle check (tenant connections)
  bool connected() const { return state_ == State::kReady; }
  const config::Endpoint& endpoint() const { return endpoint_; }
  // Fails all requests older than timeout_ns (and closes). Returns true if it did.
  bool CheckTimeout(uint64_t now_ns, uint64_t timeout_ns);
  void Close(std::string_view reason);

 private:
  enum class State { kIdle, kConnecting, kReady, kBackoff, kClosed };
  // Available() when not ready: connects if idle, false in backoff or closed.
  bool Reconnectable();
  struct Pending {
    ReplySink* sink;  // null: internal (handshake) or forgotten
    uint64_t tag;
    uint64_t sent_ns;
  };
  void Connect();
  void OnConnected(const boost::system::error_code& ec);
  // backend.tls: the handshake, driven by readiness waits; then Ready().
  void ContinueHandshake();
  void Ready();
  void WaitSocket(boost::asio::socket_base::wait_type w, void (BackendConn::*then)());
  void ContinueTlsWrite();
  void CompleteTlsWrite(const boost::system::error_code& ec);
  void StartRead();
  void ReadReady();
  bool DeliverFrames();
  void OnWrite(const boost::system::error_code& ec, size_t n);
  void Fail(std::string_view why);
  void ResetSocket();
  void NotifyClosed();
  void FailPending(std::string_view error_line);

  BackendHost& host_;
  Loop& loop_;
  config::Endpoint endpoint_;
  int proto_;
  bool dedicated_;
  const BackendUser* user_;
  bool readonly_ = false;
  State state_ = State::kIdle;
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<TlsClient> tls_;  // backend.tls: this connection's session
  size_t tls_written_ = 0;          // of writing_, through tls_
  uint32_t socket_gen_ = 0;         // ResetSocket() count: stale completions are dropped
  uint32_t timer_gen_ = 0;          // timer_ arms: a stale queued completion is dropped
  boost::asio::steady_timer timer_;
  std::string out_;      // requests not yet written
  std::string writing_;  // requests being written
  bool write_in_flight_ = false;
  bool read_in_flight_ = false;
  Buffer in_;
  protocol::ReplyFramer framer_;
  Ring<Pending> pending_;
  size_t handshake_replies_ = 0;  // internal replies expected first
  UnsolicitedSink* unsolicited_ = nullptr;
  uint64_t backoff_ms_ = 0;
  uint64_t backoff_until_ns_ = 0;
  std::string down_error_;
  std::shared_ptr<bool> alive_;
};

}  // namespace keyfence::proxy
