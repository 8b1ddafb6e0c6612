// One client-side TLS session over a connected, non-blocking TCP fd: the
// seam backend TLS uses in BackendConn (worker, driven by asio readiness
// waits) and BlockingSocket (control links, driven by poll). Each call does
// what it can without blocking and says what it waits for. The peer is
// verified against backend.tls.server_name, or else the node's own host
// (a name: SNI and host-name check; an address: IP check).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>

#include "proxy/net/tls_context.h"

namespace keyfence::proxy {

class TlsClient {
 public:
  enum class Io { kDone, kWantRead, kWantWrite, kClosed, kError };

  TlsClient(std::shared_ptr<BackendTlsContext> ctx, int fd, const std::string& host);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // kDone once the handshake is complete (the certificate verified).
  Io Handshake();
  // Bytes read (> 0), else 0 and *io says why (kWantRead: nothing yet).
  size_t Read(char* p, size_t n, Io* io);
  // Bytes written (> 0, possibly fewer than n), else 0 and *io says why.
  size_t Write(const char* p, size_t n, Io* io);
  // Bytes OpenSSL already holds decrypted: read them before waiting.
  size_t pending() const { return static_cast<size_t>(SSL_pending(ssl_)); }
  // Why the last kError happened (OpenSSL's reason; the verification result).
  std::string error_text() const { return error_; }

 private:
  Io Status(int ret);

  std::shared_ptr<BackendTlsContext> ctx_;
  SSL* ssl_;
  std::string error_;
};

}  // namespace keyfence::proxy
