// What a reply tells INFO (stats, errorstats, commandstats): the error code of
// an error reply, whether a read found its key. Worker-local counting helpers
// for Session::OnReply / Complete.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "proxy/base/metrics.h"

namespace keyfence::proxy::session {

inline constexpr size_t kMaxCommandIds = 1024;
// By command id: reads whose reply shows whether the key existed (GET, HGET,
// ZSCORE, ...): a null reply is a miss (INFO keyspace_hits/misses).
extern const std::array<uint8_t, kMaxCommandIds> kLookups;
inline bool IsLookup(uint16_t cmd_id) { return cmd_id < kLookups.size() && kLookups[cmd_id] != 0; }

// A null reply: $-1 / *-1 (RESP2) or _ (RESP3).
inline bool IsNullFrame(std::string_view f) {
  return f[0] == '_' || (f.size() > 1 && f[1] == '-' && (f[0] == '$' || f[0] == '*'));
}

// Counts an error reply frame ("-CODE msg", or a RESP3 blob error) for
// errorstats and `cmd_id`'s failed_calls. Out of line: errors are rare.
void CountErrorFrame(TenantCounters& c, uint16_t cmd_id, std::string_view frame);

}  // namespace keyfence::proxy::session
