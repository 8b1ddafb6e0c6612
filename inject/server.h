// The HTTPS server of `keyfence inject` (Boost.Beast over Asio SSL): POST /mutate answers
// an AdmissionReview (review.h), GET /healthz answers "ok\n"; any other path is 404 and a
// wrong method 405. A body that is not an AdmissionReview, not JSON or over
// kMaxReviewBytes gets 400 with a text message; the connection is then closed and the
// server goes on serving the others.
//
// Thread affinity: everything runs on the one io_context given at construction.
// Ownership: the server owns its acceptor and sessions; the CertReloader is borrowed and
// must outlive the server. Sessions still queued on the io_context after the server is
// destroyed keep only a shared state alive and close themselves.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "inject/cert_reloader.h"
#include "inject/sidecar.h"

namespace keyfence::inject {

// Limits of the webhook server.
inline constexpr size_t kMaxHeaderBytes = 16 * 1024;
inline constexpr int kHandshakeTimeoutSeconds = 10;
inline constexpr int kIdleTimeoutSeconds = 30;  // per read or write, keep-alive included
inline constexpr size_t kMaxConnections = 256;  // further connections are closed at once

class WebhookServer {
 public:
  WebhookServer(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint endpoint,
                CertReloader& certs, InjectOptions options);
  ~WebhookServer();  // Stop()s
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  // Binds, listens and starts accepting; the error (message: ec.message()) on failure.
  boost::system::error_code Start();
  // Stops accepting and closes the connections that are idle (in a TLS handshake or
  // waiting for a request); a request being read or answered is finished, then its
  // connection is closed. Idempotent.
  void Stop();
  // Connections still open (0 once a Stop() has drained).
  size_t open_connections() const;
  uint16_t port() const { return port_; }

 private:
  struct State;
  class Session;
  static void Accept(std::shared_ptr<State> state);

  boost::asio::ip::tcp::endpoint endpoint_;
  uint16_t port_ = 0;
  std::shared_ptr<State> state_;
};

}  // namespace keyfence::inject
