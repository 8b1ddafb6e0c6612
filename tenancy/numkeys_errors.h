// Redis's own error texts for a malformed numkeys argument (EVAL, LMPOP,
// ZMPOP, SINTERCARD, ZUNION/ZINTER/ZDIFF and their STORE forms, ...): the key
// finder cannot place the keys then, so keyfence answers without the backend,
// with the text Redis would have given (t_zset.c, t_list.c, t_set.c, eval.c).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "protocol/command_table.h"

namespace keyfence::tenancy {

// The error for `args` of `cmd` whose keys could not be found, or "" when the
// command is not one of the numkeys families (the caller says syntax error).
std::string NumkeysError(const protocol::CommandInfo& cmd, std::span<const std::string_view> args);

}  // namespace keyfence::tenancy
