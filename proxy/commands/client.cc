// CLIENT subcommands keyfence answers itself: SETNAME, GETNAME, ID, INFO,
// REPLY, SETINFO, NO-TOUCH and friends; LIST, KILL and UNBLOCK over the
// tenant's own connections on every worker (never another tenant's).
#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "protocol/error_replies.h"
#include "proxy/base/text.h"
#include "proxy/commands/families.h"
#include "proxy/commands/helpers.h"
#include "tenancy/policy.h"
#include "proxy/net/loop.h"

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;
using tenancy::Local;

namespace {

std::string ClientInfoLine(CommandContext& ctx) {
  const SessionInfo& i = ctx.info();
  const ConnState& st = ctx.state();
  uint64_t now = Loop::NowNs();
  std::string flags = ctx.pubsub().active()                  ? "P"
                      : ctx.tx().open                         ? "x"
                      : (ctx.dedicated().blocking && ctx.inflight()) ? "b"
                                                              : "N";
  const auto& table = protocol::CommandTable::Get();
  const std::string_view cmd =
      i.cmd_id < table.size() ? table.ById(i.cmd_id).name : std::string_view("NULL");
  return "id=" + std::to_string(i.id) + " addr=" + i.peer.remote_ip + ":" +
         std::to_string(i.peer.remote_port) + " laddr=" + i.peer.local_ip + ":" +
         std::to_string(i.peer.local_port) + " fd=0 name=" + st.name +
         " age=" + std::to_string((now - i.created_ns) / 1000000000) +
         " idle=" + std::to_string((now - i.last_cmd_ns) / 1000000000) + " flags=" + flags +
         " db=0 sub=" + std::to_string(ctx.pubsub().channels.size()) +
         " psub=" + std::to_string(ctx.pubsub().patterns.size()) +
         " ssub=" + std::to_string(ctx.pubsub().shards.size()) + " multi=" + (ctx.tx().open ? "0" : "-1") +
         " qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
         "events=r cmd=" + std::string(cmd) + " user=" +
         (ctx.tenant() != nullptr ? ctx.tenant()->app : std::string("default")) +
         " redir=-1 resp=" + std::to_string(st.proto) + " lib-name=" + st.lib_name +
         " lib-ver=" + st.lib_ver + "\n";
}

std::string AppOf(CommandContext& ctx) {
  return ctx.tenant() != nullptr ? ctx.tenant()->app : std::string();
}

// The workers' answers of KILL and UNBLOCK: counts.
int64_t Sum(const std::vector<std::string>& answers) {
  int64_t n = 0;
  for (const auto& a : answers) n += std::stoll(a);
  return n;
}

bool SameTenant(CommandContext& peer, const std::string& app) {
  return peer.tenant() != nullptr && peer.tenant()->app == app;
}

// A client that CLIENT KILL / CLIENT LIST TYPE selects (Redis's filters).
struct ClientFilter {
  uint64_t id = 0;  // 0: any
  std::vector<uint64_t> ids;  // LIST ID ...
  std::string addr, laddr, user, type;
  bool skip_me = true;
  bool Matches(CommandContext& c, uint64_t me) const {
    const SessionInfo& i = c.info();
    if (skip_me && i.id == me) return false;
    if (id != 0 && i.id != id) return false;
    if (!ids.empty() && std::find(ids.begin(), ids.end(), i.id) == ids.end()) return false;
    if (!addr.empty() && addr != i.peer.remote_ip + ":" + std::to_string(i.peer.remote_port)) {
      return false;
    }
    if (!laddr.empty() && laddr != i.peer.local_ip + ":" + std::to_string(i.peer.local_port)) {
      return false;
    }
    if (!user.empty() && (c.tenant() == nullptr || user != c.tenant()->app)) return false;
    if (!type.empty()) {
      const bool pubsub = c.pubsub().active();
      if (type == "pubsub" ? !pubsub : (type != "normal" || pubsub)) return false;
    }
    return true;
  }
};

bool ParseId(std::string_view s, uint64_t* out) {
  int64_t v = 0;
  if (!ParseI64(s, &v) || v <= 0) return false;
  *out = static_cast<uint64_t>(v);
  return true;
}

// TYPE values: normal, pubsub (master, replica, slave match no tenant client).
bool ParseType(std::string_view t, std::string* out) {
  std::string lower(t);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower != "normal" && lower != "pubsub" && lower != "master" && lower != "replica" &&
      lower != "slave") {
    return false;
  }
  *out = lower;
  return true;
}

// CLIENT LIST [TYPE t] [ID id ...]: every connection of the tenant.
bool ClientList(CommandContext& ctx) {
  auto args = ctx.args();
  ClientFilter f;
  f.skip_me = false;
  for (size_t i = 2; i < args.size(); ++i) {
    if (EqNoCase(args[i], "type") && i + 1 < args.size()) {
      if (!ParseType(args[++i], &f.type)) {
        ctx.ReplyError(errors::UnknownClientType(args[i]));
        return true;
      }
    } else if (EqNoCase(args[i], "id") && i + 1 < args.size()) {
      for (++i; i < args.size(); ++i) {
        uint64_t id = 0;
        if (!ParseId(args[i], &id)) {
          ctx.ReplyError(errors::kInvalidClientId);
          return true;
        }
        f.ids.push_back(id);
      }
    } else {
      ctx.ReplyError(errors::kSyntax);
      return true;
    }
  }
  const std::string app = AppOf(ctx);
  const uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  const uint64_t me = ctx.info().id;
  ctx.AskPeers(
      [app, f, me](std::span<CommandContext* const> peers) {
        std::string lines;
        for (CommandContext* p : peers) {
          if ((app.empty() ? p->info().id == me : SameTenant(*p, app)) && f.Matches(*p, me)) {
            lines += ClientInfoLine(*p);
          }
        }
        return lines;
      },
      [tag](CommandContext& c, std::vector<std::string>& answers) {
        std::string all;
        for (auto& a : answers) all += a;
        std::string reply;
        protocol::AppendVerbatim(reply, all, c.proto());
        c.Complete(tag, reply);
      });
  return true;
}

// CLIENT KILL addr | CLIENT KILL [ID id] [ADDR a] [LADDR a] [USER u] [TYPE t]
// [SKIPME yes|no]: the tenant's connections only.
bool ClientKill(CommandContext& ctx) {
  auto args = ctx.args();
  ClientFilter f;
  const bool old_form = args.size() == 3;
  if (old_form) {
    f.addr.assign(args[2]);
    f.skip_me = false;
  } else {
    if (args.size() % 2 != 0) {
      ctx.ReplyError(errors::kSyntax);
      return true;
    }
    for (size_t i = 2; i + 1 < args.size(); i += 2) {
      std::string_view k = args[i], v = args[i + 1];
      if (EqNoCase(k, "id")) {
        if (!ParseId(v, &f.id)) {
          ctx.ReplyError(errors::kInvalidClientId);
          return true;
        }
      } else if (EqNoCase(k, "addr")) {
        f.addr.assign(v);
      } else if (EqNoCase(k, "laddr")) {
        f.laddr.assign(v);
      } else if (EqNoCase(k, "user")) {
        f.user.assign(v);
      } else if (EqNoCase(k, "type")) {
        if (!ParseType(v, &f.type)) {
          ctx.ReplyError(errors::UnknownClientType(v));
          return true;
        }
      } else if (EqNoCase(k, "skipme")) {
        if (EqNoCase(v, "yes")) {
          f.skip_me = true;
        } else if (EqNoCase(v, "no")) {
          f.skip_me = false;
        } else {
          ctx.ReplyError(errors::kSyntax);
          return true;
        }
      } else {
        ctx.ReplyError(errors::kSyntax);
        return true;
      }
    }
  }
  const std::string app = AppOf(ctx);
  const uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  const uint64_t me = ctx.info().id;
  ctx.AskPeers(
      [app, f, me](std::span<CommandContext* const> peers) {
        std::vector<CommandContext*> doomed;
        for (CommandContext* p : peers) {
          if (!app.empty() && SameTenant(*p, app) && f.Matches(*p, me)) doomed.push_back(p);
        }
        for (CommandContext* p : doomed) {
          if (p->info().id == me) {
            p->CloseAfterReply();  // this reply first, as in Redis
          } else {
            p->Kill();
          }
        }
        return std::to_string(doomed.size());
      },
      [tag, old_form](CommandContext& c, std::vector<std::string>& answers) {
        const int64_t n = Sum(answers);
        std::string reply;
        if (!old_form) {
          protocol::AppendInteger(reply, n);
        } else if (n > 0) {
          protocol::AppendSimple(reply, "OK");
        } else {
          protocol::AppendError(reply, errors::kNoSuchClient);
        }
        c.Complete(tag, reply);
      });
  return true;
}

// CLIENT UNBLOCK id [TIMEOUT|ERROR]: a blocked connection of the tenant.
bool ClientUnblock(CommandContext& ctx) {
  auto args = ctx.args();
  uint64_t id = 0;
  if (!ParseId(args[2], &id)) {
    ctx.ReplyError(errors::kNotInteger);
    return true;
  }
  bool error = false;
  if (args.size() == 4) {
    if (EqNoCase(args[3], "error")) {
      error = true;
    } else if (!EqNoCase(args[3], "timeout")) {
      ctx.ReplyError(errors::kUnblockReason);
      return true;
    }
  } else if (args.size() > 4) {
    ctx.ReplyError(errors::kSyntax);
    return true;
  }
  const std::string app = AppOf(ctx);
  const uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  ctx.AskPeers(
      [app, id, error](std::span<CommandContext* const> peers) {
        for (CommandContext* p : peers) {
          if (p->info().id == id && !app.empty() && SameTenant(*p, app)) {
            return std::string(p->Unblock(error) ? "1" : "0");
          }
        }
        return std::string("0");
      },
      [tag](CommandContext& c, std::vector<std::string>& answers) {
        const int64_t n = Sum(answers);
        std::string reply;
        protocol::AppendInteger(reply, n);
        c.Complete(tag, reply);
      });
  return true;
}

bool NameOk(std::string_view s) {
  for (char c : s) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

}  // namespace

bool Client(CommandContext& ctx, const protocol::CommandInfo& cmd, const tenancy::Rule& rule) {
  auto args = ctx.args();
  ConnState& st = ctx.state();
  switch (rule.local) {
    case Local::kClientSetName:
      if (!NameOk(args[2])) {
        ctx.ReplyError(errors::kBadClientName);
        return true;
      }
      st.name.assign(args[2]);
      ctx.ReplySimple("OK");
      return true;
    case Local::kClientGetName:
      if (st.name.empty()) {
        ctx.ReplyNull();
      } else {
        ctx.ReplyBulk(st.name);
      }
      return true;
    case Local::kClientId:
      ctx.ReplyInteger(static_cast<int64_t>(ctx.info().id));
      return true;
    case Local::kClientInfo:
      protocol::AppendVerbatim(ctx.BeginReply(), ClientInfoLine(ctx), st.proto);
      ctx.EndReply();
      return true;
    case Local::kClientList:
      return ClientList(ctx);
    case Local::kClientKill:
      return ClientKill(ctx);
    case Local::kClientUnblock:
      return ClientUnblock(ctx);
    case Local::kClientReply:
      if (EqNoCase(args[2], "on")) {
        st.reply_mode = ReplyMode::kOn;
        st.discard_current = false;  // ON is answered itself
        ctx.ReplySimple("OK");
      } else if (EqNoCase(args[2], "off")) {
        st.reply_mode = ReplyMode::kOff;
      } else if (EqNoCase(args[2], "skip")) {
        if (st.reply_mode != ReplyMode::kOff) st.reply_mode = ReplyMode::kSkip;
      } else {
        ctx.ReplyError(errors::kSyntax);
      }
      return true;
    default:
      break;
  }
  ctx.ReplyError(tenancy::NoPermCommand(cmd));
  return true;
}

bool ClientExtension(CommandContext& ctx) {
  auto args = ctx.args();
  if (EqNoCase(args[1], "no-touch")) {
    if (args.size() == 3 && (EqNoCase(args[2], "on") || EqNoCase(args[2], "off"))) {
      ctx.ReplySimple("OK");
    } else {
      ctx.ReplyError(errors::kSyntax);
    }
    return true;
  }
  if (args.size() != 4) {
    ctx.ReplyError(errors::Arity("client|setinfo"));
    return true;
  }
  if (!NameOk(args[3])) {
    ctx.ReplyError(errors::kBadLibName);
    return true;
  }
  if (EqNoCase(args[2], "lib-name")) {
    ctx.state().lib_name.assign(args[3]);
  } else if (EqNoCase(args[2], "lib-ver")) {
    ctx.state().lib_ver.assign(args[3]);
  } else {
    ctx.ReplyError(errors::UnrecognizedOption(args[2]));
    return true;
  }
  ctx.ReplySimple("OK");
  return true;
}

}  // namespace keyfence::proxy::commands
