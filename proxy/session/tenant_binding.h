// The tenant a connection is bound to, and what the tenant's limits say about
// its requests: max_connections at bind time, ops/s and bytes/s admission
// (borrowing from the tenant's shared buckets, no lock), and the accounting
// of big values. Worker-local.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "protocol/request_parser.h"
#include "proxy/base/tenant_state.h"
#include "proxy/session/session_host.h"
#include "ratelimit/fair_share.h"

namespace keyfence::proxy {

// Counted per denyoom request on top of its bytes: a new key costs more than
// its name and value (the dict entry, the object header).
inline constexpr size_t kQuotaWriteOverhead = 64;
// A named growth above this that would cross the quota's room is refused up front.
inline constexpr uint64_t kQuotaBigGrowthBytes = 1 << 20;

class TenantBinding {
 public:
  explicit TenantBinding(SessionHost& host) : host_(host) {}
  ~TenantBinding() { Leave(); }
  TenantBinding(const TenantBinding&) = delete;
  TenantBinding& operator=(const TenantBinding&) = delete;

  // Binds to `t` (another config object of the same tenant is a refresh);
  // false if the tenant is at max_connections.
  bool Bind(const config::Tenant* t);
  void Leave();

  const config::Tenant* tenant() const { return tenant_; }
  const std::string& name() const { return name_; }
  uint16_t prefix_crc() const { return prefix_crc_; }
  TenantLocal* local() const { return local_; }
  // Where rejections count: the tenant, or "unauthenticated".
  TenantCounters& counters();

  enum class Admit : uint8_t { kGo, kRejected, kWait };
  // ops_per_sec: kGo; kRejected (reply with OpsLimitError()); kWait for
  // *wait_ns (on_limit: delay, within max_delay_ms). While the tenant is over
  // its limit, each connection gets a fair share (ratelimit/fair_share.h).
  bool ops_limited() const { return local_ != nullptr && !local_->ops.unlimited(); }
  Admit AdmitRequest(uint64_t* wait_ns) {
    return ops_limited() ? AdmitLimited(wait_ns) : Admit::kGo;
  }
  // bytes_per_sec for a request of `bytes`: false if over the limit.
  bool TakeRequestBytes(size_t bytes) {
    return local_ == nullptr || local_->bytes.unlimited() || TakeBytesLimited(bytes);
  }
  void ChargeReply(size_t bytes, uint64_t now_ns) {
    if (local_ != nullptr && !local_->bytes.unlimited()) {
      local_->bytes.Charge(static_cast<double>(bytes), now_ns);
    }
  }
  // memory_quota_bytes / max_keys: a denyoom request of `bytes` may go
  // (counted toward the next measurement), or not (the tenant is over).
  bool quota_limited() const {
    return tenant_ != nullptr && (tenant_->limits.memory_quota_bytes | tenant_->limits.max_keys) != 0;
  }
  // `args` the whole request, `keys` the keys it names. Refused at once when
  // over; and a write that names its own growth (SETBIT, SETRANGE, BITFIELD)
  // past the quota's room is refused before it allocates.
  bool AdmitWrite(std::span<const std::string_view> args, size_t bytes, size_t keys);
  // A write that is not denyoom (DEL, EXPIRE, *REM, ...): it may have freed memory.
  void CountShrink() { local_->shared->quota.shrinks.fetch_add(1, std::memory_order_relaxed); }
  // The rejection texts for this tenant's limits, rendered once per tenant
  // config (a flooding tenant's rejections allocate nothing).
  std::string_view OpsLimitError();
  std::string_view BytesLimitError();
  std::string_view QuotaError();
  // Counts a big request (key) or reply (command) and logs it at most once a second.
  void NoteBig(bool reply, size_t bytes, std::string_view what, uint64_t conn_id);
  // A big reply of `command` for the request's first `key` (none: the key was
  // not captured, or the command has none): counted, recorded in the tenant's
  // big keys, logged at most once a second (shared with NoteBig).
  void NoteBigKey(size_t bytes, std::optional<std::string_view> key, std::string_view command,
                  uint64_t conn_id);
  // The parser limits for this binding (tighter before AUTH).
  protocol::RequestLimits ParserLimits() const;

 private:
  Admit AdmitLimited(uint64_t* wait_ns);
  bool TakeBytesLimited(size_t bytes);

  SessionHost& host_;
  const config::Tenant* tenant_ = nullptr;
  std::string name_;
  TenantLocal* local_ = nullptr;
  uint16_t prefix_crc_ = 0;  // CRC16 state of the tenant prefix (slot computation)
  bool counted_ = false;     // in local_->shared->connections
  uint64_t delay_deadline_ns_ = 0;  // on_limit: delay, while waiting for a token
  ratelimit::ConnShare ops_share_;  // this connection's part of the tenant's ops/s
  const config::Tenant* errors_of_ = nullptr;  // the tenant config the texts below are for
  std::string ops_error_, bytes_error_, quota_error_;
};

}  // namespace keyfence::proxy
