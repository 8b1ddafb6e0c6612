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

// Something accepts connections at `path`.
bool Live(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const sockaddr_un a = Address(path);
  const bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return live;
}

}  // namespace

UnixListener::UnixListener(std::string path, unsigned mode) : path_(std::move(path)) {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) Fail(path_, "exists and is not a socket");
    if (Live(path_)) Fail(path_, "another server is listening on it");
    ::unlink(path_.c_str());  // stale: left by a process that died
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
  if (::chmod(path_.c_str(), mode) != 0 || ::listen(fd_, 1024) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    ::unlink(path_.c_str());
    Fail(path_, why);
  }
  if (::stat(path_.c_str(), &st) == 0) inode_ = st.st_ino;
}

UnixListener::~UnixListener() {
  if (fd_ >= 0) ::close(fd_);
  struct stat st {};
  if (inode_ != 0 && ::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) {
    ::unlink(path_.c_str());
  }
}

}  // namespace keyfence::proxy
