// One client connection: its stream, read buffer, request parser, reply queue
// and output buffer, and the flush (once per loop turn). It knows nothing of
// commands: every complete request goes to its RequestHandler (the session).
//
// Reads are driven by the worker's level-triggered ReadMux; while paused
// (backpressure, a barrier, a rate-limit delay) the socket is out of the set.
// Worker-local.
#pragma once

#include <atomic>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/request_parser.h"
#include "proxy/base/buffer.h"
#include "proxy/base/metrics.h"
#include "proxy/net/client_stream.h"
#include "proxy/net/loop.h"
#include "proxy/session/reply_queue.h"

namespace keyfence::proxy {

// Like Redis's client-output-buffer-limit: over `hard` bytes, or over `soft`
// bytes for longer than `soft_ns`, the client is disconnected (0: no limit).
// `tenant` caps the unread replies of all the tenant's clients together, in
// `*tenant_buffered` (across workers): only clients holding at least
// kTenantBufferFloor count there, and one that grows while the tenant is over
// is disconnected (a fast reader never is).
struct OutputLimits {
  uint64_t hard = 0;
  uint64_t soft = 0;
  uint64_t soft_ns = 0;
  uint64_t tenant = 0;
  std::atomic<int64_t>* tenant_buffered = nullptr;  // null: no tenant (before AUTH)
};
enum class OutputLimit : uint8_t { kHard, kSoft, kTenant };

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // One complete request (args[0] is the command name; views into the read
  // buffer, valid during the call); `bytes` its size on the wire. False: a
  // barrier — pause and hand the same request again on Resume().
  virtual bool OnRequest(std::span<const std::string_view> args, size_t bytes) = 0;
  // The largest request accepted now.
  virtual uint64_t max_request_bytes() const = 0;
  // Output allowed to pile up before the client is disconnected.
  virtual OutputLimits output_limits() const = 0;
  // The output went over a limit (soft: for too long): the connection closes.
  virtual void OnOutputOverLimit(uint64_t limit, OutputLimit which) = 0;
  // A request the stream could not carry (counted; the connection closes).
  virtual void OnBadInput(RejectReason reason) = 0;
  // The connection closed.
  virtual void OnClosed() = 0;
  // TLS: the handshake is done (ExpectHandshake()); `cert` the verified client
  // certificate's names, or null. Before any request is handed over.
  virtual void OnHandshake(const PeerCert* cert) { (void)cert; }
};

class ClientConn final : public Readable, public Flushable, public WriteDone {
 public:
  ClientConn(Loop& loop, std::unique_ptr<ClientStream> stream, RequestHandler& handler);
  ~ClientConn() override;

  // Starts reading; false if the stream cannot be watched.
  bool Start();
  // Tell the handler when the stream's TLS handshake is done.
  void ExpectHandshake() { handshake_pending_ = true; }
  void OnReadable() override;
  void Flush() override;
  void OnWritten(const boost::system::error_code& ec) override;
  void MarkDirty() { loop_.MarkClientDirty(this); }

  // Handles the paused input again (after a barrier or a delay).
  void Resume();
  // Resume() from a posted task (safe inside any handler).
  void ResumeSoon();
  // Sends `error` after the replies before it, then closes.
  void CloseWithError(std::string_view error);
  void CloseAfterFlush() { close_after_flush_ = true; }
  void Close();

  // Closes the connection (dropping its output) if it is over its output
  // limits; called on every flush and periodically (now_ns 0: read the clock
  // only if needed). False if it closed.
  // `grew`: output was just added (the tenant-wide cap closes only a client
  // that grows).
  bool CheckOutput(uint64_t now_ns, bool grew = false);
  // Bytes of replies not yet taken by the socket.
  size_t pending_output() const { return out_.size() + writing_.size(); }

  bool closed() const { return closed_; }
  // Shutdown drain: true when nothing is under way — no reply owed or unsent,
  // no request (or part of one) held, no bytes waiting at the socket, and
  // nothing read since the previous call (a client still sending is busy).
  bool Quiet();
  bool closing() const { return closed_ || close_after_flush_; }
  ReplyQueue& replies() { return replies_; }
  const ReplyQueue& replies() const { return replies_; }
  std::string& out() { return out_; }
  protocol::RequestParser& parser() { return parser_; }
  const PeerInfo& peer() const { return peer_; }
  // Where the bytes read and written count (the bound tenant's counters).
  void CountBytesInto(TenantCounters* c) { net_ = c; }

 private:
  void ReadSoon();
  int64_t AccountBuffered(std::atomic<int64_t>* at, size_t pending);
  void Drop();         // closes over an output limit (safe inside a delivery)
  void FinishClose();  // ReadReady() from a posted task (stream-buffered bytes)
  void ReadReady();
  void ProcessInput();
  // Reports a bad request and closes; false to stop processing.
  void BadInput(RejectReason reason, std::string_view error);
  void StartRead();

  Loop& loop_;
  std::unique_ptr<ClientStream> stream_;
  RequestHandler& handler_;
  std::shared_ptr<bool> alive_;
  PeerInfo peer_;
  Buffer in_;
  std::string out_;
  std::string writing_;
  protocol::RequestParser parser_;
  std::vector<std::string_view> args_;
  ReplyQueue replies_{out_};
  TenantCounters* net_ = nullptr;
  int fd_ = -1;
  uint32_t reads_ = 0;       // reads that returned bytes (for Quiet())
  uint32_t reads_seen_ = 0;
  bool write_in_flight_ = false;
  bool reading_enabled_ = false;
  bool read_paused_ = false;
  bool processing_ = false;
  uint64_t over_soft_since_ns_ = 0;  // 0: under the soft output limit
  std::atomic<int64_t>* buffered_at_ = nullptr;  // the tenant count holding buffered_
  int64_t buffered_ = 0;
  bool close_after_flush_ = false;
  bool handshake_pending_ = false;
  bool closed_ = false;
};

}  // namespace keyfence::proxy
