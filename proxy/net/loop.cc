#include "proxy/net/loop.h"

#include <algorithm>

namespace keyfence::proxy {

Loop::Loop() : io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO), mux_(io_) {}

void Loop::ScheduleFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  boost::asio::post(io_, [this] {
    flush_posted_ = false;
    FlushDirty();
  });
}

void Loop::FlushDirty() {
  while (!dirty_backends_.empty() || !dirty_clients_.empty()) {
    for (size_t i = 0; i < dirty_backends_.size(); ++i) {
      Flushable* f = dirty_backends_[i];
      if (f == nullptr) continue;
      f->dirty_ = false;
      f->Flush();
    }
    dirty_backends_.clear();
    for (size_t i = 0; i < dirty_clients_.size(); ++i) {
      Flushable* f = dirty_clients_[i];
      if (f == nullptr) continue;
      f->dirty_ = false;
      f->Flush();
    }
    dirty_clients_.clear();
  }
}

void Loop::Unmark(Flushable* f) {
  if (!f->dirty_) return;
  std::replace(dirty_backends_.begin(), dirty_backends_.end(), f, static_cast<Flushable*>(nullptr));
  std::replace(dirty_clients_.begin(), dirty_clients_.end(), f, static_cast<Flushable*>(nullptr));
  f->dirty_ = false;
}

}  // namespace keyfence::proxy
