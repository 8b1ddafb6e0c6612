// Small text helpers shared by the session's source files.
#pragma once

#include <string_view>

namespace keyfence::proxy {

// The Redis version keyfence presents itself as (HELLO, INFO).
inline constexpr std::string_view kPresentedRedisVersion = "7.0.15";

// ASCII case-insensitive equality (command options are ASCII).
inline bool EqNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

}  // namespace keyfence::proxy
