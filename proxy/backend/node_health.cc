#include "proxy/backend/node_health.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>

#include "proxy/base/logging.h"

namespace keyfence::proxy::node_health {

namespace {

struct Down {
  std::chrono::steady_clock::time_point since;
  uint64_t failures = 0;
};

std::mutex g_mu;
std::map<std::string, Down, std::less<>> g_down;  // g_mu
std::atomic<size_t> g_down_count{0};              // g_down.size(), read without the lock

}  // namespace

void NoteFailure(const std::string& node, std::string_view why) {
  std::lock_guard l(g_mu);
  auto [it, inserted] = g_down.try_emplace(node);
  if (!inserted) {
    ++it->second.failures;
    return;
  }
  it->second.since = std::chrono::steady_clock::now();
  it->second.failures = 1;
  g_down_count.store(g_down.size(), std::memory_order_relaxed);
  LogEvent(spdlog::level::warn, "backend node unreachable", {{"node", node}, {"error", why}});
}

void NoteUp(const std::string& node) {
  if (g_down_count.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard l(g_mu);
  auto it = g_down.find(node);
  if (it == g_down.end()) return;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - it->second.since)
                      .count();
  LogEvent(spdlog::level::warn, "backend node reachable again",
           {{"node", node}, {"down_ms", static_cast<uint64_t>(ms)},
            {"failed_attempts", it->second.failures}});
  g_down.erase(it);
  g_down_count.store(g_down.size(), std::memory_order_relaxed);
}

}  // namespace keyfence::proxy::node_health
