// Quick measurements for the accountant (control side, blocking ControlLink on
// keyfence's own admin connection, each call bounded by connect_timeout_ms):
// one namespace's keys and memory (SCAN MATCH on every master, MEMORY USAGE
// of the first kMeasureSampleKeys keys pipelined, extrapolated past them) for
// the quotas; and a node's INFO memory for the memory tiers.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace keyfence::proxy::accounting {

constexpr int64_t kMeasureSampleKeys = 20000;
constexpr int kScanCount = 1000;

struct NamespaceFigures {
  bool ok = false;
  int64_t keys = 0;
  int64_t memory = 0;
  std::string error;
};

// `cancel` (may be null) stops it between SCAN batches.
NamespaceFigures MeasureNamespace(const std::vector<config::Endpoint>& masters,
                                  const config::Backend& be, std::string_view prefix,
                                  const std::atomic<bool>* cancel = nullptr);

struct NodeMemory {
  std::string node;  // host:port
  bool ok = false;
  uint64_t used = 0;       // used_memory
  uint64_t maxmemory = 0;  // 0: no limit
};

NodeMemory PollMemory(const config::Endpoint& node, const config::Backend& be);

}  // namespace keyfence::proxy::accounting
