// Scripts (limits.allow_scripts). Each tenant has its own script namespace:
// EVALSHA and SCRIPT EXISTS see only the SHAs the tenant loaded (SCRIPT LOAD)
// or ran (EVAL), so one tenant can neither run nor probe another's scripts;
// SCRIPT FLUSH forgets only the tenant's. A SHA the tenant does not own gets
// Redis's own NOSCRIPT, so clients fall back to EVAL as they do with Redis.
// With the ACL backstop, Redis checks every redis.call() of the script.
//
// limits.max_script_ms: a script whose reply has not come that long after it
// was sent is ended with SCRIPT KILL (Redis serves other connections during
// a script only past its busy-reply-threshold, 5 s by default: set it to at
// most max_script_ms) on keyfence's own connection to the node
// (its client gets Redis's "Script killed" error), counted and logged. Redis
// cannot kill a script that has written (UNKILLABLE: only SHUTDOWN NOSAVE
// ends it; keyfence logs it and leaves the node to the operator). A kill may
// hit another tenant's script if one runs on that node at that moment,
// behind which this one waited that long.
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <cctype>

#include "protocol/error_replies.h"
#include "proxy/base/text.h"
#include "proxy/commands/families.h"

namespace keyfence::proxy::commands {

namespace {

std::string Sha1Hex(std::string_view body) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(body.data()), body.size(), d);
  return Hex(d, sizeof d);
}

std::string Lower(std::string_view v) {
  std::string s(v);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class KillSink final : public ReplySink {
 public:
  KillSink(std::string tenant, uint64_t client) : tenant_(std::move(tenant)), client_(client) {}
  void OnReply(uint64_t, std::string_view frame) override {
    std::string_view r = frame.substr(0, frame.find('\r'));
    if (r.starts_with("-UNKILLABLE")) {
      spdlog::error("tenant {} client {}: its script passed limits.max_script_ms and has "
                    "written: Redis cannot kill it ({}); the node stays busy until it ends or "
                    "an operator runs SHUTDOWN NOSAVE",
                    tenant_, client_, r.substr(1));
    } else {
      spdlog::warn("tenant {} client {}: script past limits.max_script_ms: SCRIPT KILL: {}",
                   tenant_, client_, r.substr(1));
    }
    delete this;
  }

 private:
  std::string tenant_;
  uint64_t client_;
};

void CheckScript(CommandContext& ctx) {
  ConnState& st = ctx.state();
  if (st.script_tag == 0 || !ctx.Owed(st.script_tag) || ctx.tenant() == nullptr) return;
  st.script_tag = 0;
  config::Endpoint ep;
  if (!ctx.backend().NodeFor(st.script_slot, &ep)) {
    const auto& m = ctx.backend().Masters();
    if (m.empty()) return;
    ep = m[0];
  }
  ctx.CountRejected(RejectReason::kScriptTimeout);  // the client's reply is Redis's
  BackendConn& c = ctx.backend().NodeConn(ep, 2, ctx.own_hint());
  if (!c.Available()) return;
  protocol::AppendCommand(c.out(), {"SCRIPT", "KILL"});
  c.Push(new KillSink(ctx.tenant()->app, ctx.info().id), 0);
  c.MarkDirty();
}

}  // namespace

bool GuardScript(CommandContext& ctx, const protocol::CommandInfo& cmd) {
  TenantShared* ts = ctx.tenant_shared();
  if (ts == nullptr) return false;
  auto args = ctx.args();
  const std::string_view name = cmd.name;
  std::lock_guard<std::mutex> l(ts->scripts_mu);
  if ((name == "eval" || name == "eval_ro") && args.size() > 1) {
    ts->scripts.insert(Sha1Hex(args[1]));
  } else if (name == "script|load" && args.size() > 2) {
    ts->scripts.insert(Sha1Hex(args[2]));
  } else if ((name == "evalsha" || name == "evalsha_ro") && args.size() > 1 &&
             !ts->scripts.contains(Lower(args[1]))) {
    ctx.ReplyError(protocol::errors::kNoScript);
    return true;
  } else if (name == "script|exists") {
    std::string& out = ctx.BeginReply();
    protocol::AppendArrayHeader(out, args.size() - 2);
    for (size_t i = 2; i < args.size(); ++i) {
      protocol::AppendInteger(out, ts->scripts.contains(Lower(args[i])) ? 1 : 0);
    }
    ctx.EndReply();
    return true;
  } else if (name == "script|flush") {
    if (!FlushOptionOk(args)) {
      ctx.ReplyError(protocol::errors::kScriptFlushOption);
      return true;
    }
    ts->scripts.clear();
    ctx.ReplySimple("OK");
    return true;
  }
  return false;
}

void WatchScript(CommandContext& ctx, uint64_t tag, int slot) {
  const config::Tenant* t = ctx.tenant();
  if (t == nullptr || t->limits.max_script_ms == 0) return;
  ctx.state().script_tag = tag;
  ctx.state().script_slot = slot;
  ctx.WakeAfter(t->limits.max_script_ms, &CheckScript);
}

}  // namespace keyfence::proxy::commands
