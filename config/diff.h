// What a new snapshot changes against the running one, for the reload log line:
// tenants added, removed and changed, each limit that moved, and the other
// sections that differ.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace keyfence::config {

struct ChangeSummary {
  std::vector<std::string> added, removed, changed;  // tenant names
  std::vector<std::string> limits;    // "orders.ops_per_sec 5000->100", "limits.burst 0->10"
  std::vector<std::string> sections;  // "backend", "listeners", "admin", ...
  bool empty() const {
    return added.empty() && removed.empty() && changed.empty() && limits.empty() &&
           sections.empty();
  }
  // "tenants added [a], removed [b], changed [c]; limits orders.ops_per_sec 5000->100;
  // sections [backend]", the empty parts left out; "no change" when empty.
  std::string ToString() const;
};

ChangeSummary Describe(const Snapshot& before, const Snapshot& after);

// The same tenant definition (limits, users, rules, names), whatever its index.
bool SameTenant(const Tenant& a, const Tenant& b);

}  // namespace keyfence::config
