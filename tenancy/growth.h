// How much a write may grow a tenant's memory, beyond its request's bytes
// (limits.memory_quota_bytes, issue 11). Most denyoom commands grow memory by
// about what they carry; a few do not: SETBIT, SETRANGE and BITFIELD grow a
// string to an offset they name (a 40-byte request can allocate 512 MB),
// and the *STORE/COPY/RESTORE/script family writes what the server computes.
// Pure; called only for tenants with a quota.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace keyfence::tenancy {

struct Growth {
  uint64_t bytes = 0;      // the size the command may extend a value to (0: its request's)
  bool computed = false;   // writes what the server computes: measure the namespace soon
};

// `name` as the client sent it (any case); `args` the whole request.
Growth WriteGrowth(std::span<const std::string_view> args);

}  // namespace keyfence::tenancy
