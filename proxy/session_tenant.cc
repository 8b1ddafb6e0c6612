// ClientSession: the tenant of a connection, its limits (request size, rate,
// connections) and the accounting of big values.
#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "protocol/slot.h"
#include "protocol/writer.h"
#include "proxy/client_session.h"
#include "proxy/session_limits.h"
#include "proxy/worker.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
using tenancy::ReplyRule;
using namespace session;  // NOLINT: the session's named limits

bool ClientSession::SetTenant(const config::Tenant* t) {
  if (t == nullptr) return false;
  if (tenant_ == t) return true;
  TenantLocal& local = worker_.Tenant(t->app);
  if (tenant_ == nullptr || tenant_->app != t->app) {
    // max_connections per tenant, counted across workers (connect/auth time only).
    int64_t n = local.shared->connections.fetch_add(1, std::memory_order_relaxed) + 1;
    if (t->limits.max_connections > 0 && n > static_cast<int64_t>(t->limits.max_connections)) {
      local.shared->connections.fetch_sub(1, std::memory_order_relaxed);
      local.counters->CountRejected(RejectReason::kRateLimit);
      return false;
    }
    LeaveTenant();
    counted_connection_ = true;
    local.counters->AddConnection(1);
  }
  tenant_ = t;
  tenant_name_ = t->app;
  prefix_crc_ = protocol::Crc16(t->prefix.data(), t->prefix.size());
  local_ = &local;
  counters_ = local.counters;
  ApplyLimits();
  return true;
}

void ClientSession::LeaveTenant() {
  if (counted_connection_ && local_ != nullptr) {
    local_->shared->connections.fetch_sub(1, std::memory_order_relaxed);
    local_->counters->AddConnection(-1);
  }
  counted_connection_ = false;
  tenant_ = nullptr;
  local_ = nullptr;
  counters_ = nullptr;
}

// Big values are counted always and logged at most once a second per tenant
// and worker, with the tenant, the connection and the key (requests) or the
// command (replies).
void ClientSession::NoteBig(bool reply, size_t bytes, std::string_view what) {
  local_->counters->CountBig(reply);
  uint64_t now = Worker::NowNs();
  if (now - local_->big_log_ns < 1000000000ull) return;
  local_->big_log_ns = now;
  std::string shown(what.substr(0, 128));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  spdlog::warn("big {}: tenant={} conn={} {}={} bytes={}", reply ? "reply" : "request",
               tenant_->app, id_, reply ? "command" : "key", shown, bytes);
}

ClientSession::Admit ClientSession::AdmitRequest() {
  if (local_ == nullptr || local_->ops.unlimited()) return Admit::kGo;
  uint64_t now = Worker::NowNs();
  if (local_->ops.TryTake(1, now)) {
    delay_deadline_ns_ = 0;
    return Admit::kGo;
  }
  if (tenant_->limits.on_limit == config::OnLimit::kDelay) {
    if (delay_deadline_ns_ == 0) {
      delay_deadline_ns_ = now + uint64_t{tenant_->limits.max_delay_ms} * 1000000;
    }
    if (now < delay_deadline_ns_) {
      uint64_t wait = std::min(std::max<uint64_t>(local_->ops.WaitNs(1), 200000),
                               delay_deadline_ns_ - now);
      if (!delay_timer_) delay_timer_ = std::make_unique<asio::steady_timer>(worker_.io());
      delay_timer_->expires_after(std::chrono::nanoseconds(wait));
      auto alive = alive_;
      delay_timer_->async_wait([this, alive](const boost::system::error_code& ec) {
        if (!ec && *alive) Resume();
      });
      return Admit::kWait;
    }
  }
  delay_deadline_ns_ = 0;
  Reject(RejectReason::kRateLimit, "RATELIMIT tenant '" + tenant_->app +
                                       "' is over its limit of " +
                                       std::to_string(tenant_->limits.ops_per_sec) + " ops/s");
  return Admit::kRejected;
}

void ClientSession::ApplyLimits() {
  protocol::RequestLimits l;
  if (tenant_ != nullptr) {
    l.max_bulk_len = tenant_->limits.max_request_bytes;
  } else {
    l.max_args = kPreAuthMaxArgs;
    l.max_bulk_len = kPreAuthMaxBulk;
    l.max_inline_len = kPreAuthMaxBulk;
  }
  parser_.set_limits(l);
}

}  // namespace keyfence::proxy
