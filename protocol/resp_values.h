// The texts of RESP one-line values, checked as Redis writes them: integers
// (int64), lengths and counts ("-1" or unsigned), RESP3 big numbers and
// doubles. The reply framer's slow path (the common lengths take
// internal::FastLineNumber in digits.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace keyfence::protocol {

// Optional sign, then one or more digits; the value must fit int64.
bool ParseInteger(const char* p, size_t n, int64_t* out);
// Lengths and counts: "-1" or a non-negative integer without sign.
bool ParseLength(const char* p, size_t n, int64_t* out);
// Optional sign then one or more digits (RESP3 big number).
bool ValidBigNumber(const char* p, size_t n);
// RESP3 double: [sign] ("inf" | "nan" | digits [. digits] [(e|E) [sign] digits]),
// with at least one mantissa digit.
bool ValidDouble(const char* p, size_t n);

}  // namespace keyfence::protocol
