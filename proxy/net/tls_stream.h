// A client's TLS stream (listeners[].tls) over a TCP socket, with OpenSSL on
// the non-blocking fd: the handshake runs inside the first reads (the worker's
// level-triggered ReadMux drives it like any read), application data is
// decrypted into the caller's buffer, and bytes OpenSSL holds already
// decrypted are reported in buffered(). Writes are SSL_write until the socket
// is full, then resumed when it is writable (asio async_wait), completing
// through the io_context like a TCP write. A failed handshake (untrusted or
// expired client certificate, wrong protocol) is logged, rate-limited, with
// the client's address and OpenSSL's reason. Worker-local.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <optional>

#include "proxy/net/client_stream.h"
#include "proxy/net/tls_context.h"

namespace keyfence::proxy {

class TlsStream final : public ClientStream {
 public:
  TlsStream(boost::asio::ip::tcp::socket socket, std::shared_ptr<TlsContext> ctx);
  ~TlsStream() override;
  int native_handle() override { return socket_.native_handle(); }
  size_t ReadSome(char* p, size_t n, boost::system::error_code& ec) override;
  size_t buffered() const override { return static_cast<size_t>(SSL_pending(ssl_)); }
  void AsyncWrite(const char* data, size_t n, WriteDone* done) override;
  void Close() override;
  PeerInfo Peer() override;
  bool handshaking() const override { return !handshake_done_; }
  const PeerCert* peer_cert() const override { return cert_ ? &*cert_ : nullptr; }

 private:
  void ContinueWrite();
  void FinishWrite(const boost::system::error_code& ec);
  void OnHandshakeDone();
  void LogFailure(const char* what);

  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<TlsContext> ctx_;  // kept while the connection lives (rotation)
  SSL* ssl_;
  std::shared_ptr<bool> alive_;
  bool handshake_done_ = false;
  bool closed_ = false;
  bool fatal_ = false;  // an SSL error: no SSL_shutdown
  std::optional<PeerCert> cert_;
  const char* wdata_ = nullptr;
  size_t wleft_ = 0;
  WriteDone* wdone_ = nullptr;
};

}  // namespace keyfence::proxy
