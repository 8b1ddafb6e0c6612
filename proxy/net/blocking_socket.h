// A blocking-style TCP connection for control work (keyfence's own links to
// Redis nodes: topology, ACL users, accounting, quotas; the replication stream
// of `keyfence analyze`), never used by a worker. The fd is non-blocking and
// every wait is a poll() in slices, so that each call is bounded (a connect
// timeout, an idle timeout) and a cancel flag is seen within kPollSliceMs;
// EINTR is retried. Over TLS (backend.tls) when Connect() is given it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "proxy/net/tls_client.h"

namespace keyfence::proxy {

inline constexpr int kPollSliceMs = 250;

class BlockingSocket {
 public:
  // `cancel` may be null.
  explicit BlockingSocket(const std::atomic<bool>* cancel = nullptr) : cancel_(cancel) {}
  ~BlockingSocket();
  BlockingSocket(const BlockingSocket&) = delete;
  BlockingSocket& operator=(const BlockingSocket&) = delete;

  // "" on success, else why not. With `tls` (backend.tls) the TLS handshake
  // is part of it, bounded by the same timeout.
  std::string Connect(const config::Endpoint& ep, int timeout_ms,
                      const config::BackendTls* tls = nullptr);
  // Everything of `data`, or false (closed, error, timeout_ms without progress).
  bool SendAll(std::string_view data, int timeout_ms);
  // More bytes appended to buffer(); false on close, error, or timeout_ms of silence.
  bool Fill(int timeout_ms);
  std::string& buffer() { return buf_; }
  // The last Fill() or SendAll() failed only because nothing came in time.
  bool timed_out() const { return timed_out_; }
  bool connected() const { return fd_ >= 0; }

 private:
  // 1 ready, 0 not (timeout, cancel, error).
  int Wait(short events, int timeout_ms) const;
  std::string StartTls(const config::BackendTls& tls, const std::string& host, int timeout_ms);
  short WaitFor(TlsClient::Io io) const;

  const std::atomic<bool>* cancel_;
  int fd_ = -1;
  mutable bool timed_out_ = false;
  std::unique_ptr<TlsClient> tls_;
  std::string buf_;
};

}  // namespace keyfence::proxy
