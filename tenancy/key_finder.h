// Finds every name in a command that must be rewritten into the tenant's
// namespace: keys (from the command's key specs, Redis getKeysUsingKeySpecs
// semantics), SORT BY/GET patterns, and pub/sub channels and patterns.
// Pure; allocation-free when `out` is reused (it keeps its capacity).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <vector>

#include "protocol/command_table.h"
#include "tenancy/command_rules.h"

namespace keyfence::tenancy {

enum class RefKind : uint8_t {
  kKey,             // a key: P inserted with the hash-tag rule
  kKeyPattern,      // SORT BY/GET pattern: rewritten like a key, but not a key
  kChannel,         // classic pub/sub channel: P+C
  kChannelPattern,  // classic pub/sub pattern: P+pattern (P has no glob characters)
  kShardChannel,    // sharded channel: like a key (hash-tag rule)
};

struct NameRef {
  uint32_t pos;  // argument index
  RefKind kind;
  uint32_t key_flags = 0;  // protocol::KeySpecFlag bits for keys
};

// A std::vector, not an InlinedVector: callers keep one per connection and
// clear() keeps its capacity, so even a 100-key MGET allocates nothing once warm.
using NameRefs = std::vector<NameRef>;

enum class FindStatus : uint8_t {
  kOk,
  kSyntaxError,  // keys cannot be located: answered with -ERR syntax error
};

// Fills `out` (cleared first) with the names of `args` (args[0] is the command
// name; for subcommands args[1] is the subcommand) sorted by position, unique.
FindStatus FindNames(const Rule& rule, const protocol::CommandInfo& cmd,
                     std::span<const std::string_view> args, NameRefs* out);

}  // namespace keyfence::tenancy
