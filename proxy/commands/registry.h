// The command registry: which handler answers each command keyfence handles
// itself (tenancy::Local), bound in one table (registry.cc), like Redis's
// commands.def. Forwarded commands go to commands::Forward.
#pragma once

#include "proxy/commands/context.h"

namespace keyfence::proxy::commands {

// The handler for a local command; null if keyfence has none (then it is
// refused with NOPERM).
Handler LocalHandler(tenancy::Local what);

}  // namespace keyfence::proxy::commands
