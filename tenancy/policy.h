// Command and key policy of a tenant (DESIGN.md "deny_commands", "key_rules").
// Pure: (tenant, command, names) -> verdict. Worker threads call it per request;
// it reads only the immutable config::Tenant.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "config/config.h"
#include "protocol/command_table.h"
#include "tenancy/key_finder.h"

namespace keyfence::tenancy {

enum class Verdict : uint8_t { kAllow, kDenyCommand, kDenyKey };

// The tenant's deny_commands (global ones merged in); a denied parent denies
// its subcommands.
Verdict CheckCommand(const config::Tenant& tenant, const protocol::CommandInfo& cmd);

// key_rules: the first rule whose glob matches a key of the command decides.
Verdict CheckKeys(const config::Tenant& tenant, const protocol::CommandInfo& cmd,
                  std::span<const std::string_view> args, const NameRefs& refs);

// "-NOPERM this user has no permissions to run the '<cmd>' command" (no '-'/CRLF).
std::string NoPermCommand(const protocol::CommandInfo& cmd);

}  // namespace keyfence::tenancy
