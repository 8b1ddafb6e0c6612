#include "inject/cert_reloader.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace keyfence::inject {

namespace ssl = boost::asio::ssl;

namespace {

constexpr auto kCheckInterval = std::chrono::seconds(1);

// "" when `path` can be opened for reading, else "<what> <path>: <strerror>".
std::string CheckReadable(const char* what, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return std::string("cannot read ") + what + " " + path + ": " + std::strerror(errno);
  }
  std::fclose(f);
  return "";
}

std::string OpenSslReason(const boost::system::error_code& ec) {
  std::string reason = ec.message();
  ERR_clear_error();
  return reason;
}

}  // namespace

CertReloader::CertReloader(std::string cert_path, std::string key_path)
    : cert_path_(std::move(cert_path)), key_path_(std::move(key_path)) {}

CertReloader::FileStamp CertReloader::Stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size,
          static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
}

CertReloader::ContextPtr CertReloader::Build(const std::string& cert_path,
                                             const std::string& key_path, std::string& error) {
  error = CheckReadable("certificate", cert_path);
  if (error.empty()) error = CheckReadable("key", key_path);
  if (!error.empty()) return nullptr;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_path, ec);
  if (ec) {
    error = "certificate " + cert_path + ": " + OpenSslReason(ec);
    return nullptr;
  }
  ctx->use_private_key_file(key_path, ssl::context::pem, ec);
  if (ec) {
    error = "key " + key_path + " (for certificate " + cert_path + "): " + OpenSslReason(ec);
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    error = "key " + key_path + " does not match certificate " + cert_path;
    return nullptr;
  }
  return ctx;
}

std::string CertReloader::Load() {
  cert_stamp_ = Stamp(cert_path_);
  key_stamp_ = Stamp(key_path_);
  std::string error;
  current_ = Build(cert_path_, key_path_, error);
  last_check_ = Clock::now();
  return error;
}

CertReloader::ContextPtr CertReloader::Current(Clock::time_point now) {
  if (now - last_check_ < kCheckInterval) return current_;
  last_check_ = now;
  const FileStamp cert = Stamp(cert_path_);
  const FileStamp key = Stamp(key_path_);
  if (cert == cert_stamp_ && key == key_stamp_) return current_;
  cert_stamp_ = cert;
  key_stamp_ = key;
  std::string error;
  if (ContextPtr next = Build(cert_path_, key_path_, error)) {
    current_ = std::move(next);
    spdlog::info("inject: reloaded the TLS certificate {} and key {}", cert_path_, key_path_);
  } else {
    spdlog::error("inject: keeping the previous TLS certificate: {}", error);
  }
  return current_;
}

}  // namespace keyfence::inject
