// A listening Unix socket (listeners[].unix, for sidecars: no port to collide,
// no network exposure). Opened once by the server; every worker accepts on a
// dup() of it. It refuses to start over a live socket (a connect() to the path
// succeeds: another keyfence or a Redis is there) and over a file that is not
// a socket; a stale socket file (nothing listening) is replaced. The mode
// applies to the socket file. The file is removed when the listener is
// destroyed (clean exit), if it is still ours.
#pragma once

#include <sys/types.h>

#include <string>

namespace keyfence::proxy {

class UnixListener {
 public:
  // Throws std::runtime_error naming the path and the reason.
  UnixListener(std::string path, unsigned mode);
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  int fd() const { return fd_; }
  // After every worker has its dup(): the workers' closing then stops the
  // kernel queueing new clients (drain). The file stays until destruction.
  void CloseFd();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  ino_t inode_ = 0;  // of the socket file we made
  dev_t dev_ = 0;
};

}  // namespace keyfence::proxy
