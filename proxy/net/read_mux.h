// Level-triggered read readiness for a worker's client sockets.
//
// Asio registers sockets edge-triggered, so a read loop over async_read_some
// costs one extra syscall per batch (a speculative read that returns EAGAIN,
// or an epoll_ctl re-arm for async_wait). ReadMux keeps its own epoll set in
// level-triggered mode, waits on it through one Asio descriptor, and on each
// wake-up asks epoll_wait (timeout 0) which clients are readable: per request
// batch that is one read and one write, as in Redis itself.
// Worker-local: Add/Remove/Enable/Disable only from the worker thread.
#pragma once

#include <sys/epoll.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

namespace keyfence::proxy {

class Readable {
 public:
  virtual ~Readable() = default;
  virtual void OnReadable() = 0;
};

class ReadMux {
 public:
  explicit ReadMux(boost::asio::io_context& io);
  ~ReadMux();
  ReadMux(const ReadMux&) = delete;
  ReadMux& operator=(const ReadMux&) = delete;

  bool Add(int fd, Readable* r);
  void Remove(int fd);
  void Enable(int fd, Readable* r, bool on);  // pause/resume reading (backpressure)
  void Start();
  void Stop();

 private:
  void Arm();
  void Drain();
  int epfd_;
  boost::asio::posix::stream_descriptor desc_;
  bool stopped_ = false;
  epoll_event events_[256];
};

}  // namespace keyfence::proxy
