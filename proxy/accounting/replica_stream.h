// Reads one master's data as a replica that only wants the RDB: AUTH (with
// backend.username/password), REPLCONF rdb-only 1, REPLCONF capa eof, PSYNC ?
// -1, then the RDB payload (`$<len>` from a disk save, or `$EOF:<mark>` from a
// diskless one) streamed into an RdbParser as it arrives. One fork on the
// master (its BGSAVE), nothing else: no replication backlog is kept for us
// and the master closes the link after the RDB. Blocking, bounded by
// backend.connect_timeout_ms for connecting and kIdleTimeoutMs between
// bytes (the master sends a newline every second while it prepares the
// RDB). Control threads and the CLI only, never a worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "config/config.h"
#include "rdb/parser.h"

namespace keyfence::proxy::accounting {

constexpr int kIdleTimeoutMs = 30000;

struct StreamResult {
  bool ok = false;
  std::string error;   // why not, without secrets
  uint64_t bytes = 0;  // RDB bytes read
};

// `progress(bytes)` is called after each read.
// `cancel` (may be null): set by another thread, the stream stops within kPollSliceMs.
StreamResult StreamRdb(const config::Endpoint& node, const config::Backend& be,
                       rdb::RdbParser& parser,
                       const std::function<void(uint64_t)>& progress = {},
                       const std::atomic<bool>* cancel = nullptr);

}  // namespace keyfence::proxy::accounting
