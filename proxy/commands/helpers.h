// Small pieces shared by the command families.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/commands/context.h"

namespace keyfence::proxy::commands {

// A decimal int64 (Redis string2ll rules: no spaces, no '+').
bool ParseI64(std::string_view s, int64_t* v);

// The backend pattern for a client glob: the namespace prefix plus the literal
// start of the client's pattern (never past a '{', which the rewrite changes).
std::string BackendPattern(std::string_view prefix, std::string_view client_pattern);

// Sends a command keyfence built (emulations) with the reply rule given: on
// the client's dedicated connection if it has one, else the shared path;
// inside MULTI it is queued with the transaction.
void SendBuilt(CommandContext& ctx, std::string_view bytes, tenancy::ReplyRule rule,
               std::string_view pattern);

// The request as the client sent it, without rewriting (keyless commands).
std::string Verbatim(CommandContext& ctx);

// The tenant's notify-keyspace-events (tenancy::NotifyFlag bits): its own
// CONFIG SET, else backend.notify_keyspace_events, else (not configured:
// the operator manages the server's flags) kNotifyUnfiltered.
inline constexpr uint32_t kNotifyUnfiltered = 0xffffffff;
uint32_t TenantNotifyFlags(CommandContext& ctx);

}  // namespace keyfence::proxy::commands
