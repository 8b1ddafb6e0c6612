#include "proxy/net/blocking_socket.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace keyfence::proxy {

BlockingSocket::~BlockingSocket() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
}

short BlockingSocket::WaitFor(TlsClient::Io io) const {
  return io == TlsClient::Io::kWantWrite ? POLLOUT : POLLIN;
}

std::string BlockingSocket::StartTls(const config::BackendTls& tls, const std::string& host,
                                     int timeout_ms) {
  std::string err;
  auto ctx = BackendTlsContext::Shared(tls, &err);
  if (!ctx) return "TLS: " + err;
  tls_ = std::make_unique<TlsClient>(std::move(ctx), fd_, host);
  for (;;) {
    const TlsClient::Io io = tls_->Handshake();
    if (io == TlsClient::Io::kDone) return {};
    if (io != TlsClient::Io::kWantRead && io != TlsClient::Io::kWantWrite) {
      return "TLS handshake failed: " + tls_->error_text();
    }
    if (Wait(WaitFor(io), timeout_ms) != 1) return "TLS handshake timed out";
  }
}

int BlockingSocket::Wait(short events, int timeout_ms) const {
  timed_out_ = false;
  for (int left = timeout_ms; left > 0;) {
    if (cancel_ != nullptr && cancel_->load(std::memory_order_relaxed)) return 0;
    pollfd p{fd_, events, 0};
    const int slice = std::min(left, kPollSliceMs);
    const int rc = ::poll(&p, 1, slice);
    if (rc > 0) return 1;
    if (rc < 0 && errno != EINTR) return 0;
    if (rc == 0) left -= slice;
  }
  timed_out_ = true;
  return 0;
}

std::string BlockingSocket::Connect(const config::Endpoint& ep, int timeout_ms,
                                    const config::BackendTls* tls) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(ep.port);
  if (int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return std::string("cannot resolve: ") + ::gai_strerror(rc);
  }
  std::string err = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) continue;
    if (::connect(fd_, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
      int so = 0;
      socklen_t len = sizeof so;
      if (Wait(POLLOUT, timeout_ms) == 1 &&
          ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so, &len) == 0 && so == 0) {
        ::freeaddrinfo(res);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (tls == nullptr) return {};
        std::string e = StartTls(*tls, ep.host, timeout_ms);
        if (!e.empty()) {
          tls_.reset();
          ::close(fd_);
          fd_ = -1;
        }
        return e;
      }
      err = so != 0 ? std::strerror(so) : "connect timed out";
    } else {
      err = std::strerror(errno);
    }
    ::close(fd_);
    fd_ = -1;
  }
  ::freeaddrinfo(res);
  return "cannot connect: " + err;
}

bool BlockingSocket::SendAll(std::string_view data, int timeout_ms) {
  size_t off = 0;
  while (tls_ && off < data.size()) {
    TlsClient::Io io;
    const size_t n = tls_->Write(data.data() + off, data.size() - off, &io);
    off += n;
    if (n == 0 && (io == TlsClient::Io::kClosed || io == TlsClient::Io::kError)) return false;
    if (n == 0 && Wait(WaitFor(io), timeout_ms) != 1) return false;
  }
  while (off < data.size()) {
    if (Wait(POLLOUT, timeout_ms) != 1) return false;
    const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (errno != EAGAIN && errno != EINTR) {
      return false;
    }
  }
  return true;
}

bool BlockingSocket::Fill(int timeout_ms) {
  char tmp[1 << 16];
  if (tls_) {
    for (;;) {
      TlsClient::Io io;
      const size_t n = tls_->Read(tmp, sizeof tmp, &io);
      if (n > 0) {
        buf_.append(tmp, n);
        return true;
      }
      if (io == TlsClient::Io::kClosed || io == TlsClient::Io::kError) return false;
      if (Wait(WaitFor(io), timeout_ms) != 1) return false;
    }
  }
  if (Wait(POLLIN, timeout_ms) != 1) return false;
  const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) return n < 0 && (errno == EAGAIN || errno == EINTR);
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

}  // namespace keyfence::proxy
