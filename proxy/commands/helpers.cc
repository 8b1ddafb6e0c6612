#include "proxy/commands/helpers.h"

#include "tenancy/notify_events.h"

#include <cerrno>
#include <cstdlib>

#include "protocol/glob.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy::commands {

bool ParseI64(std::string_view s, int64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  char* end = nullptr;
  std::string tmp(s);
  errno = 0;
  long long x = std::strtoll(tmp.c_str(), &end, 10);
  if (errno != 0 || end != tmp.c_str() + tmp.size()) return false;
  *v = x;
  return true;
}

std::string BackendPattern(std::string_view prefix, std::string_view client_pattern) {
  std::string p = protocol::GlobEscape(prefix);
  size_t lit = protocol::GlobLiteralPrefix(client_pattern);
  p.append(client_pattern.substr(0, lit));
  p.push_back('*');
  return p;
}

void SendBuilt(CommandContext& ctx, std::string_view bytes, tenancy::ReplyRule rule,
               std::string_view pattern) {
  Transaction& tx = ctx.tx();
  if (tx.open) {
    tx.keyfence_only = true;  // built by keyfence (KEYS P*, CONFIG GET)
    tx.bytes.append(bytes);
    ++tx.count;
    tx.rules.emplace_back(rule, std::string(pattern));
    ctx.ReplySimple("QUEUED");
    return;
  }
  uint64_t tag = ctx.Defer(rule, pattern);
  DedicatedLink& d = ctx.dedicated();
  if (d.active()) {
    d.conn->out().append(bytes);
    d.conn->Push(&ctx.sink(), tag);
    d.conn->MarkDirty();
    return;
  }
  // keyfence-built requests (CONFIG GET, KEYS P*, PUBSUB CHANNELS) run as keyfence.
  ctx.backend().Send(bytes, kAnySlot, ctx.proto(), ctx.own_hint(), &ctx.sink(), tag);
}

std::string Verbatim(CommandContext& ctx) {
  tenancy::NameRefs none;
  std::string bytes;
  tenancy::WriteRequest(ctx.args(), none, "", bytes);
  return bytes;
}

uint32_t TenantNotifyFlags(CommandContext& ctx) {
  const TenantShared* shared = ctx.tenant_shared();
  const int64_t own = shared != nullptr ? shared->notify_flags.load(std::memory_order_relaxed) : -1;
  if (own >= 0) return static_cast<uint32_t>(own);
  const std::string& configured = ctx.snapshot().backend.notify_keyspace_events;
  if (configured.empty()) return kNotifyUnfiltered;  // the server's, whatever they are
  uint32_t backend = 0;
  tenancy::ParseNotifyFlags(configured, &backend);
  return backend;
}

}  // namespace keyfence::proxy::commands
