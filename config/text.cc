// Text helpers of the loader that need no yaml-cpp: host:port, SHA-256 hex
// digests, quoting scalars for messages. Declared in config/spec.h.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/spec.h"

namespace keyfence::config::internal {
namespace {

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

}  // namespace

// A scalar quoted for a message: at most 64 bytes, control characters as '?'.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 64; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > 64) out += "...";
  return out + "'";
}

bool ParseDigest(std::string_view hex, std::array<uint8_t, 32>* out) {
  if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), IsHexDigit)) return false;
  for (size_t i = 0; i < 32; ++i) {
    (*out)[i] = static_cast<uint8_t>(HexValue(hex[2 * i]) * 16 + HexValue(hex[2 * i + 1]));
  }
  return true;
}

// "host:port", "[v6]:port" -> Endpoint (an IPv6 host without its brackets).
// Returns an error message, or empty on success.
std::string ParseHostPort(std::string_view s, Endpoint* out) {
  const std::string form = "expected host:port, got " + Quote(s);
  std::string_view host, port;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return form;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    const bool v6 = host.find(':') != std::string_view::npos &&
                    std::all_of(host.begin(), host.end(),
                                [](char c) { return IsHexDigit(c) || c == ':' || c == '.'; });
    if (!v6) return form;
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return form;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (!std::all_of(host.begin(), host.end(), IsHostChar)) {
      return host.find(':') != std::string_view::npos
                 ? form + " (write an IPv6 address in brackets: [::1]:6379)"
                 : form;
    }
  }
  if (host.empty()) return form;
  uint32_t p = 0;
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    for (char c : port) p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (!digits || p < 1 || p > 65535) return "port must be between 1 and 65535, got " + Quote(port);
  out->host.assign(host.data(), host.size());
  out->port = static_cast<uint16_t>(p);
  return "";
}

}  // namespace keyfence::config::internal
