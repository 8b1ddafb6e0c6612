// INFO of the tenant's own server (DESIGN.md "Handshake and introspection"):
// its clients and counters summed over every worker, its commands' and
// errors' statistics, and its keyspace and memory from a walk of its
// namespace (ScanJob kKeyspace), cached per tenant for kKeyspaceFreshNs so
// that `redis-cli --stat` polling every second costs one walk per interval.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "proxy/base/text.h"
#include "proxy/commands/families.h"
#include "proxy/commands/helpers.h"
#include "proxy/commands/scan_job.h"
#include "proxy/net/loop.h"

namespace keyfence::proxy::commands {

namespace {

constexpr uint64_t kKeyspaceFreshNs = 5'000'000'000;  // a walk serves INFO for 5 s
constexpr uint64_t kWalkOverdueNs = 60'000'000'000;   // another may start after this

// The tenant's one running walk; released when the walk's job goes (done,
// failed, or its client gone).
struct WalkClaim {
  WalkClaim(TenantShared* s, uint64_t started) : shared(s), started_ns(started) {}
  ~WalkClaim() {
    std::lock_guard lock(shared->keyspace_mu);
    if (shared->keyspace_walk_started_ns == started_ns) shared->keyspace_walk_started_ns = 0;
  }
  TenantShared* shared;
  uint64_t started_ns;
};

void Line(std::string& s, std::string_view key, uint64_t v) {
  s.append(key);
  s.push_back(':');
  s.append(std::to_string(v));
  s.append("\r\n");
}

// Redis's bytesToHuman: 1023B, 1.50K, 2.00M, ...
std::string Human(uint64_t n) {
  char buf[32];
  const char* units = "BKMGTP";
  double d = static_cast<double>(n);
  int u = 0;
  while (d >= 1024 && u < 5) {
    d /= 1024;
    ++u;
  }
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f%c", d, units[u]);
  }
  return buf;
}

// Which sections a request names: INFO [section ...], with default, all and
// everything as Redis 7.0 defines them.
struct Sections {
  std::vector<std::string> names;  // lower case
  bool all = false, everything = false, deflt = false;

  explicit Sections(std::span<const std::string_view> args) {
    for (size_t i = 1; i < args.size(); ++i) {
      std::string n(args[i]);
      for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      everything |= n == "everything";
      all |= n == "all" || n == "everything";
      deflt |= n == "default";
      names.push_back(std::move(n));
    }
    if (args.size() < 2) deflt = true;
  }
  // `in_default`: part of INFO / INFO default (commandstats is not).
  bool Want(std::string_view name, bool in_default = true) const {
    if (all || (deflt && in_default)) return true;
    return std::find(names.begin(), names.end(), name) != names.end();
  }
};

void ClientsSection(std::string& s, CommandContext& ctx) {
  const TenantShared* shared = ctx.tenant_shared();
  const auto load = [](const std::atomic<int64_t>& v) {
    return static_cast<uint64_t>(std::max<int64_t>(0, v.load(std::memory_order_relaxed)));
  };
  s += "# Clients\r\n";
  Line(s, "connected_clients", shared != nullptr ? load(shared->connections) : 1);
  const config::Tenant* t = ctx.tenant();
  Line(s, "maxclients", t != nullptr && t->limits.max_connections > 0
                            ? t->limits.max_connections
                            : ctx.snapshot().max_clients);
  Line(s, "blocked_clients", shared != nullptr ? load(shared->blocked) : 0);
  s += "\r\n";
}

// Memory: the tenant's own keys (MEMORY USAGE summed by the walk), never the
// server's, which would count every other tenant.
void MemorySection(std::string& s, const KeyspaceFigures& k) {
  const uint64_t used = static_cast<uint64_t>(std::max<int64_t>(0, k.memory));
  s += "# Memory\r\n";
  Line(s, "used_memory", used);
  s += "used_memory_human:" + Human(used) + "\r\n";
  Line(s, "used_memory_dataset", used);
  Line(s, "maxmemory", 0);
  s += "maxmemory_human:0B\r\n";
  s += "keyfence_memory_source:memory_usage\r\n";
  s += "\r\n";
}

void StatsSection(std::string& s, const TenantTotals& t) {
  s += "# Stats\r\n";
  Line(s, "total_connections_received", t.connections_received);
  Line(s, "total_commands_processed", t.requests);
  Line(s, "total_net_input_bytes", t.net_in);
  Line(s, "total_net_output_bytes", t.net_out);
  Line(s, "rejected_calls", t.rejected);  // keyfence's refusals (keyfence_rejected_total)
  Line(s, "keyspace_hits", t.hits);
  Line(s, "keyspace_misses", t.misses);
  uint64_t errors = 0;
  for (uint64_t n : t.errors_by_code) errors += n;
  Line(s, "total_error_replies", errors);
  s += "\r\n";
}

// The tenant's own calls per command (usec: from the request to its reply,
// as keyfence sees it), and its error replies by code.
void CommandStats(std::string& s, const TenantTotals& t) {
  s += "# Commandstats\r\n";
  const auto& table = protocol::CommandTable::Get();
  const auto at = [](const std::vector<uint64_t>& v, size_t i) {
    return i < v.size() ? v[i] : 0;
  };
  for (size_t id = 0; id < t.requests_by_command.size() && id < table.size(); ++id) {
    const uint64_t calls = t.requests_by_command[id];
    const uint64_t rejected = at(t.rejected_by_command, id);
    if (calls == 0 && rejected == 0) continue;
    const uint64_t usec = at(t.ns_by_command, id) / 1000;
    char per[32];
    std::snprintf(per, sizeof per, "%.2f",
                  calls > 0 ? static_cast<double>(usec) / static_cast<double>(calls) : 0.0);
    std::string name(table.ById(static_cast<uint16_t>(id)).name);
    for (char& c : name) c = c == ' ' ? '|' : c;
    s += "cmdstat_" + name + ":calls=" + std::to_string(calls) + ",usec=" + std::to_string(usec) +
         ",usec_per_call=" + per + ",rejected_calls=" + std::to_string(rejected) +
         ",failed_calls=" + std::to_string(at(t.failed_by_command, id)) + "\r\n";
  }
  s += "\r\n";
}

void ErrorStats(std::string& s, const TenantTotals& t) {
  s += "# Errorstats\r\n";
  for (size_t i = 0; i < kNumErrorCodes; ++i) {
    if (t.errors_by_code[i] == 0) continue;
    s += "errorstat_" + std::string(kErrorCodes[i]) + ":count=" +
         std::to_string(t.errors_by_code[i]) + "\r\n";
  }
  s += "\r\n";
}

// As Redis: no db0 line while the tenant has no keys.
void KeyspaceSection(std::string& s, const KeyspaceFigures& k) {
  s += "# Keyspace\r\n";
  if (k.keys > 0) {
    s += "db0:keys=" + std::to_string(k.keys) + ",expires=" + std::to_string(k.expires) +
         ",avg_ttl=" + std::to_string(k.avg_ttl_ms) + "\r\n";
  }
  // How fresh the figures are (-1: never counted; the walk failed).
  const int64_t age =
      k.as_of_ns == 0 ? -1 : static_cast<int64_t>((Loop::NowNs() - k.as_of_ns) / 1'000'000);
  s += "keyfence_keyspace_age_ms:" + std::to_string(age) + "\r\n";
  s += "\r\n";
}

std::string Render(CommandContext& ctx, const Sections& w, const KeyspaceFigures& k) {
  const SessionInfo& info = ctx.info();
  const TenantTotals totals = ctx.tenant_totals();
  std::string s;
  if (w.Want("server")) {
    s += "# Server\r\nredis_version:" + std::string(kPresentedRedisVersion) +
         "\r\nredis_mode:standalone\r\nos:keyfence " KEYFENCE_VERSION
         "\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:0\r\ntcp_port:" +
         std::to_string(info.peer.local_port) + "\r\nuptime_in_seconds:" +
         std::to_string((Loop::NowNs() - info.created_ns) / 1000000000) + "\r\n\r\n";
  }
  if (w.Want("clients")) ClientsSection(s, ctx);
  if (w.Want("memory")) MemorySection(s, k);
  if (w.Want("persistence")) s += "# Persistence\r\nloading:0\r\nasync_loading:0\r\n\r\n";
  if (w.Want("stats")) StatsSection(s, totals);
  if (w.Want("replication")) s += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n";
  if (w.Want("commandstats", false)) CommandStats(s, totals);
  if (w.Want("errorstats")) ErrorStats(s, totals);
  // Cluster-aware clients (redis-py RedisCluster, ioredis Cluster) see one
  // node that owns every slot (DESIGN.md "Handshake and introspection").
  if (w.Want("cluster")) s += "# Cluster\r\ncluster_enabled:1\r\n\r\n";
  if (w.Want("keyspace")) KeyspaceSection(s, k);
  if (s.size() >= 2) s.resize(s.size() - 2);  // as Redis: no blank line at the end
  return s;
}

}  // namespace

bool Info(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  auto sections = std::make_shared<Sections>(ctx.args());
  TenantShared* shared = ctx.tenant_shared();
  const bool walk = shared != nullptr && (sections->Want("keyspace") || sections->Want("memory"));
  KeyspaceFigures cached;
  const auto& masters = ctx.backend().Masters();
  std::shared_ptr<WalkClaim> claim;
  if (walk && !masters.empty()) {
    const uint64_t now = Loop::NowNs();
    std::lock_guard lock(shared->keyspace_mu);
    cached = shared->keyspace;
    const bool fresh = cached.as_of_ns != 0 && now - cached.as_of_ns < kKeyspaceFreshNs;
    // One walk at a time per tenant; the others answer from the last one
    // (none yet: no db0 line, age -1), unless the running one is overdue.
    const uint64_t started = shared->keyspace_walk_started_ns;
    if (!fresh && (started == 0 || now - started > kWalkOverdueNs)) {
      shared->keyspace_walk_started_ns = now;
      claim = std::make_shared<WalkClaim>(shared, now);
    }
  }
  if (claim == nullptr) {
    protocol::AppendVerbatim(ctx.BeginReply(), Render(ctx, *sections, cached), ctx.proto());
    ctx.EndReply();
    return true;
  }
  uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  auto job = std::make_unique<ScanJob>(ctx, masters, ScanJob::Kind::kKeyspace, tag,
                                       ctx.tenant()->prefix, ctx.proto());
  const int proto = ctx.proto();
  job->OnKeyspaceDone([&ctx, shared, sections, proto, claim](const KeyspaceFigures* f) {
    KeyspaceFigures k;
    {
      std::lock_guard lock(shared->keyspace_mu);
      if (f != nullptr) shared->keyspace = *f;
      k = shared->keyspace;
    }
    std::string out;
    protocol::AppendVerbatim(out, Render(ctx, *sections, k), proto);
    return out;
  });
  ScanJob* raw = job.get();
  ctx.Adopt(std::move(job));
  raw->Start();
  return true;
}

}  // namespace keyfence::proxy::commands
