// What a client session needs from the worker that owns it.
// Worker-local.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend.h"
#include "proxy/base/metrics.h"
#include "proxy/base/tenant_state.h"
#include "proxy/net/loop.h"

namespace keyfence::proxy {

class Session;
class TrackingHub;

class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual Loop& loop() = 0;
  virtual const config::SnapshotPtr& snapshot() const = 0;
  virtual uint64_t snapshot_version() const = 0;
  virtual Backend& backend() = 0;
  // This worker's state of a tenant (created on first use).
  virtual TenantLocal& Tenant(const std::string& name) = 0;
  // Counters for requests refused before AUTH (tenant="unauthenticated").
  virtual TenantCounters& Unauthenticated() = 0;
  // Failed AUTH attempts per client address (DESIGN.md: throttled per address).
  // Failed AUTH per "<address> <user>": the wait before the next attempt may
  // be checked (0: go; UINT64_MAX: refused for now).
  virtual uint64_t AuthWait(const std::string& key, uint64_t now_ns) = 0;
  virtual void AuthFailed(const std::string& key, uint64_t now_ns) = 0;
  virtual size_t sessions() const = 0;
  // Unauthenticated connections (process-wide): false if `addr` or the total
  // is at its cap.
  virtual bool TryAddUnauthenticated(const std::string& addr, uint32_t per_addr,
                                     uint64_t total) = 0;
  virtual void RemoveUnauthenticated(const std::string& addr) = 0;
  // The tenant's backend ACL user (backend.acl: per_tenant); null if off.
  virtual const BackendUser* BackendUserFor(std::string_view app) = 0;
  // Runs `visit` on every worker's thread over its live sessions, then `done`
  // with the answers (in worker order) on this worker's thread. Cold paths.
  using SessionVisit = std::function<std::string(std::span<Session* const>)>;
  virtual void AskAllWorkers(SessionVisit visit,
                             std::function<void(std::vector<std::string>)> done) = 0;
  // This worker's live session `id`, or null.
  virtual Session* FindSession(uint64_t id) = 0;
  // Runs fn(session or null) on the thread of the worker that owns client
  // `id` (now, if it is this one). fn may capture only values.
  virtual void PostToSession(uint64_t id, std::function<void(Session*)> fn) = 0;
  // This worker's client-side caching hub (commands/tracking.h).
  virtual TrackingHub& tracking_hub() = 0;
  // Counters summed over every worker (INFO; cold paths only).
  virtual const MetricsRegistry& registry() const = 0;
  // The session closed; the host deletes it once its handlers are done.
  virtual void SessionClosed(Session* s) = 0;
};

}  // namespace keyfence::proxy
