// Helpers shared by the tenancy unit tests.
#pragma once

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/command_table.h"
#include "tenancy/command_rules.h"
#include "tenancy/key_finder.h"
#include "tenancy/rewriter.h"

namespace keyfence::tenancy::testing {

// Tenant "orders" of cluster "shop".
constexpr std::string_view kPrefix = "shop@orders:";

using Args = std::vector<std::string_view>;

// The command or subcommand named by args[0] (and args[1] if it has subcommands).
inline const protocol::CommandInfo& CommandOf(const Args& args) {
  REQUIRE_FALSE(args.empty());
  const protocol::CommandTable& table = protocol::CommandTable::Get();
  const protocol::CommandInfo* c = table.Find(args[0]);
  INFO("command " << args[0]);
  REQUIRE(c != nullptr);
  if (!c->subcommands.empty() && args.size() > 1) {
    c = table.FindSub(*c, args[1]);
    INFO("subcommand " << args[1]);
    REQUIRE(c != nullptr);
  }
  return *c;
}

// The command by full name ("get", "client|kill").
inline const protocol::CommandInfo& Named(std::string_view full) {
  const protocol::CommandInfo* c = protocol::CommandTable::Get().FindByFullName(full);
  INFO("command " << full);
  REQUIRE(c != nullptr);
  return *c;
}

inline const Rule& RuleOf(const protocol::CommandInfo& c) { return CommandRules::Get().For(c.id); }

inline const char* KindSuffix(RefKind k) {
  switch (k) {
    case RefKind::kKey:
      return "";
    case RefKind::kKeyPattern:
      return "p";
    case RefKind::kChannel:
      return "c";
    case RefKind::kChannelPattern:
      return "cp";
    case RefKind::kShardChannel:
      return "s";
  }
  return "?";
}

// FindNames(args) as a compact string: positions separated by spaces, with a
// suffix for non-key names ("3p" SORT pattern, "1c" channel, "1cp" channel
// pattern, "1s" shard channel); "ERR" for kSyntaxError.
inline std::string Names(const Args& args) {
  const protocol::CommandInfo& c = CommandOf(args);
  NameRefs refs;
  refs.push_back({99, RefKind::kKey, 0});  // FindNames must clear it
  if (FindNames(RuleOf(c), c, args, &refs) != FindStatus::kOk) return "ERR";
  std::string s;
  for (const NameRef& r : refs) {
    if (!s.empty()) s += ' ';
    s += std::to_string(r.pos);
    s += KindSuffix(r.kind);
  }
  return s;
}

// The RESP command keyfence sends to the backend for args (FindNames must succeed).
inline std::string Rewritten(const Args& args, std::string_view prefix = kPrefix) {
  const protocol::CommandInfo& c = CommandOf(args);
  NameRefs refs;
  REQUIRE(FindNames(RuleOf(c), c, args, &refs) == FindStatus::kOk);
  std::string out;
  WriteRequest(args, refs, prefix, out);
  return out;
}

// RESP multibulk of plain arguments, to write expectations readably.
inline std::string Resp(std::initializer_list<std::string_view> args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) {
    s += "$" + std::to_string(a.size()) + "\r\n";
    s.append(a);
    s += "\r\n";
  }
  return s;
}

// RESP bulk string.
inline std::string Bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

// RewriteReply into a fresh string.
inline std::string Reply(ReplyRule rule, std::string_view frame, std::string_view pattern = {},
                         int proto = 2, std::string_view prefix = kPrefix) {
  ReplyContext ctx;
  ctx.prefix = prefix;
  ctx.pattern = pattern;
  ctx.proto = proto;
  std::string out;
  RewriteReply(rule, frame, ctx, out);
  return out;
}

constexpr std::string_view kUnexpected =
    "-ERR keyfence: unexpected reply shape from the backend\r\n";

}  // namespace keyfence::tenancy::testing
