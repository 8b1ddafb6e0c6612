#include "proxy/net/unix_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace keyfence::proxy {

namespace {

sockaddr_un Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), std::min(path.size(), sizeof a.sun_path - 1));
  return a;
}

[[noreturn]] void Fail(const std::string& path, const std::string& why) {
  throw std::runtime_error("unix socket " + path + ": " + why);
}

enum class Probe { kLive, kStale, kUnknown };

// Whether something accepts connections at `path`: only a refused connection
// means stale (a full backlog, EAGAIN, is a live server; EACCES cannot tell).
Probe ProbePath(const std::string& path, int* err) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Probe::kUnknown;
  const sockaddr_un a = Address(path);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  *err = errno;
  ::close(fd);
  if (rc == 0 || *err == EAGAIN || *err == EINPROGRESS) return Probe::kLive;
  if (*err == ECONNREFUSED) return Probe::kStale;
  return Probe::kUnknown;
}

}  // namespace

UnixListener::UnixListener(std::string path, unsigned mode) : path_(std::move(path)) {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) Fail(path_, "exists and is not a socket");
    int err = 0;
    switch (ProbePath(path_, &err)) {
      case Probe::kLive:
        Fail(path_, "another server is listening on it");
      case Probe::kUnknown:
        Fail(path_, std::string("cannot tell whether it is in use: ") + std::strerror(err));
      case Probe::kStale:
        ::unlink(path_.c_str());  // left by a process that died
        break;
    }
  }
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) Fail(path_, std::strerror(errno));
  const sockaddr_un a = Address(path_);
  // The socket is made with no access, then given its mode: never briefly open to all.
  const mode_t old = ::umask(0777);
  const int rc = ::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  const int bind_errno = errno;
  ::umask(old);
  if (rc != 0) {
    ::close(fd_);
    fd_ = -1;
    Fail(path_, std::strerror(bind_errno));
  }
  // The mode goes to the socket we made, not to whatever may have replaced the path.
  struct stat made {};
  const bool ours = ::lstat(path_.c_str(), &made) == 0 && S_ISSOCK(made.st_mode);
  if (!ours || ::chmod(path_.c_str(), mode) != 0 || ::listen(fd_, 1024) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    ::unlink(path_.c_str());
    Fail(path_, why);
  }
  inode_ = made.st_ino;
  dev_ = made.st_dev;
}

void UnixListener::CloseFd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

UnixListener::~UnixListener() {
  CloseFd();
  struct stat st {};
  if (inode_ != 0 && ::lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_ &&
      st.st_dev == dev_) {
    ::unlink(path_.c_str());
  }
}

}  // namespace keyfence::proxy
