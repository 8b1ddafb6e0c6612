// Named limits of a client session (worker-local behaviour, shared by the
// session's source files).
#pragma once

#include <cstddef>
#include <cstdint>

namespace keyfence::proxy::session {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kReadTurnBytes = 64 * 1024;     // read per client per loop turn (fairness)
constexpr size_t kMaxInflight = 1024;             // pipelined requests per client
constexpr size_t kTenantBufferFloor = 64 * 1024;  // output counted in a tenant's buffered bytes from here
constexpr size_t kOutputPause = 4 * 1024 * 1024;  // stop reading above this backlog
constexpr size_t kMinReadAhead = 64 * 1024;       // a declared bulk reserves at most max(this, received)
// Before AUTH on a gateway listener (like Redis processMultibulkBuffer).
constexpr size_t kPreAuthMaxArgs = 10;
constexpr size_t kPreAuthMaxBulk = 16 * 1024;
constexpr uint32_t kHotSample = 8;        // power of two
constexpr size_t kSlotKeep = 64 * 1024;   // slot reply buffers above this are freed
constexpr size_t kInputKeep = 64 * 1024;  // idle read buffers above this shrink
constexpr uint16_t kNoCommand = 0xffff;   // cur_cmd_id_ of a request refused before lookup

}  // namespace keyfence::proxy::session
