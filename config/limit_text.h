// Internal to kf_config: a limit field's value as text, for the overrides' JSON
// (quoted = true: enums as JSON strings) and the change summary (as is).
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"

namespace keyfence::config::internal {

inline std::string LimitText(uint64_t v, bool = false) { return std::to_string(v); }
inline std::string LimitText(uint32_t v, bool = false) { return std::to_string(v); }
inline std::string LimitText(bool v, bool = false) { return v ? "true" : "false"; }
inline std::string LimitText(OnLimit v, bool quoted = false) {
  const std::string s = v == OnLimit::kReject ? "reject" : "delay";
  return quoted ? "\"" + s + "\"" : s;
}
inline std::string LimitText(LimitScope v, bool quoted = false) {
  const std::string s = v == LimitScope::kInstance ? "instance" : "fleet";
  return quoted ? "\"" + s + "\"" : s;
}

}  // namespace keyfence::config::internal
