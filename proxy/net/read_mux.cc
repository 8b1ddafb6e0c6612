#include "proxy/net/read_mux.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace keyfence::proxy {

ReadMux::ReadMux(boost::asio::io_context& io) : epfd_(epoll_create1(EPOLL_CLOEXEC)), desc_(io) {
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  desc_.assign(epfd_);
}

ReadMux::~ReadMux() {
  boost::system::error_code ec;
  desc_.close(ec);  // closes epfd_
}

bool ReadMux::Add(int fd, Readable* r) {
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered
  ev.data.ptr = r;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void ReadMux::Remove(int fd) {
  epoll_event ev{};
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
}

void ReadMux::Enable(int fd, Readable* r, bool on) {
  epoll_event ev{};
  ev.events = on ? static_cast<uint32_t>(EPOLLIN) : 0u;
  ev.data.ptr = r;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void ReadMux::Start() { Arm(); }

void ReadMux::Stop() {
  stopped_ = true;
  boost::system::error_code ec;
  desc_.cancel(ec);
}

void ReadMux::Arm() {
  if (stopped_) return;
  desc_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                   [this](const boost::system::error_code& ec) {
                     if (ec || stopped_) return;
                     Drain();
                     Arm();
                   });
}

void ReadMux::Drain() {
  int n = epoll_wait(epfd_, events_, 256, 0);
  for (int i = 0; i < n; ++i) static_cast<Readable*>(events_[i].data.ptr)->OnReadable();
}

}  // namespace keyfence::proxy
