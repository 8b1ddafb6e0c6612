// A FIFO ring of T with power-of-two capacity that grows by doubling and never
// shrinks: steady-state push/pop allocate nothing (unlike std::deque, which
// allocates and frees a block every few hundred bytes of traffic).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace keyfence::proxy {

template <typename T>
class Ring {
 public:
  explicit Ring(size_t cap = 16) : items_(Pow2(cap)) {}

  bool empty() const { return head_ == tail_; }
  size_t size() const { return tail_ - head_; }
  T& front() { return items_[head_ & mask()]; }
  T& back() { return items_[(tail_ - 1) & mask()]; }
  // i-th element from the front.
  T& at(size_t i) { return items_[(head_ + i) & mask()]; }

  // Appends a slot and returns it (its previous contents are kept, so strings
  // keep their capacity; the caller resets the fields it uses).
  T& push_back() {
    if (size() == items_.size()) Grow();
    return items_[tail_++ & mask()];
  }
  void pop_front() { ++head_; }
  void clear() { head_ = tail_ = 0; }

 private:
  static size_t Pow2(size_t n) {
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
  }
  size_t mask() const { return items_.size() - 1; }
  void Grow() {
    std::vector<T> n(items_.size() * 2);
    for (size_t i = 0; i < size(); ++i) n[i] = std::move(items_[(head_ + i) & mask()]);
    tail_ = size();
    head_ = 0;
    items_ = std::move(n);
  }
  std::vector<T> items_;
  size_t head_ = 0;  // monotonically increasing; index = counter & mask
  size_t tail_ = 0;
};

}  // namespace keyfence::proxy
