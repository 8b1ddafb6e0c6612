// Fair shares between the connections of one tenant (issue 8 item 6), with an
// injected clock: simulated connections with different rhythms and demand, on
// one or two simulated workers (BorrowingBuckets of one SharedBucket), each
// loop step serving the connections in a fixed order (the worst case for
// first come, first served).
#include "ratelimit/fair_share.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace keyfence::ratelimit {
namespace {

constexpr uint64_t kUs = 1'000;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kT0 = 100 * kSec;  // a realistic steady_clock reading
constexpr uint64_t kStep = 100 * kUs;

struct SimConn {
  int worker = 0;
  double rate = 500;  // offered requests/s
  int batch = 1;      // arriving together (a pipeline)
  uint64_t start_ns = kT0;
  // state
  ConnShare share;
  uint64_t next_ns = 0;
  int sent = 0;
  int ok = 0;
};

struct Tenant {
  SharedBucket shared;
  FairShare fair;
  std::vector<std::unique_ptr<BorrowingBucket>> workers;
  Tenant(double rate, double burst, int nworkers) {
    shared.Configure(rate, burst, kT0 - kSec);
    for (int i = 0; i < nworkers; ++i) workers.push_back(std::make_unique<BorrowingBucket>(&shared));
  }
};

std::string Counts(const std::vector<SimConn>& conns) {
  std::ostringstream o;
  for (const SimConn& c : conns) o << c.ok << "/" << c.sent << " ";
  return o.str();
}

// on_limit: reject. Open-loop clients: each batch arrives on time whatever
// happened to the previous one; refused requests are gone.
void RunReject(Tenant& t, std::vector<SimConn>& conns, uint64_t from_ns, uint64_t end_ns,
               bool fair) {
  for (SimConn& c : conns) c.next_ns = std::max(c.next_ns, c.start_ns);
  for (uint64_t now = from_ns; now < end_ns; now += kStep) {
    // alternate which worker runs first: neither wins the refill race by construction
    for (int pass = 0; pass < 2; ++pass) {
      for (SimConn& c : conns) {
        if ((c.worker + (now / kStep)) % 2 != static_cast<uint64_t>(pass)) continue;
        while (c.next_ns <= now) {
          for (int i = 0; i < c.batch; ++i) {
            BorrowingBucket& b = *t.workers[c.worker];
            bool go = fair ? c.share.TryTake(b, t.fair, 1, now) : b.TryTake(1, now);
            c.ok += go;
            ++c.sent;
          }
          c.next_ns += static_cast<uint64_t>(c.batch / c.rate * 1e9);
        }
      }
    }
  }
}

void CheckFair(const std::vector<SimConn>& conns, double tolerance) {
  double mean = 0;
  for (const SimConn& c : conns) mean += c.ok;
  mean /= static_cast<double>(conns.size());
  INFO("served/sent: " << Counts(conns) << " mean " << mean);
  for (const SimConn& c : conns) CHECK(std::abs(c.ok - mean) <= tolerance * mean);
}

int Total(const std::vector<SimConn>& conns) {
  int n = 0;
  for (const SimConn& c : conns) n += c.ok;
  return n;
}

std::vector<SimConn> FourGreedy(int nworkers) {
  std::vector<SimConn> conns(4);
  const int batches[] = {1, 5, 20, 50};
  for (int i = 0; i < 4; ++i) {
    conns[i].batch = batches[i];
    conns[i].worker = i % nworkers;
    conns[i].start_ns = kT0 + static_cast<uint64_t>(i) * 137 * kUs;
  }
  return conns;
}

std::vector<SimConn> SameRhythm(int nworkers) {
  std::vector<SimConn> conns(4);
  for (int i = 0; i < 4; ++i) {
    conns[i].batch = 2;
    conns[i].worker = i % nworkers;
    conns[i].start_ns = kT0 + static_cast<uint64_t>(i) * 700 * kUs;
  }
  return conns;
}

TEST_CASE("fair_share: first come, first served is unfair (the problem)") {
  {
    Tenant t(200, 10, 1);
    std::vector<SimConn> conns = FourGreedy(1);
    RunReject(t, conns, kT0, kT0 + 5 * kSec, /*fair=*/false);
    INFO("different rhythms, served/sent: " << Counts(conns));
    // The connection that asks most often takes most of the tokens.
    CHECK(conns[0].ok > 2 * conns[3].ok);
    CHECK(Total(conns) == Approx(1010).margin(20));
  }
  {
    Tenant t(200, 10, 2);
    std::vector<SimConn> conns = SameRhythm(2);
    RunReject(t, conns, kT0, kT0 + 5 * kSec, /*fair=*/false);
    INFO("same rhythm, other phases, served/sent: " << Counts(conns));
    int lo = 1 << 30, hi = 0;
    for (const SimConn& c : conns) lo = std::min(lo, c.ok), hi = std::max(hi, c.ok);
    CHECK(hi > 2 * lo);  // whoever comes right after the refill
  }
}

TEST_CASE("fair_share: four greedy connections of the same rhythm get equal shares") {
  for (int nworkers : {1, 2}) {
    INFO("workers " << nworkers);
    Tenant t(200, 10, nworkers);
    std::vector<SimConn> conns = SameRhythm(nworkers);
    RunReject(t, conns, kT0, kT0 + 5 * kSec, /*fair=*/true);
    CheckFair(conns, 0.10);
    CHECK(Total(conns) <= 200 * 5 + 10 + 2 * nworkers);
    CHECK(Total(conns) >= 0.95 * 200 * 5);
  }
}

TEST_CASE("fair_share: four greedy connections with different rhythms get comparable shares") {
  // A pipeline of 50 against a burst of 10 can only ever take what the bucket
  // holds when it arrives, so the shares are less even than with one rhythm.
  for (int nworkers : {1, 2}) {
    INFO("workers " << nworkers);
    Tenant t(200, 10, nworkers);
    std::vector<SimConn> conns = FourGreedy(nworkers);
    RunReject(t, conns, kT0, kT0 + 5 * kSec, /*fair=*/true);
    CheckFair(conns, 0.20);
    // the limit still holds, and the tokens are not wasted
    CHECK(Total(conns) <= 200 * 5 + 10 + 2 * nworkers);
    CHECK(Total(conns) >= 0.95 * 200 * 5);
  }
}

TEST_CASE("fair_share: greedy connections are refused first, a quiet one gets through") {
  Tenant t(200, 10, 2);
  std::vector<SimConn> conns = FourGreedy(2);
  conns[3].rate = 20;  // quiet: well under its share of 50/s
  conns[3].batch = 1;
  RunReject(t, conns, kT0, kT0 + 5 * kSec, true);
  INFO("served/sent: " << Counts(conns));
  CHECK(conns[3].ok >= 0.9 * conns[3].sent);
  std::vector<SimConn> greedy(conns.begin(), conns.begin() + 3);
  CheckFair(greedy, 0.20);
  // the quiet connection's unused share goes to the others (surplus tokens)
  CHECK(Total(conns) >= 0.93 * 200 * 5);
  CHECK(Total(conns) <= 200 * 5 + 10 + 4);
}

TEST_CASE("fair_share: under the limit nothing is refused and the tenant is not contended") {
  Tenant t(200, 10, 2);
  std::vector<SimConn> conns(4);
  for (int i = 0; i < 4; ++i) {
    conns[i].rate = i == 0 ? 90 : 20;  // 150/s together, one of them well over a quarter
    conns[i].batch = 1;
    conns[i].worker = i % 2;
    conns[i].start_ns = kT0 + static_cast<uint64_t>(i) * 311 * kUs;
  }
  RunReject(t, conns, kT0, kT0 + 3 * kSec, true);
  INFO("served/sent: " << Counts(conns));
  for (const SimConn& c : conns) CHECK(c.ok == c.sent);
  CHECK_FALSE(t.fair.Contended(FairShare::Epoch(kT0 + 3 * kSec)));
}

TEST_CASE("fair_share: a connection that arrives later gets its share within a window or two") {
  Tenant t(200, 10, 2);
  std::vector<SimConn> conns = FourGreedy(2);
  conns[3].start_ns = kT0 + 2 * kSec;
  RunReject(t, conns, kT0, kT0 + 2 * kSec, true);
  CHECK(conns[3].sent == 0);
  int before[4];
  for (int i = 0; i < 4; ++i) before[i] = conns[i].ok;
  RunReject(t, conns, kT0 + 2 * kSec, kT0 + 5 * kSec, true);
  std::vector<int> got;
  for (int i = 0; i < 4; ++i) got.push_back(conns[i].ok - before[i]);
  INFO("served from 2 s to 5 s: " << got[0] << " " << got[1] << " " << got[2] << " " << got[3]);
  double mean = std::accumulate(got.begin(), got.end(), 0.0) / 4;
  for (int g : got) CHECK(std::abs(g - mean) <= 0.25 * mean);
}

// on_limit: delay. Closed-loop clients, always one request waiting: the
// request retries after WaitNs (at least 200 us) and is refused after 100 ms.
struct DelayConn {
  int worker = 0;
  ConnShare share;
  uint64_t retry_ns = kT0;
  uint64_t deadline_ns = 0;
  int ok = 0, rejected = 0;
};

void RunDelay(Tenant& t, std::vector<DelayConn>& conns, uint64_t end_ns, bool fair) {
  for (uint64_t now = kT0; now < end_ns; now += 10 * kUs) {
    for (DelayConn& c : conns) {
      if (c.retry_ns > now) continue;
      BorrowingBucket& b = *t.workers[c.worker];
      if (c.deadline_ns == 0) c.deadline_ns = now + 100 * kMs;
      if (fair ? c.share.TryTake(b, t.fair, 1, now) : b.TryTake(1, now)) {
        ++c.ok;
        c.deadline_ns = 0;
        c.retry_ns = now + 200 * kUs;  // the client's round trip
      } else if (now >= c.deadline_ns) {
        ++c.rejected;
        c.deadline_ns = 0;
        c.retry_ns = now + 200 * kUs;
      } else {
        uint64_t w = fair ? c.share.WaitNs(b, t.fair, 1, now) : b.WaitNs(1);
        c.retry_ns = now + std::min(std::max<uint64_t>(w, 200 * kUs), c.deadline_ns - now);
      }
    }
  }
}

TEST_CASE("fair_share: on_limit delay serves the waiting connections in fair shares") {
  for (bool fair : {false, true}) {
    Tenant t(200, 10, 2);
    std::vector<DelayConn> conns(4);
    for (int i = 0; i < 4; ++i) {
      conns[i].worker = i % 2;
      conns[i].retry_ns = kT0 + static_cast<uint64_t>(i) * 50 * kUs;
    }
    RunDelay(t, conns, kT0 + 5 * kSec, fair);
    std::ostringstream o;
    int total = 0;
    for (const DelayConn& c : conns) o << c.ok << "(" << c.rejected << ") ", total += c.ok;
    INFO((fair ? "shares: " : "no shares: ") << o.str());
    double mean = total / 4.0;
    bool within = true;
    for (const DelayConn& c : conns) within = within && std::abs(c.ok - mean) <= 0.10 * mean;
    if (fair) {
      CHECK(within);
      CHECK(total >= 0.95 * 1000);
      CHECK(total <= 1010 + 4);
    } else {
      CHECK_FALSE(within);  // whoever retries first wins (the problem)
    }
  }
}

TEST_CASE("fair_share: WaitNs of a connection over its share, then the take succeeds") {
  SharedBucket s;
  s.Configure(200, 200, kT0);  // 100 tokens per window; burst 200
  BorrowingBucket b(&s);
  FairShare f;
  ConnShare a;
  const uint64_t e = FairShare::Epoch(kT0) + 1;
  const uint64_t w0 = e * FairShare::kWindowNs;
  f.Join(e);  // another connection: a's share is 50 a window
  for (int i = 0; i < 60; ++i) REQUIRE(a.TryTake(b, f, 1, w0));
  CHECK(a.WaitNs(b, f, 1, w0) == 0);  // not contended: only the bucket counts
  f.NoteRefusal(e);                   // the other connection was refused
  CHECK(f.ShareOf(200, e) == Approx(50));
  CHECK_FALSE(a.TryTake(b, f, 1, w0));  // over its share: the 140 left are the other's
  int other = 0;
  while (b.TryTake(1, w0)) ++other;  // ... which takes them
  CHECK(other == 140);
  const uint64_t wait = a.WaitNs(b, f, 1, w0);
  // 60 taken: under 50 again once a sixth of the next window has passed
  CHECK(wait == Approx(FairShare::kWindowNs * 7 / 6).margin(2));
  CHECK_FALSE(a.TryTake(b, f, 1, w0 + wait - 2 * kMs));
  CHECK(a.TryTake(b, f, 1, w0 + wait));
}

TEST_CASE("fair_share: the active count per window") {
  FairShare f;
  CHECK(f.Active(10) == 1);  // nobody yet: at least 1
  f.Join(10);
  f.Join(10);
  f.Join(10);
  CHECK(f.Active(10) == 3);
  CHECK(f.Active(11) == 3);  // the previous window still counts
  f.Join(11);
  CHECK(f.Active(11) == 3);  // the larger of the two windows
  CHECK(f.Active(12) == 1);
  f.Join(11);
  f.Join(11);
  f.Join(11);
  CHECK(f.Active(12) == 4);
  CHECK(f.Active(13) == 1);  // expired after two windows
  f.Join(12);                // slot 0 moves from 10 to 12
  f.Join(10);                // a late reading of window 10: ignored
  CHECK(f.Active(12) == 4);
  CHECK(f.Active(13) == 1);
}

TEST_CASE("fair_share: contention expires after a quiet window") {
  FairShare f;
  CHECK_FALSE(f.Contended(50));
  f.NoteRefusal(50);
  CHECK(f.Contended(50));
  CHECK(f.Contended(51));
  CHECK_FALSE(f.Contended(52));
  f.NoteRefusal(49);  // older: no effect
  CHECK_FALSE(f.Contended(52));
}

TEST_CASE("fair_share: concurrent joins from several threads are all counted") {
  FairShare f;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&f] {
      for (int i = 0; i < 10000; ++i) f.Join(7);
    });
  }
  for (auto& th : threads) th.join();
  CHECK(f.Active(7) == 40000);
}

TEST_CASE("fair_share: usage is a sliding window; an unlimited bucket always gives") {
  SharedBucket s;
  s.Configure(1000, 1000, kT0);
  BorrowingBucket b(&s);
  FairShare f;
  ConnShare c;
  const uint64_t w0 = (kT0 / FairShare::kWindowNs + 1) * FairShare::kWindowNs;  // a window start
  for (int i = 0; i < 100; ++i) REQUIRE(c.TryTake(b, f, 1, w0));
  CHECK(c.Used(w0) == Approx(100));
  CHECK(c.Used(w0 + FairShare::kWindowNs) == Approx(100));  // all of last window
  CHECK(c.Used(w0 + FairShare::kWindowNs * 3 / 2) == Approx(50));
  CHECK(c.Used(w0 + FairShare::kWindowNs * 2) == Approx(0));
  CHECK(c.Used(w0 + FairShare::kWindowNs * 5) == Approx(0));

  SharedBucket none;
  none.Configure(0, 0, kT0);
  BorrowingBucket u(&none);
  ConnShare c2;
  f.NoteRefusal(FairShare::Epoch(kT0));
  for (int i = 0; i < 10000; ++i) REQUIRE(c2.TryTake(u, f, 1, kT0));
}

}  // namespace
}  // namespace keyfence::ratelimit
