// Introspection keyfence answers itself (DESIGN.md "Handshake and
// introspection"): INFO, CONFIG GET (allow-list), COMMAND, COMMAND GETKEYS,
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

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;
using tenancy::ReplyRule;

namespace {

void Line(std::string& s, std::string_view key, uint64_t v) {
  s.append(key);
  s.push_back(':');
  s.append(std::to_string(v));
  s.append("\r\n");
}

// # Commandstats: the tenant's own calls per command (usec are not kept per
// command: keyfence_request_duration_seconds has the tenant's latency).
void CommandStats(std::string& s, const TenantTotals& t) {
  s += "# Commandstats\r\n";
  const auto& table = protocol::CommandTable::Get();
  for (size_t id = 0; id < t.requests_by_command.size() && id < table.size(); ++id) {
    if (t.requests_by_command[id] == 0) continue;
    s += "cmdstat_";
    s += table.ById(static_cast<uint16_t>(id)).name;
    s += ":calls=" + std::to_string(t.requests_by_command[id]) + "\r\n";
  }
  s += "\r\n";
}

}  // namespace

// INFO of the tenant's own server: its clients and counters across every
// worker (connected, blocked, connections received, commands processed and
// refused, calls per command); the rest is the single-node view a client
// expects (DESIGN.md "Handshake and introspection").
bool Info(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  auto args = ctx.args();
  std::string section = args.size() > 1 ? std::string(args[1]) : "default";
  for (char& c : section) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool everything = section == "all" || section == "everything";
  const bool all = everything || section == "default";
  auto want = [&](std::string_view name, bool in_default = true) {
    if ((all && (in_default || everything)) || section == name) return true;
    for (size_t i = 2; i < args.size(); ++i) {
      if (EqNoCase(args[i], name)) return true;
    }
    return false;
  };
  const SessionInfo& info = ctx.info();
  const TenantShared* shared = ctx.tenant_shared();
  const TenantTotals totals = ctx.tenant_totals();
  std::string s;
  if (want("server")) {
    s += "# Server\r\nredis_version:" + std::string(kPresentedRedisVersion) +
         "\r\nredis_mode:standalone\r\nos:keyfence " KEYFENCE_VERSION
         "\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:0\r\ntcp_port:" +
         std::to_string(info.peer.local_port) + "\r\nuptime_in_seconds:" +
         std::to_string((Loop::NowNs() - info.created_ns) / 1000000000) + "\r\n\r\n";
  }
  if (want("clients")) {
    s += "# Clients\r\n";
    const auto load = [](const std::atomic<int64_t>& v) {
      return static_cast<uint64_t>(std::max<int64_t>(0, v.load(std::memory_order_relaxed)));
    };
    Line(s, "connected_clients", shared != nullptr ? load(shared->connections) : 1);
    const config::Tenant* t = ctx.tenant();
    Line(s, "maxclients", t != nullptr && t->limits.max_connections > 0
                              ? t->limits.max_connections
                              : ctx.snapshot().max_clients);
    Line(s, "blocked_clients", shared != nullptr ? load(shared->blocked) : 0);
    s += "\r\n";
  }
  if (want("persistence")) s += "# Persistence\r\nloading:0\r\nasync_loading:0\r\n\r\n";
  if (want("stats")) {
    s += "# Stats\r\n";
    Line(s, "total_connections_received", totals.connections_received);
    Line(s, "total_commands_processed", totals.requests);
    Line(s, "rejected_calls", totals.rejected);  // keyfence's refusals (keyfence_rejected_total)
    s += "\r\n";
  }
  if (want("replication")) s += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n";
  if (want("commandstats", false)) CommandStats(s, totals);
  // Cluster-aware clients (redis-py RedisCluster, ioredis Cluster) see one
  // node that owns every slot (DESIGN.md "Handshake and introspection").
  if (want("cluster")) s += "# Cluster\r\ncluster_enabled:1\r\n\r\n";
  if (want("keyspace")) s += "# Keyspace\r\n";
  protocol::AppendVerbatim(ctx.BeginReply(), s, ctx.proto());
  ctx.EndReply();
  return true;
}

bool ConfigGet(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  SendBuilt(ctx, Verbatim(ctx), ReplyRule::kConfigGet, "");
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
