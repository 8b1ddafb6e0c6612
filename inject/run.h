// `keyfence inject`: the mutating admission webhook process. Parses nothing itself (the
// CLI lives in proxy/main.cc); loads the TLS pair, serves HTTPS until SIGTERM or SIGINT,
// then stops accepting, lets the requests under way finish (at most kShutdownGraceSeconds)
// and returns 0. Logging goes to spdlog's default logger, which the caller sets up.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "inject/sidecar.h"

namespace keyfence::inject {

inline constexpr const char* kDefaultImage = "keyfence:" KEYFENCE_VERSION;
inline constexpr int kShutdownGraceSeconds = 10;

struct RunOptions {
  std::string listen;     // HOST:PORT, HOST an IPv4 literal or a bracketed IPv6 literal
  std::string cert_path;  // PEM certificate chain
  std::string key_path;   // PEM private key
  InjectOptions inject{kDefaultImage, kDefaultAdminPort};
};

// "127.0.0.1:8443", "0.0.0.0:8443", "[::]:8443", "[fd00::1]:8443" -> the endpoint; nothing
// for anything else (names, a missing or zero port, an unbracketed IPv6 address).
std::optional<boost::asio::ip::tcp::endpoint> ParseListen(std::string_view text);
// "" when ParseListen accepts `text`, else what is wrong (for the CLI's validator).
std::string CheckListen(const std::string& text);

// Runs the webhook. Returns the exit code: 0 after a signal, 1 when the certificate or
// key cannot be loaded or the address cannot be bound (the message is on stderr), 2 for
// a --listen that ParseListen refuses.
int Run(const RunOptions& options);

}  // namespace keyfence::inject
