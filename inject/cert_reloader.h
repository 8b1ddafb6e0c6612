// The webhook's TLS server context, rebuilt when the certificate or key file changes
// (cert-manager rotates them in place, or kubelet swaps the Secret volume's ..data link).
//
// Current() is called for each accepted connection: at most once per second it stats both
// files (following symlinks) and, when either changed (mtime, size, inode or device),
// builds a new context from them. A pair that does not load (unreadable, not PEM, key not
// matching the certificate, or caught halfway through a rotation) is logged and the
// previous context is kept; the next change of either file is tried again.
//
// Thread affinity: one thread (the server's io_context). Ownership: each connection holds
// the shared_ptr it was given, so a replaced context lives until its last connection ends.
#pragma once

#include <sys/types.h>

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>

namespace keyfence::inject {

class CertReloader {
 public:
  using Clock = std::chrono::steady_clock;
  using ContextPtr = std::shared_ptr<boost::asio::ssl::context>;

  CertReloader(std::string cert_path, std::string key_path);

  // Loads the pair for the first time. "" on success, else a message naming the file.
  std::string Load();
  // The context for a new connection (Load() must have succeeded).
  ContextPtr Current(Clock::time_point now = Clock::now());

  // Builds a TLS 1.2+ server context from PEM files. On failure returns null and sets
  // `error` to a message naming the file and OpenSSL's reason.
  static ContextPtr Build(const std::string& cert_path, const std::string& key_path,
                          std::string& error);

 private:
  // What identifies one version of a file; all zero when it cannot be stat()ed.
  struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    long long mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  static FileStamp Stamp(const std::string& path);

  std::string cert_path_;
  std::string key_path_;
  ContextPtr current_;
  FileStamp cert_stamp_, key_stamp_;  // the last pair tried (loaded or refused)
  Clock::time_point last_check_{};
};

}  // namespace keyfence::inject
