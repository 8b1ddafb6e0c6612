#include "tenancy/policy.h"

#include "protocol/error_replies.h"
#include "protocol/glob.h"

namespace keyfence::tenancy {

Verdict CheckCommand(const config::Tenant& tenant, const protocol::CommandInfo& cmd) {
  if (tenant.deny.Contains(cmd.id)) return Verdict::kDenyCommand;
  if (cmd.parent != nullptr && tenant.deny.Contains(cmd.parent->id)) return Verdict::kDenyCommand;
  return Verdict::kAllow;
}

Verdict CheckKeys(const config::Tenant& tenant, const protocol::CommandInfo& cmd,
                  std::span<const std::string_view> args, const NameRefs& refs) {
  if (tenant.key_rules.empty()) return Verdict::kAllow;
  const bool writes = (cmd.flags & protocol::kCmdWrite) != 0;
  for (const NameRef& ref : refs) {
    if (ref.kind != RefKind::kKey) continue;
    std::string_view key = args[ref.pos];
    for (const config::KeyRule& rule : tenant.key_rules) {
      if (!protocol::GlobMatch(rule.match, key)) continue;
      if (rule.read_only && writes) return Verdict::kDenyKey;
      if (rule.deny.Contains(cmd.id)) return Verdict::kDenyKey;
      if (cmd.parent != nullptr && rule.deny.Contains(cmd.parent->id)) return Verdict::kDenyKey;
      break;
    }
  }
  return Verdict::kAllow;
}

std::string NoPermCommand(const protocol::CommandInfo& cmd) {
  return protocol::errors::NoPermCommand(cmd.name);
}

}  // namespace keyfence::tenancy
