#include "proxy/session/tenant_binding.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "protocol/slot.h"
#include "tenancy/growth.h"
#include "proxy/session/session_limits.h"

namespace keyfence::proxy {

bool TenantBinding::Bind(const config::Tenant* t) {
  if (t == nullptr) return false;
  if (tenant_ == t) return true;
  TenantLocal& local = host_.Tenant(t->app);
  if (tenant_ == nullptr || tenant_->app != t->app) {
    // max_connections per tenant, counted across workers (connect/auth time only).
    int64_t n = local.shared->connections.fetch_add(1, std::memory_order_relaxed) + 1;
    if (t->limits.max_connections > 0 && n > static_cast<int64_t>(t->limits.max_connections)) {
      local.shared->connections.fetch_sub(1, std::memory_order_relaxed);
      local.counters->CountRejected(RejectReason::kRateLimit);
      return false;
    }
    Leave();
    counted_ = true;
    local.counters->AddConnection(1);
    local.counters->CountConnectionReceived();
    ops_share_.Reset();
  }
  tenant_ = t;
  name_ = t->app;
  prefix_crc_ = protocol::Crc16(t->prefix.data(), t->prefix.size());
  local_ = &local;
  return true;
}

void TenantBinding::Leave() {
  if (counted_ && local_ != nullptr) {
    local_->shared->connections.fetch_sub(1, std::memory_order_relaxed);
    local_->counters->AddConnection(-1);
  }
  counted_ = false;
  tenant_ = nullptr;
  local_ = nullptr;
}

TenantCounters& TenantBinding::counters() {
  return local_ != nullptr ? *local_->counters : host_.Unauthenticated();
}

TenantBinding::Admit TenantBinding::AdmitLimited(uint64_t* wait_ns) {
  const uint64_t now = Loop::NowNs();
  if (ops_share_.TryTake(local_->ops, local_->shared->ops_fair, 1, now)) {
    delay_deadline_ns_ = 0;
    return Admit::kGo;
  }
  if (tenant_->limits.on_limit == config::OnLimit::kDelay) {
    if (delay_deadline_ns_ == 0) {
      delay_deadline_ns_ = now + uint64_t{tenant_->limits.max_delay_ms} * 1000000;
    }
    if (now < delay_deadline_ns_) {
      // Until the bucket has a token and this connection is under its share.
      const uint64_t wait = ops_share_.WaitNs(local_->ops, local_->shared->ops_fair, 1, now);
      *wait_ns = std::min(std::max<uint64_t>(wait, 200000), delay_deadline_ns_ - now);
      return Admit::kWait;
    }
  }
  delay_deadline_ns_ = 0;
  return Admit::kRejected;
}

std::string_view TenantBinding::OpsLimitError() {
  if (errors_of_ != tenant_) {
    errors_of_ = tenant_;
    ops_error_ = protocol::errors::OpsLimit(name_, tenant_->limits.ops_per_sec);
    bytes_error_ = protocol::errors::BytesLimit(name_, tenant_->limits.bytes_per_sec);
    quota_error_ = protocol::errors::QuotaExceeded(name_);
  }
  return ops_error_;
}

std::string_view TenantBinding::BytesLimitError() {
  OpsLimitError();
  return bytes_error_;
}

bool TenantBinding::AdmitWrite(std::span<const std::string_view> args, size_t bytes,
                               size_t keys) {
  TenantQuota& q = local_->shared->quota;
  if (q.over.load(std::memory_order_relaxed)) return false;
  const tenancy::Growth g = tenancy::WriteGrowth(args);
  const uint64_t charge = std::max<uint64_t>(bytes, g.bytes) + kQuotaWriteOverhead * keys;
  if (g.bytes > kQuotaBigGrowthBytes &&
      q.written.load(std::memory_order_relaxed) + charge >
          q.bytes_trigger.load(std::memory_order_relaxed)) {
    q.measure_wanted.store(true, std::memory_order_relaxed);
    return false;
  }
  q.Count(charge, keys);
  if (g.computed) q.measure_wanted.store(true, std::memory_order_relaxed);
  return true;
}

std::string_view TenantBinding::QuotaError() {
  OpsLimitError();
  return quota_error_;
}

bool TenantBinding::TakeBytesLimited(size_t bytes) {
  return local_->bytes.TryTake(static_cast<double>(bytes), Loop::NowNs());
}

namespace {
std::string ShownKey(std::string_view what) {
  std::string shown(what.substr(0, 128));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return shown;
}
}  // namespace

// Big values are counted always and logged at most once a second per tenant
// and worker, with the tenant, the connection and the key (requests; replies:
// the request's first key and the command). A big value arms the capture of
// first keys in reply slots (BigKeys::kCaptureNs) so that big replies are named.
void TenantBinding::NoteBig(bool reply, size_t bytes, std::string_view what, uint64_t conn_id) {
  local_->counters->CountBig(reply);
  uint64_t now = Loop::NowNs();
  local_->hot.big.Arm(now);  // from now on requests carry their key (NoteBigKey)
  if (now - local_->big_log_ns < 1000000000ull) return;
  local_->big_log_ns = now;
  spdlog::warn("big {}: tenant={} conn={} {}={} bytes={}", reply ? "reply" : "request",
               tenant_->app, conn_id, reply ? "command" : "key", ShownKey(what), bytes);
}

void TenantBinding::NoteBigKey(size_t bytes, std::optional<std::string_view> key,
                               std::string_view command, uint64_t conn_id) {
  local_->counters->CountBig(true);
  uint64_t now = Loop::NowNs();
  local_->hot.big.Arm(now);
  if (key) local_->hot.big.Record(*key, bytes);
  if (now - local_->big_log_ns < 1000000000ull) return;
  local_->big_log_ns = now;
  spdlog::warn("big reply: tenant={} conn={} key={} command={} bytes={}", tenant_->app, conn_id,
               key ? ShownKey(*key) : std::string("(unknown)"), command, bytes);
}

protocol::RequestLimits TenantBinding::ParserLimits() const {
  protocol::RequestLimits l;
  if (tenant_ != nullptr) {
    l.max_bulk_len = tenant_->limits.max_request_bytes;
  } else {
    l.max_args = session::kPreAuthMaxArgs;
    l.max_bulk_len = session::kPreAuthMaxBulk;
    l.max_inline_len = session::kPreAuthMaxBulk;
  }
  return l;
}

}  // namespace keyfence::proxy
