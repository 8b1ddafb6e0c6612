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

std::shared_ptr<const ListenerTls> Parser::TlsSection(const Val& v) {
  auto t = std::make_shared<ListenerTls>();
  // YAML::Node's operator= writes through to the document: the fields' Vals
  // are copy-constructed (emplace), never assigned.
  std::optional<Val> cert_f, key_f, ca_f;
  const auto seen = Map(v, {
                               {"cert",
                                [&](const Val& f) {
                                  cert_f.emplace(f);
                                  Str(f, &t->cert_path);
                                }},
                               {"key",
                                [&](const Val& f) {
                                  key_f.emplace(f);
                                  Str(f, &t->key_path);
                                }},
                               {"ca",
                                [&](const Val& f) {
                                  ca_f.emplace(f);
                                  Str(f, &t->ca_path);
                                }},
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
  auto cert = ReadPem(cert_v, t->cert_path);
  auto key = ReadPem(key_v, t->key_path);
  std::optional<std::string> ca;
  if (!t->ca_path.empty()) ca = ReadPem(ca_v, t->ca_path);
  if (!cert || !key || (!t->ca_path.empty() && !ca)) return nullptr;
  X509Ptr leaf(nullptr, X509_free);
  if (CountCerts(*cert, &leaf) == 0) {
    Error(cert_v, Quote(t->cert_path) + " holds no PEM certificate");
    return nullptr;
  }
  Bio kb = Mem(*key);
  KeyPtr pkey(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!pkey) {
    Error(key_v, Quote(t->key_path) + " holds no PEM private key (or it is encrypted)");
    return nullptr;
  }
  if (X509_check_private_key(leaf.get(), pkey.get()) != 1) {
    Error(key_v, Quote(t->key_path) + " does not match the certificate in " +
                     Quote(t->cert_path));
    return nullptr;
  }
  if (ca && CountCerts(*ca, nullptr) == 0) {
    Error(ca_v, Quote(t->ca_path) + " holds no PEM certificate");
    return nullptr;
  }
  t->cert_pem = std::move(*cert);
  t->key_pem = std::move(*key);
  if (ca) t->ca_pem = std::move(*ca);
  const std::string all = t->cert_pem + '\0' + t->key_pem + '\0' + t->ca_pem + '\0' +
                          std::to_string(static_cast<int>(t->client_auth)) + '\0' +
                          std::to_string(t->min_version);
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(all.data()), all.size(), d);
  t->fingerprint = Hex(d, sizeof d);
  return t;
}

}  // namespace keyfence::config::internal::loader
