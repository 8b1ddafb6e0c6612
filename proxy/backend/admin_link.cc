#include "proxy/backend/admin_link.h"

#include <spdlog/spdlog.h>

namespace keyfence::proxy {

AdminLink ConnectAdmin(const config::Endpoint& node, const config::Backend& be,
                       std::string_view what) {
  timeval tv{static_cast<time_t>(be.connect_timeout_ms / 1000),
             static_cast<suseconds_t>((be.connect_timeout_ms % 1000) * 1000)};
  AdminLink c(redisConnectWithTimeout(node.host.c_str(), node.port, tv), redisFree);
  if (c == nullptr || c->err) {
    spdlog::warn("{}: {} unreachable: {}", what, node.ToString(), c ? c->errstr : "oom");
    return AdminLink(nullptr, redisFree);
  }
  redisSetTimeout(c.get(), tv);
  if (be.password.empty()) return c;
  auto* a = static_cast<redisReply*>(
      be.username.empty()
          ? redisCommand(c.get(), "AUTH %b", be.password.data(), be.password.size())
          : redisCommand(c.get(), "AUTH %b %b", be.username.data(), be.username.size(),
                         be.password.data(), be.password.size()));
  const bool ok = a != nullptr && a->type != REDIS_REPLY_ERROR;
  if (a != nullptr) freeReplyObject(a);
  if (!ok) {
    spdlog::error("{}: AUTH as keyfence failed on {}", what, node.ToString());
    return AdminLink(nullptr, redisFree);
  }
  return c;
}

}  // namespace keyfence::proxy
