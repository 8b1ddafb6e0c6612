#include "tenancy/acl_rules.h"

#include "protocol/command_table.h"
#include "tenancy/command_rules.h"

namespace keyfence::tenancy {

namespace {

using protocol::CommandInfo;

// Sent by keyfence on a tenant's connections whatever the client asked.
constexpr std::string_view kConnectionCommands[] = {
    "+ping", "+hello", "+asking", "+readonly", "+readwrite", "+multi", "+exec",
    "+discard", "+watch", "+unwatch"};
// Forwarded, but not confinable by key patterns.
constexpr std::string_view kNeverAllowed[] = {"copy", "migrate", "move", "swapdb", "select",
                                              "scan", "randomkey", "dbsize", "keys",
                                              "flushall", "flushdb"};

std::string EscapeGlob(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

bool NeverAllowed(std::string_view name) {
  if (name == "script|flush") return true;  // answered by keyfence per tenant
  const std::string_view top = name.substr(0, name.find('|'));
  for (std::string_view n : kNeverAllowed) {
    if (top == n) return true;
  }
  return false;
}

bool Forwarded(const config::Tenant& t, const CommandInfo& c) {
  const Rule& r = CommandRules::Get().For(c.id);
  if (r.handling != Handling::kForward || t.deny.Contains(c.id)) return false;
  if (r.scripts && !t.limits.allow_scripts) return false;
  return !NeverAllowed(c.name);
}

void AddCommands(const config::Tenant& t, const CommandInfo& c, std::vector<std::string>* out) {
  if (c.subcommands.empty()) {
    if (Forwarded(t, c)) out->push_back("+" + std::string(c.name));
    return;
  }
  for (const CommandInfo& sub : c.subcommands) AddCommands(t, sub, out);
}

}  // namespace

std::string AclUserName(const config::Tenant& t) {
  std::string_view p = t.prefix;
  if (!p.empty() && p.back() == ':') p.remove_suffix(1);
  return "kf:" + std::string(p);
}

std::vector<std::string> AclSetUserArgs(const config::Tenant& t, std::string_view password) {
  std::vector<std::string> a = {"reset", "on", ">" + std::string(password),
                                "~" + EscapeGlob(t.prefix) + "*",
                                "&" + EscapeGlob(t.prefix) + "*", "-@all"};
  for (const CommandInfo& c : protocol::CommandTable::Get().commands()) AddCommands(t, c, &a);
  for (std::string_view c : kConnectionCommands) a.emplace_back(c);
  return a;
}

}  // namespace keyfence::tenancy
