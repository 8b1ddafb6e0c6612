// RESP writers; see writer.h. Integers and headers are formatted with a
// two-digits-at-a-time table (no snprintf on the hot path).
#include "protocol/writer.h"

#include <cmath>
#include <cstdio>
#include <cstring>

namespace keyfence::protocol {
namespace {

constexpr char kDigitPairs[] =
    "00010203040506070809"
    "10111213141516171819"
    "20212223242526272829"
    "30313233343536373839"
    "40414243444546474849"
    "50515253545556575859"
    "60616263646566676869"
    "70717273747576777879"
    "80818283848586878889"
    "90919293949596979899";

inline bool Resp3(int proto) { return proto >= 3; }

// Appends "<type><n>\r\n".
inline void AppendHeader(std::string& out, char type, uint64_t n) {
  char buf[24];
  char* end = buf + sizeof(buf);
  end[-2] = '\r';
  end[-1] = '\n';
  char* p = FormatDecimal(n, end - 2);
  *--p = type;
  out.append(p, static_cast<size_t>(end - p));
}

// Appends "<type><s>\r\n" with CR and LF in s replaced by spaces.
void AppendLine(std::string& out, char type, std::string_view s) {
  const size_t at = out.size();
  out.resize(at + s.size() + 3);
  char* p = out.data() + at;
  *p++ = type;
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  // Rare: texts that carry CR or LF (memchr is vectorised; the fix-up is not).
  if (std::memchr(s.data(), '\r', s.size()) != nullptr ||
      std::memchr(s.data(), '\n', s.size()) != nullptr) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (p[i] == '\r' || p[i] == '\n') p[i] = ' ';
    }
  }
  p[s.size()] = '\r';
  p[s.size() + 1] = '\n';
}

}  // namespace

char* FormatDecimal(uint64_t v, char* end) {
  char* p = end;
  while (v >= 100) {
    const unsigned i = static_cast<unsigned>(v % 100) * 2;
    v /= 100;
    p -= 2;
    p[0] = kDigitPairs[i];
    p[1] = kDigitPairs[i + 1];
  }
  if (v >= 10) {
    const unsigned i = static_cast<unsigned>(v) * 2;
    p -= 2;
    p[0] = kDigitPairs[i];
    p[1] = kDigitPairs[i + 1];
  } else {
    *--p = static_cast<char>('0' + v);
  }
  return p;
}

int DecimalLength(uint64_t n) {
  int len = 1;
  for (;;) {
    if (n < 10) return len;
    if (n < 100) return len + 1;
    if (n < 1000) return len + 2;
    if (n < 10000) return len + 3;
    n /= 10000;
    len += 4;
  }
}

void AppendSimple(std::string& out, std::string_view s) { AppendLine(out, '+', s); }

void AppendError(std::string& out, std::string_view s) { AppendLine(out, '-', s); }

void AppendInteger(std::string& out, int64_t v) {
  char buf[32];
  char* end = buf + sizeof(buf);
  end[-2] = '\r';
  end[-1] = '\n';
  // 0 - u is the magnitude for negative v, INT64_MIN included.
  const uint64_t u = static_cast<uint64_t>(v);
  char* p = FormatDecimal(v < 0 ? 0 - u : u, end - 2);
  if (v < 0) *--p = '-';
  *--p = ':';
  out.append(p, static_cast<size_t>(end - p));
}

void AppendBulkHeader(std::string& out, size_t len) { AppendHeader(out, '$', len); }

void AppendBulk(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 32);
  AppendHeader(out, '$', s.size());
  out.append(s);
  out.append("\r\n", 2);
}

void AppendArrayHeader(std::string& out, size_t n) { AppendHeader(out, '*', n); }

void AppendNull(std::string& out, int proto) {
  if (Resp3(proto)) {
    out.append("_\r\n", 3);
  } else {
    out.append("$-1\r\n", 5);
  }
}

void AppendNullArray(std::string& out, int proto) {
  if (Resp3(proto)) {
    out.append("_\r\n", 3);
  } else {
    out.append("*-1\r\n", 5);
  }
}

void AppendMapHeader(std::string& out, size_t pairs, int proto) {
  if (Resp3(proto)) {
    AppendHeader(out, '%', pairs);
  } else {
    AppendHeader(out, '*', static_cast<uint64_t>(pairs) * 2);
  }
}

void AppendSetHeader(std::string& out, size_t n, int proto) {
  AppendHeader(out, Resp3(proto) ? '~' : '*', n);
}

void AppendPushHeader(std::string& out, size_t n, int proto) {
  AppendHeader(out, Resp3(proto) ? '>' : '*', n);
}

// Cold path: snprintf is fine here.
void AppendDouble(std::string& out, double v, int proto) {
  char buf[64];
  std::string_view text;
  if (std::isinf(v)) {
    text = v > 0 ? "inf" : "-inf";
  } else if (std::isnan(v)) {
    text = "nan";
  } else {
    const int n = std::snprintf(buf, sizeof(buf), "%.17g", v);
    text = std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0);
  }
  if (Resp3(proto)) {
    out.push_back(',');
    out.append(text);
    out.append("\r\n", 2);
  } else {
    AppendBulk(out, text);
  }
}

void AppendBool(std::string& out, bool v, int proto) {
  if (Resp3(proto)) {
    out.append(v ? "#t\r\n" : "#f\r\n", 4);
  } else {
    out.append(v ? ":1\r\n" : ":0\r\n", 4);
  }
}

void AppendVerbatim(std::string& out, std::string_view s, int proto) {
  if (!Resp3(proto)) {
    AppendBulk(out, s);
    return;
  }
  out.reserve(out.size() + s.size() + 36);
  AppendHeader(out, '=', static_cast<uint64_t>(s.size()) + 4);
  out.append("txt:", 4);
  out.append(s);
  out.append("\r\n", 2);
}

void AppendCommand(std::string& out, std::initializer_list<std::string_view> args) {
  AppendCommand(out, std::span<const std::string_view>(args.begin(), args.size()));
}

void AppendCommand(std::string& out, std::span<const std::string_view> args) {
  size_t total = 16;
  for (std::string_view a : args) total += a.size() + 16;
  out.reserve(out.size() + total);
  AppendHeader(out, '*', args.size());
  for (std::string_view a : args) {
    AppendHeader(out, '$', a.size());
    out.append(a);
    out.append("\r\n", 2);
  }
}

}  // namespace keyfence::protocol
