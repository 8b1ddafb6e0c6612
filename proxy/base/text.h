// Small text helpers shared by the session's source files.
#pragma once

#include <string>
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

// Lower-case hex of bytes (SHA digests, random passwords).
inline std::string Hex(const unsigned char* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kHex[data[i] >> 4]);
    s.push_back(kHex[data[i] & 15]);
  }
  return s;
}

}  // namespace keyfence::proxy
