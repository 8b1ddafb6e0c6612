// RESP writers: append encoded values to an output buffer (std::string used as
// a growable byte buffer; its capacity is reused, so steady state allocates
// nothing). Proto-aware helpers pick the RESP2 or RESP3 encoding.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace keyfence::protocol {

// AppendSimple and AppendError turn any CR or LF in s into a space (as Redis's
// addReplyErrorFormat does), so text that echoes client input cannot inject
// extra replies.
void AppendSimple(std::string& out, std::string_view s);          // +s\r\n
void AppendError(std::string& out, std::string_view s);           // -s\r\n  (s includes the code)
void AppendInteger(std::string& out, int64_t v);                  // :v\r\n
void AppendBulk(std::string& out, std::string_view s);            // $n\r\ns\r\n
void AppendBulkHeader(std::string& out, size_t len);              // $n\r\n
void AppendArrayHeader(std::string& out, size_t n);               // *n\r\n
void AppendNull(std::string& out, int proto);                     // $-1 (2) or _ (3)
void AppendNullArray(std::string& out, int proto);                // *-1 (2) or _ (3)
void AppendMapHeader(std::string& out, size_t pairs, int proto);  // *2n (2) or %n (3)
void AppendSetHeader(std::string& out, size_t n, int proto);      // *n (2) or ~n (3)
void AppendPushHeader(std::string& out, size_t n, int proto);     // *n (2) or >n (3)
// Doubles use "%.17g" like Redis 7.0; infinities and NaN are spelled "inf",
// "-inf" and "nan" in both protocols.
void AppendDouble(std::string& out, double v, int proto);              // bulk (2) or ,v (3)
void AppendBool(std::string& out, bool v, int proto);                  // :0/1 (2) or #t/#f (3)
void AppendVerbatim(std::string& out, std::string_view s, int proto);  // bulk (2) or =n txt:s

// A whole command as a multibulk array.
void AppendCommand(std::string& out, std::initializer_list<std::string_view> args);
void AppendCommand(std::string& out, std::span<const std::string_view> args);

// Decimal length of n (for precomputing headers).
int DecimalLength(uint64_t n);

// Writes the decimal digits of v ending just before `end` and returns a pointer
// to the first digit. The caller provides at least 20 bytes before `end`.
char* FormatDecimal(uint64_t v, char* end);

}  // namespace keyfence::protocol
