// The one place that maps backend.mode to an implementation: a new kind of
// backend is a new Backend implementation plus a line here.
#include "proxy/backend/backend.h"
#include "proxy/backend/cluster_backend.h"
#include "proxy/backend/sentinel.h"
#include "proxy/backend/sentinel_backend.h"
#include "proxy/backend/standalone_backend.h"
#include "proxy/backend/topology.h"

namespace keyfence::proxy {

std::unique_ptr<Backend> MakeBackend(BackendHost& host, const config::Backend& settings) {
  switch (settings.mode) {
    case config::BackendMode::kCluster:
      return std::make_unique<ClusterBackend>(host);
    case config::BackendMode::kSentinel:
      return std::make_unique<SentinelBackend>(host);
    case config::BackendMode::kStandalone:
      break;
  }
  return std::make_unique<StandaloneBackend>(host);
}

std::unique_ptr<Discovery> MakeDiscovery(const config::Backend& settings, PublishSlotMap publish) {
  switch (settings.mode) {
    case config::BackendMode::kCluster:
      return std::make_unique<Topology>(settings, std::move(publish));
    case config::BackendMode::kSentinel:
      return std::make_unique<SentinelDiscovery>(settings, std::move(publish));
    case config::BackendMode::kStandalone:
      break;
  }
  return nullptr;
}

}  // namespace keyfence::proxy
