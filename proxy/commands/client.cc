// CLIENT subcommands keyfence answers itself: SETNAME, GETNAME, ID, INFO,
// LIST (own connection only), REPLY, SETINFO, NO-TOUCH and friends.
#include "protocol/error_replies.h"
#include "proxy/base/text.h"
#include "proxy/commands/families.h"
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
  std::string flags = ctx.pubsub().active() ? "P" : (ctx.tx().open ? "x" : "N");
  return "id=" + std::to_string(i.id) + " addr=" + i.peer.remote_ip + ":" +
         std::to_string(i.peer.remote_port) + " laddr=" + i.peer.local_ip + ":" +
         std::to_string(i.peer.local_port) + " fd=0 name=" + st.name +
         " age=" + std::to_string((now - i.created_ns) / 1000000000) +
         " idle=" + std::to_string((now - i.last_cmd_ns) / 1000000000) + " flags=" + flags +
         " db=0 sub=" + std::to_string(ctx.pubsub().channels.size()) +
         " psub=" + std::to_string(ctx.pubsub().patterns.size()) +
         " ssub=" + std::to_string(ctx.pubsub().shards.size()) + " multi=" + (ctx.tx().open ? "0" : "-1") +
         " qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
         "events=r cmd=client|info user=" +
         (ctx.tenant() != nullptr ? ctx.tenant()->app : std::string("default")) +
         " redir=-1 resp=" + std::to_string(st.proto) + " lib-name=" + st.lib_name +
         " lib-ver=" + st.lib_ver + "\n";
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
    case Local::kClientList:
      protocol::AppendVerbatim(ctx.BeginReply(), ClientInfoLine(ctx), st.proto);
      ctx.EndReply();
      return true;
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
