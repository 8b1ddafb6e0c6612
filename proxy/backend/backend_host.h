// What backend connections and backends need from the worker that owns them:
// its loop (io_context and the per-turn flush), its metrics, the backend
// settings of the current config, and a way to ask for a topology refresh.
// Worker-local.
#pragma once

#include <memory>

#include "config/config.h"
#include "proxy/base/metrics.h"
#include "proxy/net/loop.h"

namespace keyfence::proxy {

class BackendTlsContext;

class BackendHost {
 public:
  virtual ~BackendHost() = default;
  virtual Loop& loop() = 0;
  virtual WorkerMetrics& metrics() = 0;
  virtual const config::Backend& settings() const = 0;
  // backend.tls's context for new connections; null: plain TCP.
  virtual std::shared_ptr<BackendTlsContext> backend_tls() const { return nullptr; }
  virtual void RequestTopologyRefresh() = 0;
};

}  // namespace keyfence::proxy
