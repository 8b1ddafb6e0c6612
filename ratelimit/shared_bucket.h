// Per-tenant rate limits shared by all workers without a lock on the request
// path (DESIGN.md "ratelimit/").
//
// SharedBucket is the tenant's token bucket; its state is a few atomics that
// workers touch only to borrow a chunk of tokens. BorrowingBucket is one
// worker's view: requests take from a local balance (plain arithmetic) and
// only when it runs dry does the worker borrow the next chunk (about 5 ms of
// the tenant's rate) from the shared bucket. So the limit holds across workers
// within one chunk per worker, and the shared atomics see one read-modify-write
// per chunk, not per request.
// Reconfiguration (a config reload) changes rate and burst in place and keeps
// the tokens already earned.
#pragma once

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cstdint>

namespace keyfence::ratelimit {

class SharedBucket {
 public:
  // rate 0 = unlimited; burst 0 = rate.
  void Configure(double rate_per_sec, double burst, uint64_t now_ns);
  // limits.scope: fleet (issue 14). A fed bucket does not refill with time at its
  // rate: the fleet feeder Deposit()s what the backend's bucket grants. `refill` is
  // what it refills with meanwhile: 0 while the fleet bucket answers, the fallback
  // share (rate / instances) while it cannot be reached. Unfed: the rate, as before.
  void SetFed(bool fed, double refill_per_sec, uint64_t now_ns);
  // The refill of a fed bucket (the feeder's: 0, or the fallback share); nothing if the
  // bucket is no longer fed (a reload made the tenant scope instance meanwhile).
  void SetFedRefill(double refill_per_sec, uint64_t now_ns);
  bool fed() const { return fed_.load(std::memory_order_relaxed); }
  void Deposit(double n);
  // Totals for the feeder's demand estimate: tokens handed out by Take (and
  // Charge), and the Take calls that got less than they wanted.
  double taken() const {
    return static_cast<double>(taken_micro_.load(std::memory_order_relaxed)) / kScale;
  }
  uint64_t shortfalls() const { return shortfalls_.load(std::memory_order_relaxed); }
  // Takes up to `want` tokens; returns how many it got (may be less).
  double Take(double want, uint64_t now_ns);
  // Takes `n` tokens even if that leaves a debt (reply bytes already sent).
  void Charge(double n, uint64_t now_ns);
  double rate() const { return rate_.load(std::memory_order_relaxed); }
  double capacity() const { return capacity_.load(std::memory_order_relaxed); }
  bool unlimited() const { return rate() <= 0; }
  double tokens() const;
  // The tokens there would be after a refill at now_ns (reads only).
  double Available(uint64_t now_ns) const;

 private:
  void Refill(uint64_t now_ns);
  static constexpr double kScale = 1e6;  // tokens are kept as integers of 1e-6 token
  std::atomic<double> rate_{0};
  std::atomic<double> capacity_{0};
  std::atomic<int64_t> micro_tokens_{0};
  std::atomic<uint64_t> last_ns_{0};
  std::atomic<double> refill_{0};  // tokens/s added by time: rate_ unless fed
  std::atomic<bool> fed_{false};
  std::mutex fed_mu_;  // SetFed / SetFedRefill (config and feeder threads; never Take)
  std::atomic<int64_t> taken_micro_{0};
  std::atomic<uint64_t> shortfalls_{0};
};

class BorrowingBucket {
 public:
  // The shortest wait of a delayed request on a fed bucket (about the feeder's tick).
  static constexpr uint64_t kFedMinWaitNs = 10'000'000;
  explicit BorrowingBucket(SharedBucket* shared = nullptr) : shared_(shared) {}
  void set_shared(SharedBucket* s) { shared_ = s; local_ = 0; }

  // Takes n tokens if the tenant has them (locally or by borrowing).
  bool TryTake(double n, uint64_t now_ns);
  // Takes n tokens unconditionally (may go into debt; later TryTake fail until repaid).
  void Charge(double n, uint64_t now_ns);
  // Estimated nanoseconds until n tokens are there (0 if unlimited).
  uint64_t WaitNs(double n) const;
  bool unlimited() const { return shared_ == nullptr || shared_->unlimited(); }
  // For a limited bucket only (shared set):
  double rate() const { return shared_->rate(); }
  double capacity() const { return shared_->capacity(); }
  // This worker's balance plus the shared tokens at now_ns (reads only).
  double Available(uint64_t now_ns) const {
    return std::max(0.0, local_) + shared_->Available(now_ns);
  }

 private:
  SharedBucket* shared_;
  double local_ = 0;  // worker-local balance (may be negative: debt)
};

}  // namespace keyfence::ratelimit
