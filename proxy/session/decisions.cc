// Refusals of keyfence's own. The decision log (issue 13): every one (denied
// commands, key-rule hits, rate limits, quotas, AUTH failures) gets a line with
// tenant, reason, command and client address, at most one a second per tenant
// and reason across the workers; the line counts the ones it stands for. Also
// the AUTH throttle's bookkeeping and the output-buffer limits' closes.
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "protocol/command_table.h"
#include "proxy/base/logging.h"
#include "proxy/net/loop.h"
#include "proxy/session/session.h"

namespace keyfence::proxy {

namespace {

DecisionThrottle& Unauthenticated() {
  static DecisionThrottle throttle;  // connections without a tenant yet
  return throttle;
}

constexpr size_t kMaxLoggedName = 32;    // of an unknown command's name
constexpr size_t kMaxLoggedError = 200;  // of the error the client got

}  // namespace

void Session::LogDecision(RejectReason reason, std::string_view error, bool about_command) {
  if (!spdlog::should_log(spdlog::level::warn)) return;
  TenantLocal* local = binding_.local();
  DecisionThrottle& throttle = local != nullptr ? local->shared->decisions : Unauthenticated();
  uint64_t suppressed = 0;
  if (!throttle.Admit(reason, Loop::NowNs(), &suppressed)) return;
  std::string command;
  const protocol::CommandTable& table = protocol::CommandTable::Get();
  if (!about_command) {
    command = "";
  } else if (cur_cmd_id_ < table.size()) {
    command = table.ById(cur_cmd_id_).name;
  } else if (!args_.empty()) {  // refused before the command was looked up (a rate limit)
    const protocol::CommandInfo* c = table.Find(args_[0]);
    command = c != nullptr ? std::string(c->name) : std::string(args_[0].substr(0, kMaxLoggedName));
  }
  const std::string client =
      info_.peer.remote_ip.empty()
          ? std::string("unix")
          : info_.peer.remote_ip + ":" + std::to_string(info_.peer.remote_port);
  LogEvent(spdlog::level::warn, "request rejected",
           {{"tenant", local != nullptr ? binding_.name() : std::string("unauthenticated")},
            {"reason", RejectReasonLabel(reason)},
            {"command", command},
            {"client", client},
            {"client_id", info_.id},
            {"error", error.substr(0, kMaxLoggedError)},
            {"suppressed", suppressed}});
}

void Session::OnOutputOverLimit(uint64_t limit, OutputLimit which) {
  binding_.counters().CountRejected(RejectReason::kTooLarge);
  if (which == OutputLimit::kTenant) {
    spdlog::warn("client {} tenant {}: the tenant's clients hold more than its "
                 "tenant_output_buffer_bytes of {} in unread replies; closing this one, which "
                 "holds {} bytes", info_.id, binding_.name(), limit, conn_.pending_output());
    return;
  }
  const bool soft = which == OutputLimit::kSoft;
  spdlog::warn("client {} tenant {}: output buffer over its {} limit of {} bytes{}; closing",
               info_.id, binding_.name(), soft ? "soft" : "hard", limit,
               soft ? " for too long" : "");
}

uint64_t Session::AuthWait(std::string_view user) {
  auth_key_ = info_.peer.remote_ip;
  auth_key_.push_back(' ');
  auth_key_.append(user);
  return host_.AuthWait(auth_key_, Loop::NowNs());
}

void Session::AuthFailed() {
  host_.AuthFailed(auth_key_, Loop::NowNs());
  // The decision log has the line (rate-limited); this one is for debugging.
  spdlog::debug("auth failed: conn={} addr={} listener={}", info_.id, info_.peer.remote_ip,
                listener_.Name());
}

}  // namespace keyfence::proxy
