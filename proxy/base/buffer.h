// One contiguous, growable byte buffer for a socket's input:
// Prepare(n) -> write area, Commit(n), Data()/Size() -> unread bytes, Consume(n).
// Views into Data() are valid until the next Prepare() (which may compact or
// grow) or Consume(). Worker-local.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>

namespace keyfence::proxy {

class Buffer {
 public:
  explicit Buffer(size_t initial = 16 * 1024) : cap_(initial), data_(new char[initial]) {}

  const char* Data() const { return data_.get() + begin_; }
  size_t Size() const { return end_ - begin_; }
  bool Empty() const { return begin_ == end_; }

  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // A write area of at least n bytes (compacts, then grows if needed).
  char* Prepare(size_t n) {
    if (cap_ - end_ >= n) return data_.get() + end_;
    if (begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (cap_ - end_ < n) {
      size_t ncap = cap_ * 2;
      while (ncap - end_ < n) ncap *= 2;
      std::unique_ptr<char[]> nd(new char[ncap]);
      std::memcpy(nd.get(), data_.get(), end_);
      data_ = std::move(nd);
      cap_ = ncap;
    }
    return data_.get() + end_;
  }
  size_t Writable() const { return cap_ - end_; }
  void Commit(size_t n) { end_ += n; }
  size_t Capacity() const { return cap_; }

  // Give back memory after a burst of large requests.
  void ShrinkIfIdle(size_t keep) {
    if (Empty() && cap_ > keep) {
      data_.reset(new char[keep]);
      cap_ = keep;
      begin_ = end_ = 0;
    }
  }

 private:
  size_t cap_;
  std::unique_ptr<char[]> data_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace keyfence::proxy
