// keyfence's own synchronous connection to one node for control work (the
// cluster topology, ACL users and node settings): hiredis, with
// backend.connect_timeout_ms for connecting and each reply, authenticated
// with backend.username/password. Control threads only, never a worker.
#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <string_view>

#include "config/config.h"

namespace keyfence::proxy {

using AdminLink = std::unique_ptr<redisContext, void (*)(redisContext*)>;

// Connected and authenticated, or null (logged with `what`, e.g. "backend acl").
AdminLink ConnectAdmin(const config::Endpoint& node, const config::Backend& be,
                       std::string_view what);

}  // namespace keyfence::proxy
