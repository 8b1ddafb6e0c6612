#include "proxy/accounting/replica_stream.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

namespace keyfence::proxy::accounting {

namespace {

// poll() for `events` up to `timeout_ms`, in slices so that `cancel` is
// seen, through EINTR (a signal handled on this thread): 1 ready, 0 not.
int Wait(int fd, short events, int timeout_ms, const std::atomic<bool>* cancel) {
  for (int left = timeout_ms; left > 0;) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) return 0;
    pollfd p{fd, events, 0};
    const int slice = std::min(left, kPollSliceMs);
    const int rc = ::poll(&p, 1, slice);
    if (rc > 0) return 1;
    if (rc < 0 && errno != EINTR) return 0;
    if (rc == 0) left -= slice;
  }
  return 0;
}

class Link {
 public:
  explicit Link(const std::atomic<bool>* cancel) : cancel_(cancel) {}
  ~Link() {
    if (fd_ >= 0) ::close(fd_);
  }

  std::string Connect(const config::Endpoint& ep, int timeout_ms) {
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
        if (Wait(fd_, POLLOUT, timeout_ms, cancel_) == 1 &&
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so, &len) == 0 && so == 0) {
          ::freeaddrinfo(res);
          return {};
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

  bool Send(const std::vector<std::string_view>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (std::string_view a : args) {
      out += "$" + std::to_string(a.size()) + "\r\n";
      out.append(a);
      out += "\r\n";
    }
    size_t off = 0;
    while (off < out.size()) {
      if (Wait(fd_, POLLOUT, kIdleTimeoutMs, cancel_) != 1) return false;
      const ssize_t n = ::send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0 && errno != EAGAIN && errno != EINTR) return false;
      if (n > 0) off += static_cast<size_t>(n);
    }
    return true;
  }

  // More bytes into buf_; false on close, error or kIdleTimeoutMs of silence.
  bool Fill() {
    if (Wait(fd_, POLLIN, kIdleTimeoutMs, cancel_) != 1) return false;
    char tmp[1 << 16];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return n < 0 && (errno == EAGAIN || errno == EINTR);
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  // One line without its "\r\n"; a lone "\n" (the master's keepalive) is
  // returned as an empty line.
  bool Line(std::string* line) {
    for (;;) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        size_t end = nl;
        if (end > 0 && buf_[end - 1] == '\r') --end;
        line->assign(buf_, 0, end);
        buf_.erase(0, nl + 1);
        return true;
      }
      if (buf_.size() > 4096 || !Fill()) return false;
    }
  }

  std::string& buffered() { return buf_; }

 private:
  const std::atomic<bool>* cancel_;
  int fd_ = -1;
  std::string buf_;
};

// The next line that is not a keepalive.
bool Reply(Link& link, std::string* line) {
  do {
    if (!link.Line(line)) return false;
  } while (line->empty());
  return true;
}

}  // namespace

StreamResult StreamRdb(const config::Endpoint& node, const config::Backend& be,
                       rdb::RdbParser& parser, const std::function<void(uint64_t)>& progress,
                       const std::atomic<bool>* cancel) {
  StreamResult res;
  Link link(cancel);
  if (std::string err = link.Connect(node, static_cast<int>(be.connect_timeout_ms));
      !err.empty()) {
    res.error = err;
    return res;
  }
  std::string line;
  if (!be.password.empty()) {
    std::vector<std::string_view> auth{"AUTH"};
    if (!be.username.empty()) auth.push_back(be.username);
    auth.push_back(be.password);
    if (!link.Send(auth) || !Reply(link, &line) || line != "+OK") {
      res.error = "AUTH refused";
      return res;
    }
  }
  // rdb-only (7.0+): the master keeps no backlog for us and closes after
  // the RDB. An older master answers an error, which is harmless.
  if (!link.Send({"REPLCONF", "rdb-only", "1"}) || !Reply(link, &line)) {
    res.error = "connection lost during the handshake";
    return res;
  }
  if (!link.Send({"REPLCONF", "capa", "eof"}) || !Reply(link, &line) || line != "+OK") {
    res.error = "REPLCONF refused: " + line;
    return res;
  }
  if (!link.Send({"PSYNC", "?", "-1"}) || !Reply(link, &line)) {
    res.error = "connection lost before the sync started";
    return res;
  }
  if (!line.starts_with("+FULLRESYNC")) {
    // e.g. -NOPERM: the user lacks the replication commands.
    res.error = "the master refused to sync: " + line.substr(0, 200);
    return res;
  }
  if (!Reply(link, &line) || line.size() < 2 || line[0] != '$') {
    res.error = "no RDB payload after FULLRESYNC";
    return res;
  }
  // `$EOF:<40 bytes>`: diskless, ends with the mark; `$<len>`: from disk.
  const bool eof_mark = line.starts_with("$EOF:");
  uint64_t remaining = eof_mark ? UINT64_MAX : std::strtoull(line.c_str() + 1, nullptr, 10);
  std::string& buf = link.buffered();
  for (;;) {
    if (!buf.empty()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
      res.bytes += n;
      remaining -= n;
      const bool fed = parser.Feed(std::string_view(buf.data(), n));
      buf.clear();
      if (progress) progress(res.bytes);
      if (!fed) {
        res.error = "bad RDB: " + parser.error();
        return res;
      }
      if (parser.done()) break;  // what follows (the EOF mark) is not ours
    }
    if (remaining == 0) break;
    if (!link.Fill()) break;
  }
  if (!parser.done() && cancel != nullptr && cancel->load()) {
    res.error = "stopped (keyfence is shutting down)";
    return res;
  }
  if (!parser.done()) {
    res.error = "the RDB stream ended early after " + std::to_string(res.bytes) + " bytes";
    return res;
  }
  res.ok = true;
  return res;
}

}  // namespace keyfence::proxy::accounting
