#include "proxy/backend/router.h"
#include "protocol/error_replies.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "protocol/slot.h"
#include "protocol/writer.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
namespace errors = protocol::errors;

bool ParseRedirect(std::string_view e, int* slot, config::Endpoint* ep) {
  size_t sp1 = e.find(' ');
  if (sp1 == std::string_view::npos) return false;
  size_t sp2 = e.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  std::string_view s = e.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view addr = e.substr(sp2 + 1);
  size_t end = addr.find_first_of("\r\n");
  if (end != std::string_view::npos) addr = addr.substr(0, end);
  size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  int sl = 0, port = 0;
  if (std::from_chars(s.data(), s.data() + s.size(), sl).ec != std::errc() || sl < 0 ||
      sl >= protocol::kNumSlots) {
    return false;
  }
  std::string_view p = addr.substr(colon + 1);
  if (std::from_chars(p.data(), p.data() + p.size(), port).ec != std::errc() || port <= 0 ||
      port > 65535) {
    return false;
  }
  *slot = sl;
  ep->host.assign(addr.substr(0, colon));
  if (!ep->host.empty() && ep->host.front() == '[') ep->host = ep->host.substr(1, ep->host.size() - 2);
  ep->port = static_cast<uint16_t>(port);
  return true;
}

uint32_t Router::Allocate() {
  uint32_t rid;
  if (!free_.empty()) {
    rid = free_.back();
    free_.pop_back();
  } else {
    rid = static_cast<uint32_t>(slab_.size());
    slab_.emplace_back();
  }
  slab_[rid].in_use = true;
  return rid;
}

std::string& Router::Prepare() {
  prepared_ = Allocate();
  slab_[prepared_].bytes.clear();
  return slab_[prepared_].bytes;
}

void Router::Send(std::string_view bytes, int slot, ReplySink* sink, uint64_t tag, int proto,
                  bool follow) {
  Prepare().assign(bytes);
  Commit(slot, sink, tag, proto, follow);
}

void Router::Commit(int slot, ReplySink* sink, uint64_t tag, int proto, bool follow,
                    bool read_only, const BackendUser* user) {
  uint32_t rid = prepared_;
  prepared_ = UINT32_MAX;
  Inflight& f = slab_[rid];
  Start(f, slot, proto, BackendHint{reinterpret_cast<uintptr_t>(sink) >> 4, user}, read_only);
  f.sink = sink;
  f.tag = tag;
  f.follow = follow;
  if (f.node < 0) return WaitForOwner(rid);
  Transmit(rid);
}

// A fresh entry for a request of `slot`, aimed at the slot's master.
void Router::Start(Inflight& f, int slot, int proto, BackendHint hint, bool read_only) {
  f.slot = slot;
  f.proto = proto;
  f.hint = hint;
  f.redirects = 0;
  f.hops = 0;
  f.retries = 0;
  f.retry_start_ns = 0;
  f.waits = 0;
  f.asking = false;
  f.read = read_only;
  f.via_replica = false;
  f.node = view_.MasterForSlot(slot);
}

std::string& Router::PrepareDirect(int slot, int proto, BackendHint hint) {
  uint32_t rid = Allocate();
  prepared_ = rid;
  Inflight& f = slab_[rid];
  Start(f, slot, proto, hint, false);
  if (f.node >= 0) {
    BackendConn& c = view_.MasterConn(f.node, proto, hint);
    if (c.connected()) {
      direct_ = &c;
      direct_mark_ = c.out().size();
      return c.out();
    }
  }
  f.bytes.clear();
  return f.bytes;
}

void Router::CommitDirect(ReplySink* sink, uint64_t tag, bool follow) {
  uint32_t rid = prepared_;
  prepared_ = UINT32_MAX;
  Inflight& f = slab_[rid];
  f.sink = sink;
  f.tag = tag;
  f.follow = follow;
  if (direct_ == nullptr) {
    if (f.node < 0) return WaitForOwner(rid);
    return Transmit(rid);
  }
  BackendConn& c = *direct_;
  direct_ = nullptr;
  const std::string& o = c.out();
  const size_t n = o.size() - direct_mark_;
  f.bytes.resize(n);  // kept for a resend after a redirect (capacity reused)
  std::memcpy(f.bytes.data(), o.data() + direct_mark_, n);
  c.Push(this, rid);
  c.MarkDirty();
}

void Router::WaitForMaster(uint32_t rid, std::string_view error_frame) {
  Inflight& f = slab_[rid];
  host_.RequestTopologyRefresh();
  const uint64_t now = Loop::NowNs();
  if (f.retry_start_ns == 0) f.retry_start_ns = now;
  const uint64_t budget = uint64_t{host_.settings().retry_budget_ms} * 1000000;
  if (now - f.retry_start_ns > budget) return Finish(rid, error_frame);
  ResendAfter(rid, kMasterWaitMs);
}

void Router::WaitForOwner(uint32_t rid) {
  if (view_.WaitsForMaster()) return WaitForMaster(rid, errors::Frame(errors::kMasterUnknown));
  Inflight& f = slab_[rid];
  host_.RequestTopologyRefresh();
  if (++f.waits > kMaxOwnerWaits) {
    return Finish(rid, errors::Frame(errors::NoMasterForSlot(f.slot)));
  }
  ResendAfter(rid, kOwnerWaitMs);
}

// Sends request `rid` again after `ms` (to the slot's master as known then;
// an ASK target is kept), unless it was forgotten meanwhile.
void Router::ResendAfter(uint32_t rid, int ms) {
  auto timer = std::make_shared<asio::steady_timer>(host_.loop().io());
  timer->expires_after(std::chrono::milliseconds(ms));
  timer->async_wait([this, rid, timer](const boost::system::error_code& ec) {
    if (ec) return;
    Inflight& g = slab_[rid];
    if (!g.in_use) return;
    if (g.sink == nullptr) {  // forgotten meanwhile
      g.in_use = false;
      free_.push_back(rid);
      return;
    }
    if (!g.asking || g.node < 0) g.node = view_.MasterForSlot(g.slot);
    if (g.node < 0) return WaitForOwner(rid);
    Transmit(rid);
    host_.loop().FlushDirty();
  });
}

void Router::Transmit(uint32_t rid) {
  Inflight& f = slab_[rid];
  const BackendHint hint = f.hint;
  BackendConn* replica = f.read && !f.asking && f.hops == 0
                             ? view_.ReplicaConn(f.node, f.proto, hint)
                             : nullptr;
  if (replica != nullptr && !replica->Available()) replica = nullptr;  // the master answers
  BackendConn& c = replica != nullptr ? *replica : view_.MasterConn(f.node, f.proto, hint);
  f.via_replica = replica != nullptr;
  if (!c.Available()) {
    host_.RequestTopologyRefresh();
    std::string err;
    protocol::AppendError(err, c.down_error());
    if (view_.WaitsForMaster() && !f.via_replica) return WaitForMaster(rid, err);
    return Finish(rid, err);
  }
  if (f.asking) {
    protocol::AppendCommand(c.out(), {"ASKING"});
    c.Push(nullptr, 0);  // its +OK is dropped
  }
  c.out().append(f.bytes);
  c.Push(this, rid);
  c.MarkDirty();
}

void Router::Finish(uint32_t rid, std::string_view frame) {
  Inflight& f = slab_[rid];
  ReplySink* sink = f.sink;
  uint64_t tag = f.tag;
  f.in_use = false;
  f.sink = nullptr;
  if (f.bytes.capacity() > 64 * 1024) std::string().swap(f.bytes);
  free_.push_back(rid);
  if (sink != nullptr) sink->OnReply(tag, frame);
}

// False (and the request finished with an error) once the request has used
// its retry budget or kMaxHops sends.
bool Router::WithinBudget(uint32_t rid) {
  Inflight& f = slab_[rid];
  const uint64_t now = Loop::NowNs();
  if (f.retry_start_ns == 0) f.retry_start_ns = now;
  const uint64_t budget = uint64_t{host_.settings().retry_budget_ms} * 1000000;
  if (++f.hops <= kMaxHops && now - f.retry_start_ns <= budget) return true;
  Finish(rid, errors::Frame(errors::kTooManyRetries));
  return false;
}

void Router::RetryLater(uint32_t rid, int delay_ms) {
  if (!WithinBudget(rid)) return;
  Inflight& f = slab_[rid];
  const int shift = std::min(f.retries++, 4);
  ResendAfter(rid, std::min(delay_ms << shift, kMaxRetryDelayMs));
}

void Router::OnReply(uint64_t id, std::string_view frame) {
  uint32_t rid = static_cast<uint32_t>(id);
  if (rid >= slab_.size() || !slab_[rid].in_use) return;
  Inflight& f = slab_[rid];
  if (frame.empty() || frame[0] != '-') return Finish(rid, frame);  // not a redirect
  if (f.via_replica && frame.size() > 1 && frame.substr(1).starts_with(errors::kBackendPrefix)) {
    // The replica's connection failed: the master answers instead (as known now).
    if (!WithinBudget(rid)) return;
    f.via_replica = false;
    f.read = false;
    f.node = view_.MasterForSlot(f.slot);
    if (f.node < 0) return WaitForOwner(rid);
    Transmit(rid);
    return;
  }
  if (frame.size() > 1 && frame[0] == '-' && f.follow) {
    std::string_view e = frame.substr(1);
    if (view_.WaitsForMaster() && !f.via_replica &&
        (e.starts_with(errors::kNotSentPrefix) || e.starts_with("READONLY "))) {
      return WaitForMaster(rid, frame);  // it did not run: the next master runs it
    }
    int slot;
    config::Endpoint ep;
    if ((e.starts_with("MOVED ") || e.starts_with("ASK ")) && ParseRedirect(e, &slot, &ep)) {
      bool moved = e[0] == 'M';
      host_.metrics().CountRedirect(moved ? RedirectType::kMoved : RedirectType::kAsk);
      int node = view_.MasterIndex(ep);
      if (node < 0) {
        // Only nodes of the known topology: refresh first, then try again.
        host_.RequestTopologyRefresh();
        return RetryLater(rid, 50);
      }
      if (moved && ++f.redirects > kMaxRedirects) {
        return Finish(rid, errors::Frame(errors::kTooManyRedirects));
      }
      if (!WithinBudget(rid)) return;
      if (moved) {
        view_.NoteMoved(slot, node);
        host_.RequestTopologyRefresh();
      }
      f.asking = !moved;
      f.node = node;
      Transmit(rid);
      return;
    }
    if (e.starts_with("TRYAGAIN")) return RetryLater(rid, 20);
    if (e.starts_with("CLUSTERDOWN")) {
      host_.RequestTopologyRefresh();
      return RetryLater(rid, 100);
    }
  }
  Finish(rid, frame);
}

void Router::Forget(ReplySink* sink) {
  for (Inflight& f : slab_) {
    if (f.in_use && f.sink == sink) f.sink = nullptr;
  }
}

}  // namespace keyfence::proxy
