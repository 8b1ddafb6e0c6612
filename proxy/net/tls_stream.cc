#include "proxy/net/tls_stream.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <chrono>

#include <spdlog/spdlog.h>

namespace keyfence::proxy {

namespace asio = boost::asio;

namespace {

constexpr int64_t kFailureLinesPerSecond = 20;  // a flood of bad handshakes logs no more

std::string Utf8(ASN1_STRING* s) {
  unsigned char* out = nullptr;
  const int n = ASN1_STRING_to_UTF8(&out, s);
  if (n < 0) return {};
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return r;
}

PeerCert NamesOf(X509* x) {
  PeerCert c;
  X509_NAME* subject = X509_get_subject_name(x);
  const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i >= 0) c.cn = Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int k = 0; sans != nullptr && k < sk_GENERAL_NAME_num(sans); ++k) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, k);
    if (g->type == GEN_DNS) c.dns.push_back(Utf8(g->d.dNSName));
    if (g->type == GEN_URI) c.uri.push_back(Utf8(g->d.uniformResourceIdentifier));
  }
  GENERAL_NAMES_free(sans);
  return c;
}

}  // namespace

TlsStream::TlsStream(asio::ip::tcp::socket socket, std::shared_ptr<TlsContext> ctx)
    : socket_(std::move(socket)), ctx_(std::move(ctx)), ssl_(SSL_new(ctx_->get())),
      alive_(std::make_shared<bool>(true)) {
  boost::system::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
  SSL_set_fd(ssl_, socket_.native_handle());
  SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() {
  *alive_ = false;
  Close();
  SSL_free(ssl_);
}

void TlsStream::LogFailure(const char* what) {
  static std::atomic<int64_t> window{0};  // the second being counted
  static std::atomic<int64_t> lines{0};   // lines logged in it
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  std::string reason = TlsErrorText();
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    reason += std::string(" (client certificate: ") + X509_verify_cert_error_string(verify) + ")";
  }
  if (int64_t w = window.load(std::memory_order_relaxed); w != now &&
                                                          window.compare_exchange_strong(w, now)) {
    lines.store(0, std::memory_order_relaxed);
  }
  if (lines.fetch_add(1, std::memory_order_relaxed) >= kFailureLinesPerSecond) return;
  boost::system::error_code ec;
  const auto remote = socket_.remote_endpoint(ec);
  spdlog::warn("tls: {} with {} failed: {}", what,
               ec ? std::string("?") : remote.address().to_string() + ":" +
                                           std::to_string(remote.port()),
               reason);
}

void TlsStream::OnHandshakeDone() {
  handshake_done_ = true;
  if (X509* x = SSL_get0_peer_certificate(ssl_)) {
    if (SSL_get_verify_result(ssl_) == X509_V_OK) cert_ = NamesOf(x);
  }
}

size_t TlsStream::ReadSome(char* p, size_t n, boost::system::error_code& ec) {
  for (;;) {
    ClearTlsErrors();
    const int r = SSL_read(ssl_, p, static_cast<int>(std::min<size_t>(n, INT32_MAX)));
    if (!handshake_done_ && SSL_is_init_finished(ssl_)) OnHandshakeDone();
    if (r > 0) {
      ec = {};
      return static_cast<size_t>(r);
    }
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ:
        ec = asio::error::would_block;
        return 0;
      case SSL_ERROR_WANT_WRITE:
        // A read that must write (a handshake answer, a KeyUpdate reply) into
        // a full socket: the peer sends but does not read. Never wait for it
        // on the worker: the connection ends.
        fatal_ = true;
        ec = asio::error::connection_aborted;
        return 0;
      case SSL_ERROR_ZERO_RETURN:
        ec = asio::error::eof;
        return 0;
      default:
        fatal_ = true;  // no close_notify after a fatal error
        // A peer that leaves mid-handshake (a TCP probe, a port scan) is not
        // worth a line; a refused certificate or protocol is.
        if (!handshake_done_ &&
            ERR_GET_REASON(ERR_peek_error()) != SSL_R_UNEXPECTED_EOF_WHILE_READING) {
          LogFailure("handshake");
        }
        ec = asio::error::connection_reset;
        return 0;
    }
  }
}

void TlsStream::AsyncWrite(const char* data, size_t n, WriteDone* done) {
  wdata_ = data;
  wleft_ = n;
  wdone_ = done;
  // Nothing can be sent before the handshake (a refusal at accept time): the
  // write fails and the connection closes, instead of waiting for a hello.
  if (!handshake_done_) return FinishWrite(asio::error::not_connected);
  ContinueWrite();
}

void TlsStream::ContinueWrite() {
  if (closed_) return FinishWrite(asio::error::operation_aborted);
  while (wleft_ > 0) {
    ClearTlsErrors();
    const int r = SSL_write(ssl_, wdata_, static_cast<int>(std::min<size_t>(wleft_, INT32_MAX)));
    if (r > 0) {
      wdata_ += r;
      wleft_ -= static_cast<size_t>(r);
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      auto alive = alive_;
      socket_.async_wait(e == SSL_ERROR_WANT_WRITE ? asio::socket_base::wait_write
                                                   : asio::socket_base::wait_read,
                         [this, alive](const boost::system::error_code& ec) {
                           if (!*alive) return;
                           // Closed meanwhile: the fd number may be another socket's now.
                           if (closed_) return FinishWrite(asio::error::operation_aborted);
                           if (ec) return FinishWrite(ec);
                           ContinueWrite();
                         });
      return;
    }
    fatal_ = true;
    return FinishWrite(asio::error::connection_reset);
  }
  FinishWrite({});
}

// Completes through the io_context, never inside AsyncWrite (as a TCP write).
void TlsStream::FinishWrite(const boost::system::error_code& ec) {
  WriteDone* done = wdone_;
  wdone_ = nullptr;
  auto alive = alive_;
  asio::post(socket_.get_executor(), [done, alive, ec] {
    if (*alive && done != nullptr) done->OnWritten(ec);
  });
}

void TlsStream::Close() {
  if (closed_) return;
  closed_ = true;
  if (handshake_done_ && !fatal_) SSL_shutdown(ssl_);  // best effort close_notify, never waits
  ERR_clear_error();  // nothing of this connection's left for the next one on this thread
  SSL_set_fd(ssl_, -1);
  boost::system::error_code ec;
  socket_.close(ec);
}

PeerInfo TlsStream::Peer() { return PeerOf(socket_); }

}  // namespace keyfence::proxy
