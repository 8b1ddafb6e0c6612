// One accounting run over the live backend: every master (the cluster's from
// its topology, or the standalone node) read in turn as an RDB-only replica
// (replica_stream.h) into one Analysis. Blocking; control threads and the
// CLI only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "config/config.h"
#include "proxy/accounting/analysis.h"

namespace keyfence::proxy::accounting {

// (node, keys so far on it, RDB bytes so far on it)
using Progress = std::function<void(const std::string&, uint64_t, uint64_t)>;

// Each master's outcome is in a.nodes(); a.complete() says whether all were read.
// `cancel` (may be null) stops the reads (keyfence shutting down).
void AnalyzeBackend(const config::Snapshot& snap, Analysis& a, const Progress& progress = {},
                    const std::atomic<bool>* cancel = nullptr);

}  // namespace keyfence::proxy::accounting
