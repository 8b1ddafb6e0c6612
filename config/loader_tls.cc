// listeners[].tls of the YAML walk (see loader_parser.h): the certificate,
// key and CA files are read and checked here, at load time, so that a bad or
// mismatched certificate is a config error with its position (and a reload
// keeps the running config): PEM that parses, a key that matches the
// certificate, a CA for client_auth.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "config/config.h"
#include "config/loader_parser.h"
#include "config/spec.h"

namespace keyfence::config::internal::loader {

namespace {

constexpr size_t kMaxPemBytes = 1 << 20;

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Bio Mem(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
}

// The certificates in `pem` (0: none parse).
int CountCerts(const std::string& pem, X509Ptr* first) {
  Bio bio = Mem(pem);
  int n = 0;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (n++ == 0 && first != nullptr) {
      first->reset(x);
    } else {
      X509_free(x);
    }
  }
  return n;
}

std::string Hex(const unsigned char* d, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kHex[d[i] >> 4]);
    s.push_back(kHex[d[i] & 15]);
  }
  return s;
}

}  // namespace

std::optional<std::string> Parser::ReadPem(const Val& v, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Error(v, "cannot read " + Quote(path));
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > kMaxPemBytes) {
    Error(v, Quote(path) + " is larger than 1 MiB: not a PEM file");
    return std::nullopt;
  }
  return s;
}

bool Parser::PemSet(const Val& cert_v, const Val& key_v, const Val& ca_v,
                    const std::string& cert_path, const std::string& key_path,
                    const std::string& ca_path, std::string* cert_pem, std::string* key_pem,
                    std::string* ca_pem) {
  std::optional<std::string> cert, key, ca;
  if (!cert_path.empty()) {
    cert = ReadPem(cert_v, cert_path);
    key = ReadPem(key_v, key_path);
    if (!cert || !key) return false;
  }
  if (!ca_path.empty()) {
    ca = ReadPem(ca_v, ca_path);
    if (!ca) return false;
  }
  if (cert) {
    X509Ptr leaf(nullptr, X509_free);
    if (CountCerts(*cert, &leaf) == 0) {
      Error(cert_v, Quote(cert_path) + " holds no PEM certificate");
      return false;
    }
    Bio kb = Mem(*key);
    KeyPtr pkey(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    if (!pkey) {
      Error(key_v, Quote(key_path) + " holds no PEM private key (or it is encrypted)");
      return false;
    }
    if (X509_check_private_key(leaf.get(), pkey.get()) != 1) {
      Error(key_v, Quote(key_path) + " does not match the certificate in " + Quote(cert_path));
      return false;
    }
  }
  if (ca && CountCerts(*ca, nullptr) == 0) {
    Error(ca_v, Quote(ca_path) + " holds no PEM certificate");
    return false;
  }
  if (cert) *cert_pem = std::move(*cert);
  if (key) *key_pem = std::move(*key);
  if (ca) *ca_pem = std::move(*ca);
  return true;
}

static std::string Sha256Hex(const std::string& all) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(all.data()), all.size(), d);
  return Hex(d, sizeof d);
}

Parser::Handler Parser::PathTo(std::optional<Val>* at, std::string* path) {
  // YAML::Node's operator= writes through to the document: the field's Val
  // is copy-constructed (emplace), never assigned.
  return [this, at, path](const Val& f) {
    at->emplace(f);
    Str(f, path);
  };
}

std::shared_ptr<const ListenerTls> Parser::TlsSection(const Val& v) {
  auto t = std::make_shared<ListenerTls>();
  std::optional<Val> cert_f, key_f, ca_f;
  const auto seen = Map(v, {
                               {"cert", PathTo(&cert_f, &t->cert_path)},
                               {"key", PathTo(&key_f, &t->key_path)},
                               {"ca", PathTo(&ca_f, &t->ca_path)},
                               {"client_auth",
                                [&](const Val& f) {
                                  size_t i = 0;
                                  if (Choice(f, {"none", "optional", "required"}, &i)) {
                                    t->client_auth = static_cast<ClientAuth>(i);
                                  }
                                }},
                               {"min_version",
                                [&](const Val& f) {
                                  size_t i = 0;
                                  if (Choice(f, {"1.2", "1.3"}, &i)) {
                                    t->min_version = i == 0 ? 0x0303 : 0x0304;
                                  }
                                }},
                           });
  if (!seen) return nullptr;
  const Val& cert_v = cert_f ? *cert_f : v;
  const Val& key_v = key_f ? *key_f : v;
  const Val& ca_v = ca_f ? *ca_f : v;
  const size_t before = errors();
  Require(v, *seen, "cert");
  Require(v, *seen, "key");
  if (t->client_auth != ClientAuth::kNone && t->ca_path.empty()) {
    Error(v, "client_auth needs ca: the CA that signs the client certificates");
  }
  if (errors() != before || t->cert_path.empty() || t->key_path.empty()) return nullptr;
  if (!PemSet(cert_v, key_v, ca_v, t->cert_path, t->key_path, t->ca_path, &t->cert_pem,
              &t->key_pem, &t->ca_pem)) {
    return nullptr;
  }
  const std::string all = t->cert_pem + '\0' + t->key_pem + '\0' + t->ca_pem + '\0' +
                          std::to_string(static_cast<int>(t->client_auth)) + '\0' +
                          std::to_string(t->min_version);
  t->fingerprint = Sha256Hex(all);
  return t;
}

std::shared_ptr<const BackendTls> Parser::BackendTlsSection(const Val& v) {
  auto t = std::make_shared<BackendTls>();
  if (v.node.IsNull()) return t;  // "tls:" alone: TLS with the system's trust store
  std::optional<Val> cert_f, key_f, ca_f;
  bool enabled = true;
  const auto seen = Map(v, {
                               {"enabled", [&](const Val& f) { Bool(f, &enabled); }},
                               {"cert", PathTo(&cert_f, &t->cert_path)},
                               {"key", PathTo(&key_f, &t->key_path)},
                               {"ca", PathTo(&ca_f, &t->ca_path)},
                               {"server_name", StrTo(&t->server_name)},
                               {"verify", [&](const Val& f) { Bool(f, &t->verify); }},
                           });
  if (!seen) return nullptr;
  if (!enabled) return nullptr;
  const Val& cert_v = cert_f ? *cert_f : v;
  const Val& key_v = key_f ? *key_f : v;
  const Val& ca_v = ca_f ? *ca_f : v;
  if (t->cert_path.empty() != t->key_path.empty()) {
    Error(t->cert_path.empty() ? key_v : cert_v,
          "a client certificate needs both cert and key (or neither)");
    return nullptr;
  }
  if (!PemSet(cert_v, key_v, ca_v, t->cert_path, t->key_path, t->ca_path, &t->cert_pem,
              &t->key_pem, &t->ca_pem)) {
    return nullptr;
  }
  t->fingerprint = Sha256Hex(t->cert_pem + '\0' + t->key_pem + '\0' + t->ca_pem + '\0' +
                             t->server_name + '\0' + (t->verify ? "1" : "0"));
  return t;
}

}  // namespace keyfence::config::internal::loader
