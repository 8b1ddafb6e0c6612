#include "proxy/net/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <mutex>

namespace keyfence::proxy {

namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

Bio Mem(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
}

// The certificate chain: the first is the leaf, the rest are intermediates.
bool UseChain(SSL_CTX* ctx, const std::string& pem) {
  Bio bio = Mem(pem);
  X509* leaf = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) return false;
  const bool ok = SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  if (!ok) return false;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {  // takes ownership on success
      X509_free(x);
      return false;
    }
  }
  ERR_clear_error();  // the end of the PEM stream
  return true;
}

bool UseKey(SSL_CTX* ctx, const std::string& pem) {
  Bio bio = Mem(pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return false;
  const bool ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  return ok;
}

// The CAs that sign client certificates: trusted for verification, and
// named to clients in the CertificateRequest.
bool UseClientCas(SSL_CTX* ctx, const std::string& pem) {
  Bio bio = Mem(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  int n = 0;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, x);
    sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(x)));
    X509_free(x);
    ++n;
  }
  ERR_clear_error();
  SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  return n > 0;
}

}  // namespace

std::string TlsErrorText() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::shared_ptr<TlsContext> TlsContext::Make(const config::ListenerTls& tls, std::string* error) {
  ERR_clear_error();  // what this thread left from a connection is not about this
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    *error = TlsErrorText();
    return nullptr;
  }
  std::shared_ptr<TlsContext> out(new TlsContext(ctx, tls.fingerprint));
  SSL_CTX_set_min_proto_version(ctx, tls.min_version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  // Writes go out as the socket takes them; the buffer may move between retries.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  static constexpr unsigned char kSid[] = "keyfence";
  SSL_CTX_set_session_id_context(ctx, kSid, sizeof kSid - 1);
  if (!UseChain(ctx, tls.cert_pem)) {
    *error = "certificate " + tls.cert_path + ": " + TlsErrorText();
    return nullptr;
  }
  if (!UseKey(ctx, tls.key_pem)) {
    *error = "key " + tls.key_path + ": " + TlsErrorText();
    return nullptr;
  }
  if (!tls.ca_pem.empty() && !UseClientCas(ctx, tls.ca_pem)) {
    *error = "ca " + tls.ca_path + ": no certificate";
    return nullptr;
  }
  int verify = SSL_VERIFY_NONE;
  if (tls.client_auth == config::ClientAuth::kOptional) verify = SSL_VERIFY_PEER;
  if (tls.client_auth == config::ClientAuth::kRequired) {
    verify = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(ctx, verify, nullptr);
  return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<BackendTlsContext> BackendTlsContext::Make(const config::BackendTls& tls,
                                                           std::string* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *error = TlsErrorText();
    return nullptr;
  }
  std::shared_ptr<BackendTlsContext> out(new BackendTlsContext(ctx, tls));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (tls.ca_pem.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      *error = "the system's trust store: " + TlsErrorText();
      return nullptr;
    }
  } else {
    Bio bio = Mem(tls.ca_pem);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, x);
      X509_free(x);
      ++n;
    }
    ERR_clear_error();
    if (n == 0) {
      *error = "ca " + tls.ca_path + ": no certificate";
      return nullptr;
    }
  }
  if (!tls.cert_pem.empty()) {
    if (!UseChain(ctx, tls.cert_pem)) {
      *error = "certificate " + tls.cert_path + ": " + TlsErrorText();
      return nullptr;
    }
    if (!UseKey(ctx, tls.key_pem)) {
      *error = "key " + tls.key_path + ": " + TlsErrorText();
      return nullptr;
    }
  }
  SSL_CTX_set_verify(ctx, tls.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return out;
}

std::shared_ptr<BackendTlsContext> BackendTlsContext::Shared(const config::BackendTls& tls,
                                                             std::string* error) {
  static std::mutex mu;
  static std::shared_ptr<BackendTlsContext> last;
  std::lock_guard<std::mutex> l(mu);
  if (last && last->settings().fingerprint == tls.fingerprint) return last;
  auto made = Make(tls, error);
  if (made) last = made;
  return made;
}

BackendTlsContext::~BackendTlsContext() { SSL_CTX_free(ctx_); }

}  // namespace keyfence::proxy
