// Introspection keyfence answers itself (DESIGN.md "Handshake and
// introspection"; INFO is in info.cc): CONFIG GET (allow-list), COMMAND, COMMAND GETKEYS,
// the single-node CLUSTER view, and the no-op commands.
#include <algorithm>
#include <atomic>
#include <string>

#include "protocol/error_replies.h"
#include "protocol/slot.h"
#include "proxy/base/text.h"
#include "proxy/commands/families.h"
#include "proxy/commands/helpers.h"
#include "proxy/net/loop.h"
#include "tenancy/namespace.h"
#include "tenancy/notify_events.h"
#include "tenancy/policy.h"

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;
using tenancy::ReplyRule;

bool ConfigGet(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  const uint32_t notify = TenantNotifyFlags(ctx);
  SendBuilt(ctx, Verbatim(ctx), ReplyRule::kConfigGet,
            notify == kNotifyUnfiltered ? "" : "=" + tenancy::NotifyFlagsToString(notify));
  return true;
}

// CONFIG SET notify-keyspace-events <flags>: the tenant's own event classes,
// a subset of what the backend sends (keyfence filters its messages); any
// other parameter stays denied.
bool ConfigSet(CommandContext& ctx, const protocol::CommandInfo& cmd, const tenancy::Rule&) {
  auto args = ctx.args();
  if (args.size() % 2 != 0) {
    ctx.ReplyError(errors::Arity("config|set"));
    return true;
  }
  for (size_t i = 2; i < args.size(); i += 2) {
    if (!EqNoCase(args[i], "notify-keyspace-events")) {
      ctx.Reject(RejectReason::kDenied, tenancy::NoPermCommand(cmd));
      return true;
    }
  }
  uint32_t flags = 0;
  for (size_t i = 3; i < args.size(); i += 2) {
    if (!tenancy::ParseNotifyFlags(args[i], &flags)) {
      ctx.ReplyError(errors::kNotifyFlagsInvalid);
      return true;
    }
  }
  // Checked against the operator's flags when keyfence sets them (else the
  // server's are unknown here: the tenant's only filter what it sends).
  const std::string& configured = ctx.snapshot().backend.notify_keyspace_events;
  uint32_t backend = 0;
  tenancy::ParseNotifyFlags(configured, &backend);
  if (!configured.empty() && (flags & ~backend) != 0) {
    ctx.ReplyError(errors::NotifyFlagsNotOnBackend(tenancy::NotifyFlagsToString(flags),
                                                   tenancy::NotifyFlagsToString(backend)));
    return true;
  }
  if (TenantShared* shared = ctx.tenant_shared()) {
    shared->notify_flags.store(flags, std::memory_order_relaxed);
  }
  ctx.ReplySimple("OK");
  return true;
}

// COMMAND, COMMAND COUNT/INFO/DOCS/LIST: the command table reveals nothing
// about tenants, so the backend's own answer is exact.
bool CommandDocs(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  SendBuilt(ctx, Verbatim(ctx), ReplyRule::kNone, "");
  return true;
}

bool CommandGetKeys(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  auto args = ctx.args();
  if (args.size() < 3) {
    ctx.ReplyError(errors::kGetKeysInvalidArgs);
    return true;
  }
  std::span<const std::string_view> sub = args.subspan(2);
  const protocol::CommandTable& table = protocol::CommandTable::Get();
  const protocol::CommandInfo* c = table.Find(sub[0]);
  if (c != nullptr && !c->subcommands.empty() && sub.size() > 1) c = table.FindSub(*c, sub[1]);
  if (c == nullptr) {
    ctx.ReplyError(errors::kGetKeysInvalidCommand);
    return true;
  }
  const int64_t argc = static_cast<int64_t>(sub.size());
  if ((c->arity > 0 && argc != c->arity) ||
      (c->arity < 0 && argc < -static_cast<int64_t>(c->arity))) {
    ctx.ReplyError(errors::kGetKeysArity);
    return true;
  }
  const tenancy::Rule& r = tenancy::CommandRules::Get().For(c->id);
  tenancy::NameRefs refs;
  if (tenancy::FindNames(r, *c, sub, &refs) != tenancy::FindStatus::kOk || refs.empty()) {
    ctx.ReplyError(errors::kGetKeysInvalidArgs);
    return true;
  }
  std::string& out = ctx.BeginReply();
  size_t n = 0;
  for (auto& ref : refs) n += ref.kind == tenancy::RefKind::kKey;
  protocol::AppendArrayHeader(out, n);
  for (auto& ref : refs) {
    if (ref.kind == tenancy::RefKind::kKey) protocol::AppendBulk(out, sub[ref.pos]);
  }
  ctx.EndReply();
  return true;
}

namespace {
constexpr std::string_view kNodeId = "6b657966656e6365000000000000000000000000";

void ClusterShards(std::string& out, const std::string& host, uint16_t port, int proto) {
  protocol::AppendArrayHeader(out, 1);
  protocol::AppendMapHeader(out, 2, proto);
  protocol::AppendBulk(out, "slots");
  protocol::AppendArrayHeader(out, 2);
  protocol::AppendInteger(out, 0);
  protocol::AppendInteger(out, protocol::kNumSlots - 1);
  protocol::AppendBulk(out, "nodes");
  protocol::AppendArrayHeader(out, 1);
  protocol::AppendMapHeader(out, 7, proto);
  protocol::AppendBulk(out, "id");
  protocol::AppendBulk(out, kNodeId);
  protocol::AppendBulk(out, "port");
  protocol::AppendInteger(out, port);
  protocol::AppendBulk(out, "ip");
  protocol::AppendBulk(out, host);
  protocol::AppendBulk(out, "endpoint");
  protocol::AppendBulk(out, host);
  protocol::AppendBulk(out, "role");
  protocol::AppendBulk(out, "master");
  protocol::AppendBulk(out, "replication-offset");
  protocol::AppendInteger(out, 0);
  protocol::AppendBulk(out, "health");
  protocol::AppendBulk(out, "online");
}
}  // namespace

// keyfence as the single node owning every slot.
bool Cluster(CommandContext& ctx, const protocol::CommandInfo& cmd, const tenancy::Rule&) {
  const std::string& host = ctx.info().peer.local_ip;
  uint16_t port = ctx.info().peer.local_port;
  int proto = ctx.proto();
  std::string& out = ctx.BeginReply();
  if (cmd.name == "cluster|keyslot") {
    std::string k;
    tenancy::AppendBackendKey(k, ctx.tenant()->prefix, ctx.args()[2]);
    protocol::AppendInteger(out, protocol::KeySlot(k));
  } else if (cmd.name == "cluster|myid") {
    protocol::AppendBulk(out, kNodeId);
  } else if (cmd.name == "cluster|slots") {
    protocol::AppendArrayHeader(out, 1);
    protocol::AppendArrayHeader(out, 3);
    protocol::AppendInteger(out, 0);
    protocol::AppendInteger(out, protocol::kNumSlots - 1);
    protocol::AppendArrayHeader(out, 3);
    protocol::AppendBulk(out, host);
    protocol::AppendInteger(out, port);
    protocol::AppendBulk(out, kNodeId);
  } else if (cmd.name == "cluster|nodes") {
    protocol::AppendVerbatim(out,
                             std::string(kNodeId) + " " + host + ":" + std::to_string(port) +
                                 "@" + std::to_string(port + 10000) +
                                 " myself,master - 0 0 1 connected 0-16383\n",
                             proto);
  } else if (cmd.name == "cluster|info") {
    protocol::AppendVerbatim(out,
                             "cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"
                             "cluster_slots_ok:16384\r\ncluster_known_nodes:1\r\n"
                             "cluster_size:1\r\ncluster_current_epoch:1\r\n",
                             proto);
  } else if (cmd.name == "cluster|shards") {
    ClusterShards(out, host, port, proto);
  } else {
    protocol::AppendError(out, errors::ClusterUnsupported(cmd.name.substr(8)));
  }
  ctx.EndReply();
  return true;
}

// READONLY, READWRITE, FUNCTION FLUSH: +OK (the tenant owns no functions).
bool Ok(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  ctx.ReplySimple("OK");
  return true;
}

bool FlushOptionOk(std::span<const std::string_view> args) {
  return args.size() == 2 ||
         (args.size() == 3 && (EqNoCase(args[2], "sync") || EqNoCase(args[2], "async")));
}

// FUNCTION FLUSH [SYNC|ASYNC]: the tenant owns no functions.
bool FunctionFlush(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  if (!FlushOptionOk(ctx.args())) {
    ctx.ReplyError(errors::kFunctionFlushOption);
    return true;
  }
  ctx.ReplySimple("OK");
  return true;
}

}  // namespace keyfence::proxy::commands
