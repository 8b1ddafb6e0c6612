// The dispatcher: one parsed request through lookup and policy (one pure
// decision, tenancy::Decide), admission (the tenant's limits), then a local
// handler from the command registry or a forward to the backend.
// Worker-local.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "protocol/command_table.h"
#include "tenancy/command_rules.h"

namespace keyfence::proxy {

class Session;

class Dispatcher {
 public:
  // False: a barrier (retry the same request later).
  static bool Dispatch(Session& s, std::span<const std::string_view> args, size_t bytes);

 private:
  static bool Forward(Session& s, const protocol::CommandInfo& cmd, const tenancy::Rule& rule,
                      tenancy::Route route);
};

}  // namespace keyfence::proxy
