// The event loop of one worker as the layers above see it: the io_context,
// the level-triggered read multiplexer for client sockets, and the per-turn
// flush (every socket written to during a loop turn is flushed once, at the
// end of the turn: backends first, so requests reach Redis before we wait on
// client writes).
// Worker-local: every method runs on the worker's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>

#include "proxy/net/read_mux.h"

namespace keyfence::proxy {

// Something that buffers writes during a loop turn and writes them once.
class Flushable {
 public:
  virtual ~Flushable() = default;
  virtual void Flush() = 0;

 private:
  friend class Loop;
  bool dirty_ = false;
};

class Loop {
 public:
  Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  boost::asio::io_context& io() { return io_; }
  ReadMux& mux() { return mux_; }

  // Marks a socket to be flushed at the end of this loop turn.
  void MarkBackendDirty(Flushable* f) { Mark(f, dirty_backends_); }
  void MarkClientDirty(Flushable* f) { Mark(f, dirty_clients_); }
  // Flushes every socket marked during this turn: one write each.
  void FlushDirty();
  // Schedules FlushDirty() after the handlers already ready to run, so that
  // requests from many clients read in one turn share one backend write.
  void ScheduleFlush();
  // Drops f from the dirty lists (it is going away).
  void Unmark(Flushable* f);

  static uint64_t NowNs() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }

 private:
  static void Mark(Flushable* f, std::vector<Flushable*>& list) {
    if (f->dirty_) return;
    f->dirty_ = true;
    list.push_back(f);
  }
  boost::asio::io_context io_;
  ReadMux mux_;
  std::vector<Flushable*> dirty_backends_;
  std::vector<Flushable*> dirty_clients_;
  bool flush_posted_ = false;
};

}  // namespace keyfence::proxy
