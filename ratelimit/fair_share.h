// Fair shares of one tenant's limit between its connections (issue 8 item 6).
//
// A bucket alone serves whoever asks first after a token arrives, so a
// connection that asks more often (or is read first in a loop turn, or sits on
// the worker that wins the refill race) takes most of an over-limit tenant's
// tokens. With shares, while the tenant is contended (some request of it was
// refused in this or the previous window), a connection whose usage over the
// last window (sliding) has reached its share is refused before it touches the
// bucket, so greedy connections are refused first and quiet ones still get
// through.
//
// The share is max-min fair: rate * window / active connections, raised to
// (rate * window - what the satisfied connections used) / the capped ones,
// from the statistics of the window before last (each connection publishes
// its window, once, when it starts the next one): what a quiet connection
// leaves is split between the greedy ones instead of being lost. Whatever is
// still left over (the bucket full but for one token, which would overflow)
// may go to any connection.
//
// Cost: FairShare (per tenant, in the process-wide tenant state) is a few
// words written rarely: per connection and window one compare-exchange to
// count it active and one to publish its last window; the contended mark is
// stored at most once per window by whoever sees a refusal and finds it old.
// ConnShare (per connection, one thread) is plain arithmetic. A request of a
// limited tenant adds one relaxed load (Contended) to the bucket's take; the
// share (a few relaxed loads) is computed only while the tenant is contended.
// Nothing here runs for a tenant without a limit.
#pragma once

#include <atomic>
#include <cstdint>

#include "ratelimit/shared_bucket.h"

namespace keyfence::ratelimit {

class FairShare {
 public:
  // The share window; active = sent a request in this or the previous window
  // (the last 0.5-1 s).
  static constexpr uint64_t kWindowNs = 500'000'000;
  static uint64_t Epoch(uint64_t now_ns) { return now_ns / kWindowNs; }

  // Counts one connection as active in window `epoch` (once per window per
  // connection). A window older than the slot's is ignored.
  void Join(uint64_t epoch);
  // Connections active in `epoch` or the one before (the larger count: most
  // connections are in both), at least 1.
  uint32_t Active(uint64_t epoch) const;

  // One connection's finished window `epoch`: whether it was capped (refused
  // more than a tenth of what it asked for: by its share or the bucket) and
  // the tokens it took.
  void Publish(uint64_t epoch, bool capped, double used);
  struct Stats {
    uint32_t capped = 0;
    uint32_t satisfied = 0;
    double satisfied_used = 0;  // tokens taken by the satisfied connections
  };
  // What was published for window `epoch` (all zero if nothing or overwritten).
  Stats StatsOf(uint64_t epoch) const;

  // A request of the tenant was refused in `epoch` (bucket empty or share used).
  void NoteRefusal(uint64_t epoch) {
    if (refused_epoch_.load(std::memory_order_relaxed) < epoch) {
      refused_epoch_.store(epoch, std::memory_order_relaxed);
    }
  }
  // Whether a refusal happened in `epoch` or the one before.
  bool Contended(uint64_t epoch) const {
    return refused_epoch_.load(std::memory_order_relaxed) + 1 >= epoch;
  }

  // A connection's share of one window at `epoch` for a tenant limited to
  // `rate` per second, or 0 if shares do not apply now (the tenant is not
  // contended, or has one active connection).
  double ShareOf(double rate, uint64_t epoch) const;

 private:
  static constexpr int kCountBits = 20;
  static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;
  // Join: slot epoch & 1 holds (epoch << kCountBits) | connections that joined.
  std::atomic<uint64_t> active_[2] = {0, 0};
  // Publish: slot epoch & 3 holds epoch (low 16 bits) | capped (12) |
  // satisfied (12) | tokens the satisfied took (24), fields saturating.
  std::atomic<uint64_t> stats_[4] = {0, 0, 0, 0};
  std::atomic<uint64_t> refused_epoch_{0};
};

// One connection's use of its tenant's bucket. Single-threaded (the
// connection's worker).
class ConnShare {
 public:
  // Takes n tokens from `bucket` (the worker's view of the tenant's bucket) if
  // the tenant has them and this connection may have them (see above).
  bool TryTake(BorrowingBucket& bucket, FairShare& fair, double n, uint64_t now_ns);
  // Estimated nanoseconds until a TryTake of n may succeed (on_limit: delay):
  // until the bucket has the tokens and, while the tenant is contended, until
  // this connection's usage is back under its share.
  uint64_t WaitNs(const BorrowingBucket& bucket, const FairShare& fair, double n,
                  uint64_t now_ns) const;
  // Tokens this connection took over the last window (sliding estimate: the
  // previous window's count weighted by the part of it still in the window,
  // plus this window's).
  double Used(uint64_t now_ns) const;
  void Reset() { *this = ConnShare(); }

 private:
  void Roll(uint64_t epoch, FairShare& fair);
  uint64_t epoch_ = 0;
  double cur_ = 0;     // tokens taken in window epoch_
  double prev_ = 0;    // tokens taken in window epoch_ - 1
  double share_ = 0;    // the last share seen in window epoch_ (0: none)
  double refused_ = 0;  // tokens refused in window epoch_ (share or bucket)
};

}  // namespace keyfence::ratelimit
