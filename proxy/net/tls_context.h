// A listener's server-side TLS context (OpenSSL), built from the certificate,
// key and CA a config snapshot checked (config::ListenerTls): protocol floor,
// verification of client certificates (client_auth), no renegotiation.
// Immutable once built and shared by the connections that use it; a reload
// with new certificate files builds a new one for new connections, while the
// connections already open keep theirs (no drop on rotation).
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "config/config.h"

namespace keyfence::proxy {

class TlsContext {
 public:
  // Null, with *error set, if OpenSSL refuses the material.
  static std::shared_ptr<TlsContext> Make(const config::ListenerTls& tls, std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  TlsContext(SSL_CTX* ctx, std::string fingerprint)
      : ctx_(ctx), fingerprint_(std::move(fingerprint)) {}
  SSL_CTX* ctx_;
  std::string fingerprint_;
};

// The client-side context of keyfence's connections to Redis (backend.tls):
// protocol floor TLS 1.2, the CA bundle (or the system's trust store),
// verification of the server's certificate (unless verify: false), and a
// client certificate when one is configured. Immutable and shared: the data
// connections of every worker and the control links; a rotation makes a new
// one for the connections opened after it.
class BackendTlsContext {
 public:
  // Null, with *error set, if OpenSSL refuses the material.
  static std::shared_ptr<BackendTlsContext> Make(const config::BackendTls& tls,
                                                 std::string* error);
  // The same, made once per fingerprint and shared process-wide (thread-safe):
  // control links open often and need not load the CA bundle every time.
  static std::shared_ptr<BackendTlsContext> Shared(const config::BackendTls& tls,
                                                   std::string* error);
  ~BackendTlsContext();
  BackendTlsContext(const BackendTlsContext&) = delete;
  BackendTlsContext& operator=(const BackendTlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  const config::BackendTls& settings() const { return settings_; }

 private:
  BackendTlsContext(SSL_CTX* ctx, config::BackendTls settings)
      : ctx_(ctx), settings_(std::move(settings)) {}
  SSL_CTX* ctx_;
  config::BackendTls settings_;
};

// Empties this thread's OpenSSL error queue before an SSL call (SSL_get_error
// reads it), cheaply: ERR_clear_error() walks every slot of the queue and
// costs more than a small record's encryption, so it runs only when the
// queue holds something (after a failure).
inline void ClearTlsErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// The last OpenSSL error of this thread, as text (and the queue cleared).
std::string TlsErrorText();

}  // namespace keyfence::proxy
