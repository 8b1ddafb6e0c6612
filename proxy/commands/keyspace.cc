// Emulations over the tenant's whole namespace, on every master of the
// backend (standalone: the one server): KEYS, SCAN, DBSIZE, FLUSHDB/FLUSHALL,
// RANDOMKEY. Always inside the namespace (DESIGN.md "Namespaces").
#include <charconv>

#include "protocol/error_replies.h"
#include "protocol/glob.h"
#include "proxy/base/text.h"
#include "proxy/commands/families.h"
#include "proxy/commands/fanout.h"
#include "proxy/commands/helpers.h"
#include "proxy/commands/scan_job.h"

namespace keyfence::proxy::commands {

namespace errors = protocol::errors;
using tenancy::Local;

bool Keys(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  std::string_view pattern = ctx.args()[1];
  const std::string& prefix = ctx.tenant()->prefix;
  std::string bytes;
  protocol::AppendCommand(bytes, {"KEYS", BackendPattern(prefix, pattern)});
  if (ctx.tx().open) {
    SendBuilt(ctx, bytes, tenancy::ReplyRule::kKeyList, pattern == "*" ? "" : pattern);
    return true;
  }
  const auto& masters = ctx.backend().Masters();
  if (masters.empty()) {
    ctx.ReplyError(errors::kTopologyUnknown);
    return true;
  }
  uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  auto f = std::make_unique<FanOut>(ctx, FanOut::Kind::kKeys, tag, masters.size(), 0,
                                    ctx.proto());
  f->SetNames(prefix, pattern == "*" ? "" : std::string(pattern));
  FanOut* raw = f.get();
  ctx.Adopt(std::move(f));
  std::vector<config::Endpoint> nodes = masters;  // the FanOut may finish at once
  for (size_t i = 0; i < nodes.size(); ++i) {
    BackendConn& c = ctx.backend().NodeConn(nodes[i], ctx.proto(), ctx.own_hint());
    if (!c.Available()) {
      std::string e;
      protocol::AppendError(e, c.down_error());
      raw->OnReply(i, e);
      continue;
    }
    c.out().append(bytes);
    c.Push(raw, i);
    c.MarkDirty();
  }
  return true;
}

namespace {
// The client's COUNT (default 10) is how many names it wants; each backend
// SCAN asks for at least kBackendScanCount entries, most of which may belong
// to other tenants.
constexpr uint64_t kBackendScanCount = 100;

// SCAN arguments for the backend: MATCH on the namespace, COUNT raised to
// kBackendScanCount; *want = the names the client asked for.
std::vector<std::string> BackendScanArgs(std::string_view prefix, std::string_view match,
                                         std::string_view count, std::string_view type,
                                         size_t* want) {
  std::vector<std::string> args = {"MATCH", BackendPattern(prefix, match)};
  *want = 10;
  uint64_t c = 0;
  if (!count.empty() &&
      std::from_chars(count.data(), count.data() + count.size(), c).ec == std::errc() && c > 0) {
    *want = std::min<uint64_t>(c, 100000);
    args.insert(args.end(), {"COUNT", std::to_string(std::max(c, kBackendScanCount))});
  } else if (!count.empty()) {
    args.insert(args.end(), {"COUNT", std::string(count)});
  } else {
    args.insert(args.end(), {"COUNT", std::to_string(kBackendScanCount)});
  }
  if (!type.empty()) args.insert(args.end(), {"TYPE", std::string(type)});
  return args;
}
}  // namespace

// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type], through a FanOut
// that keeps scanning past empty pages up to the client's COUNT. With more
// than one master the cursor encodes the master: backend << 10 | master.
bool Scan(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  auto args = ctx.args();
  std::string_view match, count, type;
  for (size_t i = 2; i < args.size(); ++i) {
    if (i + 1 >= args.size()) {
      ctx.ReplyError(errors::kSyntax);
      return true;
    }
    if (EqNoCase(args[i], "match")) {
      match = args[++i];
    } else if (EqNoCase(args[i], "count")) {
      count = args[++i];
    } else if (EqNoCase(args[i], "type")) {
      type = args[++i];
    } else {
      ctx.ReplyError(errors::kSyntax);
      return true;
    }
  }
  uint64_t cursor = 0;
  std::string_view c = args[1];
  if (c.empty() ||
      std::from_chars(c.data(), c.data() + c.size(), cursor).ptr != c.data() + c.size()) {
    ctx.ReplyError(errors::kInvalidCursor);
    return true;
  }
  const auto& masters = ctx.backend().Masters();
  bool multi = masters.size() > 1;
  size_t node = multi ? cursor & ((uint64_t{1} << FanOut::kScanNodeBits) - 1) : 0;
  if (multi) cursor >>= FanOut::kScanNodeBits;
  if (node >= masters.size()) {
    ctx.ReplyError(errors::kInvalidCursor);
    return true;
  }
  size_t want = 10;
  std::vector<std::string> rest = BackendScanArgs(ctx.tenant()->prefix, match, count, type, &want);
  uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  auto f = std::make_unique<FanOut>(ctx, FanOut::Kind::kScan, tag, 1, 0, ctx.proto());
  f->SetNames(ctx.tenant()->prefix, match == "*" ? "" : std::string(match));
  FanOut* raw = f.get();
  ctx.Adopt(std::move(f));
  raw->StartScan(ctx.backend(), masters, node, cursor, std::move(rest), want);
  return true;
}

// DBSIZE, FLUSHDB/FLUSHALL, RANDOMKEY: a ScanJob over SCAN MATCH P* on every master.
// Queued in MULTI (DBSIZE, RANDOMKEY; FLUSH* is refused there) the walk runs
// when queued and EXEC waits for it (Transaction::pending).
bool WalkNamespace(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule& rule) {
  ScanJob::Kind kind = rule.local == Local::kDbSize    ? ScanJob::Kind::kDbSize
                       : rule.local == Local::kFlushDb ? ScanJob::Kind::kFlush
                                                       : ScanJob::Kind::kRandomKey;
  const auto& masters = ctx.backend().Masters();
  if (masters.empty()) {
    ctx.ReplyError(errors::kTopologyUnknown);
    return true;
  }
  uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  auto job = std::make_unique<ScanJob>(ctx, masters, kind, tag, ctx.tenant()->prefix,
                                       ctx.proto());
  ScanJob* raw = job.get();
  ctx.Adopt(std::move(job));
  raw->Start();
  return true;
}

}  // namespace keyfence::proxy::commands
