// Backend outages as the operator wants to read them (issue 13): one line when
// a node becomes unreachable, one when it is back with how long it was down and
// how many connection attempts failed meanwhile, whatever the number of
// workers and connections that saw it. Process-wide; a mutex taken only when a
// connection fails or opens while some node is down.
#pragma once

#include <string>
#include <string_view>

namespace keyfence::proxy::node_health {

void NoteFailure(const std::string& node, std::string_view why);
void NoteUp(const std::string& node);

}  // namespace keyfence::proxy::node_health
