#include "tenancy/decision.h"

#include "tenancy/namespace.h"
#include "tenancy/numkeys_errors.h"

#include <charconv>

#include <absl/strings/match.h>

#include "protocol/error_replies.h"
#include "tenancy/policy.h"

namespace keyfence::tenancy {
namespace {

using protocol::CommandInfo;
using protocol::CommandTable;

// absl::string_view is not std::string_view in every abseil build.
bool EqNoCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(absl::string_view(a.data(), a.size()),
                                absl::string_view(b.data(), b.size()));
}

// `POST` or `Host:` (any case): the first words of an HTTP request.
bool IsHttpLine(std::string_view name) { return EqNoCase(name, "post") || EqNoCase(name, "host:"); }

Decision Rejected(Decision d, RejectKind kind) {
  d.outcome = Outcome::kReject;
  d.reject = kind;
  return d;
}

bool ArityOk(const CommandInfo& c, size_t argc) {
  const int64_t n = static_cast<int64_t>(argc);
  if (c.arity > 0) return n == c.arity;
  if (c.arity < 0) return n >= -static_cast<int64_t>(c.arity);
  return true;
}

// What a connection may run before AUTH.
bool AllowedUnauthenticated(const Rule& r) {
  return r.local == Local::kAuth || r.local == Local::kHello || r.local == Local::kQuit ||
         r.local == Local::kReset;
}

// What a RESP2 connection may run in pub/sub mode.
bool AllowedSubscribedResp2(const Rule& r) {
  return r.route == Route::kPubSub || r.local == Local::kPing || r.local == Local::kQuit ||
         r.local == Local::kReset;
}

bool DeniedCommand(const SessionView& s, const CommandInfo& cmd, const Rule& rule) {
  if (rule.handling == Handling::kDeny) return true;
  if (rule.scripts && (s.tenant == nullptr || !s.tenant->limits.allow_scripts)) return true;
  return s.tenant != nullptr && CheckCommand(*s.tenant, cmd) != Verdict::kAllow;
}

Route RouteOf(const SessionView& s, const Rule& rule, std::span<const std::string_view> args) {
  Route route = rule.route;
  if (rule.block_option && !s.in_multi) {
    for (size_t i = 1; i < args.size(); ++i) {
      if (EqNoCase(args[i], "streams")) break;
      if (EqNoCase(args[i], "block")) {
        route = Route::kBlocking;
        break;
      }
    }
  }
  // RESP3 clients may run any command while subscribed: on the subscriber
  // connection, in order with their replies (pushes are told apart by type).
  if (s.subscribed && route != Route::kPubSub) route = Route::kShared;
  return route;
}

}  // namespace

RejectMetric MetricOf(RejectKind k) {
  switch (k) {
    case RejectKind::kNone:
    case RejectKind::kNotInteger:
    case RejectKind::kSubscribedContext:  // a plain error reply, not a counted rejection
      return RejectMetric::kNone;
    case RejectKind::kUnknownCommand:
    case RejectKind::kMissingSubcommand:
    case RejectKind::kUnknownSubcommand:
    case RejectKind::kArity:
    case RejectKind::kDeniedCommand:
    case RejectKind::kSyntax:
    case RejectKind::kDeniedChannel:
      return RejectMetric::kDenied;
    case RejectKind::kNoAuth:
      return RejectMetric::kAuth;
    case RejectKind::kKeyRule:
      return RejectMetric::kKeyRule;
  }
  return RejectMetric::kNone;
}

Decision Decide(const SessionView& s, std::span<const std::string_view> args, NameRefs* refs) {
  refs->clear();
  Decision d;
  if (args.empty()) return Rejected(d, RejectKind::kUnknownCommand);
  const CommandTable& table = CommandTable::Get();
  const CommandRules& rules = CommandRules::Get();
  const CommandInfo* cmd = table.Find(args[0]);
  if (cmd == nullptr) {
    if (IsHttpLine(args[0])) {
      d.outcome = Outcome::kCrossProtocol;
      return d;
    }
    return Rejected(d, RejectKind::kUnknownCommand);
  }
  d.cmd = cmd;
  d.rule = &rules.For(cmd->id);

  // A container command: the subcommand decides, except for a bare parent that
  // keyfence answers itself (COMMAND).
  if (!cmd->subcommands.empty() && !(args.size() == 1 && d.rule->handling == Handling::kLocal)) {
    if (args.size() < 2) return Rejected(d, RejectKind::kMissingSubcommand);
    const CommandInfo* sub = table.FindSub(*cmd, args[1]);
    if (sub == nullptr) {
      // Redis 7.2 handshake commands that clients send to any server.
      if (cmd->name == "client" && s.tenant != nullptr &&
          (EqNoCase(args[1], "setinfo") || EqNoCase(args[1], "no-touch"))) {
        d.outcome = Outcome::kClientExtension;
        return d;
      }
      return Rejected(d, RejectKind::kUnknownSubcommand);
    }
    cmd = sub;
    d.cmd = sub;
    d.rule = &rules.For(sub->id);
  }
  const Rule& rule = *d.rule;

  if (!ArityOk(*cmd, args.size())) return Rejected(d, RejectKind::kArity);
  if (s.tenant == nullptr && !AllowedUnauthenticated(rule)) return Rejected(d, RejectKind::kNoAuth);
  if (s.subscribed && s.proto == 2 && !AllowedSubscribedResp2(rule)) {
    return Rejected(d, RejectKind::kSubscribedContext);
  }
  if (DeniedCommand(s, *cmd, rule)) return Rejected(d, RejectKind::kDeniedCommand);
  if (rule.handling == Handling::kLocal) {
    d.outcome = Outcome::kLocal;
    return d;
  }

  // Forwarded: every name must be found and allowed.
  if (FindNames(rule, *cmd, args, refs) != FindStatus::kOk) return Rejected(d, RejectKind::kSyntax);
  if (rule.no_db_option) {
    for (size_t i = 3; i < args.size(); ++i) {
      if (!EqNoCase(args[i], "db")) continue;
      // COPY ... DB n: Redis's integer error first; DB 0 is the tenant's own.
      int64_t db = 0;
      if (i + 1 < args.size()) {
        const std::string_view v = args[i + 1];
        auto r = std::from_chars(v.data(), v.data() + v.size(), db);
        if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size()) {
          return Rejected(d, RejectKind::kNotInteger);
        }
        if (db == 0) {
          ++i;
          continue;
        }
      }
      return Rejected(d, RejectKind::kDeniedCommand);
    }
  }
  for (const NameRef& r : *refs) {
    // Keyspace notifications: (un)subscribing to the tenant's own
    // __keyspace@0__:<key> channels and to __keyevent@0__:<event> (messages
    // filtered to the tenant's keys, namespace.h); never publishing to one.
    if ((r.kind == RefKind::kChannel || r.kind == RefKind::kChannelPattern) &&
        args[r.pos].starts_with("__key") &&
        !(rule.route == Route::kPubSub &&
          (IsKeyspaceChannel(args[r.pos]) || IsKeyeventChannel(args[r.pos])))) {
      return Rejected(d, RejectKind::kDeniedChannel);
    }
  }
  // (A forwarded command always has a tenant: only local commands pass NOAUTH.)
  if (s.tenant != nullptr && CheckKeys(*s.tenant, *cmd, args, *refs) != Verdict::kAllow) {
    return Rejected(d, RejectKind::kKeyRule);
  }
  d.outcome = Outcome::kForward;
  d.route = RouteOf(s, rule, args);
  return d;
}

std::string RejectText(const Decision& d, std::span<const std::string_view> args) {
  namespace errors = protocol::errors;
  if (d.outcome != Outcome::kReject) return {};
  // The name of the (parent) command; args[0] if the decision has none.
  const std::string_view name =
      d.cmd != nullptr ? d.cmd->name : (args.empty() ? std::string_view() : args[0]);
  switch (d.reject) {
    case RejectKind::kNone:
      return {};
    case RejectKind::kUnknownCommand:
      return errors::UnknownCommand(args);
    case RejectKind::kMissingSubcommand:
    case RejectKind::kArity:
      return errors::Arity(name);
    case RejectKind::kUnknownSubcommand:
      return errors::UnknownSubcommand(name, args.size() > 1 ? args[1] : std::string_view());
    case RejectKind::kNoAuth:
      return std::string(errors::kNoAuth);
    case RejectKind::kSubscribedContext:
      return errors::SubscribedContext(name);
    case RejectKind::kDeniedCommand:
      return errors::NoPermCommand(name);
    case RejectKind::kSyntax:
      if (d.cmd != nullptr) {
        if (std::string e = NumkeysError(*d.cmd, args); !e.empty()) return e;
      }
      return std::string(errors::kSyntax);
    case RejectKind::kDeniedChannel:
      return std::string(errors::kNoPermChannel);
    case RejectKind::kKeyRule:
      return std::string(errors::kNoPermKey);
    case RejectKind::kNotInteger:
      return std::string(errors::kNotInteger);
  }
  return {};
}

}  // namespace keyfence::tenancy
