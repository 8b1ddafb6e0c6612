// Connection and handshake commands keyfence answers itself (DESIGN.md
// "Handshake and introspection"): PING, ECHO, QUIT, RESET, SELECT, HELLO, AUTH.
#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "proxy/base/text.h"
#include "proxy/commands/families.h"
#include "proxy/commands/helpers.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;

bool Ping(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  auto args = ctx.args();
  if (ctx.pubsub().active() && ctx.proto() == 2) {
    PingSubscribed(ctx);  // the pub/sub form of PONG, from the backend
    return true;
  }
  if (args.size() > 2) {
    ctx.ReplyError(errors::Arity("ping"));
  } else if (args.size() == 2) {
    ctx.ReplyBulk(args[1]);
  } else {
    ctx.ReplySimple("PONG");
  }
  return true;
}

bool Echo(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  ctx.ReplyBulk(ctx.args()[1]);
  return true;
}

bool Quit(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  ctx.ReplySimple("OK");
  ctx.CloseAfterReply();
  return true;
}

bool Reset(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  if (ctx.inflight()) return false;
  ctx.ResetConnection();
  ctx.ReplySimple("RESET");
  return true;
}

bool Select(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  int64_t db;
  if (!ParseI64(ctx.args()[1], &db)) {
    ctx.ReplyError(errors::kNotInteger);
  } else if (db != 0) {
    ctx.ReplyError(errors::kOnlyDb0);
  } else {
    ctx.ReplySimple("OK");
  }
  return true;
}

namespace {

enum class AuthGate : uint8_t { kGo, kWait, kRefused };

// kWait: the request comes again after the delay (the handler returns false).
AuthGate AuthAllowed(CommandContext& ctx, std::string_view user) {
  const uint64_t w = ctx.AuthWait(user);
  if (w == 0) return AuthGate::kGo;
  if (w != UINT64_MAX) {
    ctx.DelayRequest(w);
    return AuthGate::kWait;
  }
  ctx.Reject(RejectReason::kAuth, errors::kAuthThrottled);
  return AuthGate::kRefused;
}

// Binds the connection to `t` after a successful password check; false (and
// a reply sent) if it cannot.
bool BindOrReply(CommandContext& ctx, const config::Tenant* t) {
  if (t == nullptr ||
      (!ctx.listener().tenant.empty() && t->app != ctx.listener().tenant)) {
    ctx.AuthFailed();
    ctx.Reject(RejectReason::kAuth, errors::kWrongPass);
    return false;
  }
  switch (ctx.Bind(t)) {
    case BindResult::kOk:
      return true;
    case BindResult::kStateHeld:
      ctx.ReplyError(errors::kAuthWithState);
      return false;
    case BindResult::kTooManyConnections:
      ctx.ReplyError(errors::kMaxClients);
      return false;
  }
  return false;
}

void HelloReply(CommandContext& ctx) {
  int proto = ctx.proto();
  std::string& out = ctx.BeginReply();
  protocol::AppendMapHeader(out, 7, proto);
  protocol::AppendBulk(out, "server");
  protocol::AppendBulk(out, "redis");
  protocol::AppendBulk(out, "version");
  protocol::AppendBulk(out, kPresentedRedisVersion);
  protocol::AppendBulk(out, "proto");
  protocol::AppendInteger(out, proto);
  protocol::AppendBulk(out, "id");
  protocol::AppendInteger(out, static_cast<int64_t>(ctx.info().id));
  protocol::AppendBulk(out, "mode");
  protocol::AppendBulk(out, "standalone");
  protocol::AppendBulk(out, "role");
  protocol::AppendBulk(out, "master");
  protocol::AppendBulk(out, "modules");
  protocol::AppendArrayHeader(out, 0);
  ctx.EndReply();
}

}  // namespace

bool Hello(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  auto args = ctx.args();
  int proto = ctx.proto();
  size_t i = 1;
  if (args.size() >= 2) {
    int64_t v;
    if (!ParseI64(args[1], &v)) {
      ctx.ReplyError(errors::kHelloBadProto);
      return true;
    }
    if (v != 2 && v != 3) {
      ctx.ReplyError(errors::kNoProto);
      return true;
    }
    proto = static_cast<int>(v);
    i = 2;
  }
  const config::Tenant* auth = nullptr;
  bool auth_given = false;
  std::string_view setname;
  bool has_setname = false;
  for (; i < args.size(); ++i) {
    if (EqNoCase(args[i], "auth") && i + 2 < args.size()) {
      if (AuthGate g = AuthAllowed(ctx, args[i + 1]); g != AuthGate::kGo) {
        return g == AuthGate::kRefused;
      }
      auth_given = true;
      auth = ctx.snapshot().Authenticate(args[i + 1], args[i + 2]);
      i += 2;
    } else if (EqNoCase(args[i], "setname") && i + 1 < args.size()) {
      setname = args[i + 1];
      has_setname = true;
      i += 1;
    } else {
      ctx.ReplyError(errors::HelloSyntax(args[i]));
      return true;
    }
  }
  if (auth_given && !BindOrReply(ctx, auth)) return true;
  if (ctx.tenant() == nullptr) {
    ctx.Reject(RejectReason::kAuth, errors::kHelloNoAuth);
    return true;
  }
  if (has_setname) ctx.state().name.assign(setname);
  ctx.state().proto = proto;
  HelloReply(ctx);
  return true;
}

bool Auth(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  auto args = ctx.args();
  const std::string_view user = args.size() == 3 ? args[1] : std::string_view("default");
  if (AuthGate g = AuthAllowed(ctx, user); g != AuthGate::kGo) return g == AuthGate::kRefused;
  const config::Tenant* t = nullptr;
  if (args.size() == 2) {
    t = ctx.snapshot().AuthenticatePasswordOnly(args[1]);
  } else if (args.size() == 3) {
    t = ctx.snapshot().Authenticate(args[1], args[2]);
  } else {
    ctx.ReplyError(errors::kSyntax);
    return true;
  }
  if (!BindOrReply(ctx, t)) return true;
  ctx.ReplySimple("OK");
  return true;
}

}  // namespace keyfence::proxy::commands
