// The policy decision for one request: which checks of DESIGN.md reject it,
// or whether keyfence answers it itself or forwards it (and on which route).
// Pure: (session view, arguments) -> Decision. Reads only the immutable command
// table and rules and the immutable config::Tenant; the caller acts on the
// Decision (counting, admission, replying, forwarding).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"
#include "protocol/command_table.h"
#include "tenancy/command_rules.h"
#include "tenancy/key_finder.h"

namespace keyfence::tenancy {

// The connection state the policy depends on.
struct SessionView {
  const config::Tenant* tenant = nullptr;  // null: not authenticated yet
  int proto = 2;                           // RESP version of the client
  bool subscribed = false;                 // the connection is in pub/sub mode
  bool in_multi = false;                   // inside MULTI
};

enum class Outcome : uint8_t {
  kLocal,            // answered by keyfence: rule->local says which handler
  kForward,          // rewrite with *refs and forward on decision.route
  kClientExtension,  // CLIENT SETINFO / CLIENT NO-TOUCH that the table lacks (Redis 7.2):
                     // +OK locally, not counted
  kReject,           // reply RejectText(...) and nothing else
  kCrossProtocol,    // `POST` or `Host:`: an HTTP request (a web page scripting the port);
                     // closed without a reply, as Redis does
};

enum class RejectKind : uint8_t {
  kNone,
  kUnknownCommand,
  kMissingSubcommand,
  kUnknownSubcommand,
  kArity,
  kNoAuth,
  kSubscribedContext,
  kDeniedCommand,
  kSyntax,
  kDeniedChannel,
  kKeyRule,
  kNotInteger,  // an integer argument keyfence checks first (COPY ... DB x), in Redis's words
};

// Which keyfence_rejected_total reason a rejection counts under (none: not counted).
enum class RejectMetric : uint8_t { kNone, kDenied, kAuth, kKeyRule };

struct Decision {
  Outcome outcome = Outcome::kReject;
  RejectKind reject = RejectKind::kNone;
  // The resolved (sub)command; null if unknown. For kMissingSubcommand,
  // kUnknownSubcommand and kClientExtension: the parent command.
  const protocol::CommandInfo* cmd = nullptr;
  const Rule* rule = nullptr;    // the rule of cmd; null if cmd is null
  Route route = Route::kShared;  // for kForward (kShared otherwise)
};

RejectMetric MetricOf(RejectKind k);

// Decides what to do with one request. args[0] is the command name. For kForward,
// *refs holds the key/channel positions (FindNames) on return (its capacity is kept).
// Pure: reads only the immutable tables and the tenant; no allocation on the allowed path.
// The checks, in order (the first that fails decides):
//   unknown command; container without / with an unknown subcommand (CLIENT
//   SETINFO / NO-TOUCH once authenticated: kClientExtension); arity; NOAUTH
//   (all but AUTH, HELLO, QUIT, RESET); RESP2 pub/sub context (all but
//   pub/sub, PING, QUIT, RESET); denied (table, scripts gate, deny_commands);
//   then kLocal, or for forwarded commands: key finding (syntax), COPY ... DB,
//   keyspace-notification channels, key_rules. The route is rule.route, except
//   XREAD/XREADGROUP with BLOCK before STREAMS outside MULTI (kBlocking) and
//   anything but pub/sub while subscribed (kShared: on the subscriber connection).
// refs must not be null; it is cleared first.
Decision Decide(const SessionView& s, std::span<const std::string_view> args, NameRefs* refs);

// The error reply for a rejection, without '-' and CRLF, byte for byte as today.
// Empty for a decision that is not kReject.
std::string RejectText(const Decision& d, std::span<const std::string_view> args);

}  // namespace keyfence::tenancy
