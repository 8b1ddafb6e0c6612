// See resp_values.h.
#include "protocol/resp_values.h"

#include <limits>
#include <string_view>

namespace keyfence::protocol {
namespace {

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool ParseInteger(const char* p, size_t n, int64_t* out) {
  if (n == 0) return false;
  bool negative = false;
  size_t i = 0;
  if (p[0] == '-' || p[0] == '+') {
    negative = p[0] == '-';
    i = 1;
    if (n == 1) return false;
  }
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const uint64_t limit = negative ? kMax + 1 : kMax;
  uint64_t v = 0;
  for (; i < n; ++i) {
    if (!IsDigit(p[i])) return false;
    const unsigned d = static_cast<unsigned>(p[i] - '0');
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return true;
}

bool ParseLength(const char* p, size_t n, int64_t* out) {
  if (n == 2 && p[0] == '-' && p[1] == '1') {
    *out = -1;
    return true;
  }
  if (n == 0 || !IsDigit(p[0])) return false;
  return ParseInteger(p, n, out);
}

bool ValidBigNumber(const char* p, size_t n) {
  size_t i = (n > 0 && (p[0] == '-' || p[0] == '+')) ? 1 : 0;
  if (i == n) return false;
  for (; i < n; ++i) {
    if (!IsDigit(p[i])) return false;
  }
  return true;
}

bool ValidDouble(const char* p, size_t n) {
  std::string_view s(p, n);
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s == "inf" || s == "nan") return true;
  size_t i = 0;
  size_t digits = 0;
  while (i < s.size() && IsDigit(s[i])) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && IsDigit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

}  // namespace keyfence::protocol
