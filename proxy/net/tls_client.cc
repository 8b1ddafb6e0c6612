#include "proxy/net/tls_client.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

namespace keyfence::proxy {

namespace {
bool IsAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}
}  // namespace

TlsClient::TlsClient(std::shared_ptr<BackendTlsContext> ctx, int fd, const std::string& host)
    : ctx_(std::move(ctx)), ssl_(SSL_new(ctx_->get())) {
  SSL_set_fd(ssl_, fd);
  SSL_set_connect_state(ssl_);
  const config::BackendTls& s = ctx_->settings();
  const std::string& name = s.server_name.empty() ? host : s.server_name;
  if (!IsAddress(name)) SSL_set_tlsext_host_name(ssl_, name.c_str());
  if (s.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (IsAddress(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    }
  }
}

TlsClient::~TlsClient() { SSL_free(ssl_); }

TlsClient::Io TlsClient::Status(int ret) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        error_ = "connection closed";
        return Io::kClosed;
      }
      [[fallthrough]];
    default: {
      error_ = TlsErrorText();
      const long v = SSL_get_verify_result(ssl_);
      if (v != X509_V_OK) {
        error_ += std::string(" (server certificate: ") + X509_verify_cert_error_string(v) + ")";
      }
      return Io::kError;
    }
  }
}

TlsClient::Io TlsClient::Handshake() {
  ClearTlsErrors();
  const int r = SSL_do_handshake(ssl_);
  return r == 1 ? Io::kDone : Status(r);
}

size_t TlsClient::Read(char* p, size_t n, Io* io) {
  ClearTlsErrors();
  size_t got = 0;
  if (SSL_read_ex(ssl_, p, n, &got) == 1) {
    *io = Io::kDone;
    return got;
  }
  *io = Status(0);
  return 0;
}

size_t TlsClient::Write(const char* p, size_t n, Io* io) {
  ClearTlsErrors();
  size_t put = 0;
  if (SSL_write_ex(ssl_, p, n, &put) == 1) {
    *io = Io::kDone;
    return put;
  }
  *io = Status(0);
  return 0;
}

}  // namespace keyfence::proxy
