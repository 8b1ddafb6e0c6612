#include "inject/run.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>

#include "inject/cert_reloader.h"
#include "inject/server.h"

namespace keyfence::inject {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::optional<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// After Stop(): polls until every connection has closed or the grace time is over, then
// stops the io_context.
void DrainThenStop(asio::io_context& io, WebhookServer& server, asio::steady_timer& timer,
                   std::chrono::steady_clock::time_point deadline) {
  if (server.open_connections() == 0 || std::chrono::steady_clock::now() >= deadline) {
    if (server.open_connections() != 0) {
      spdlog::warn("inject: {} connection(s) still open after {} s, exiting",
                   server.open_connections(), kShutdownGraceSeconds);
    }
    io.stop();
    return;
  }
  timer.expires_after(std::chrono::milliseconds(20));
  timer.async_wait([&io, &server, &timer, deadline](const boost::system::error_code& ec) {
    if (!ec) DrainThenStop(io, server, timer, deadline);
  });
}

}  // namespace

std::optional<tcp::endpoint> ParseListen(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs [ ]
  }
  const std::optional<uint16_t> number = ParsePort(port);
  if (!number || host.empty()) return std::nullopt;
  boost::system::error_code ec;
  const bool v6 = !text.empty() && text.front() == '[';
  asio::ip::address address;
  if (v6) {
    address = asio::ip::make_address_v6(std::string(host), ec);
  } else {
    address = asio::ip::make_address_v4(std::string(host), ec);
  }
  if (ec) return std::nullopt;
  return tcp::endpoint(address, *number);
}

std::string CheckListen(const std::string& text) {
  if (ParseListen(text)) return "";
  return "'" + text +
         "' is not HOST:PORT (an IPv4 address or a bracketed IPv6 address, and a "
         "port 1-65535, e.g. 0.0.0.0:8443 or [::]:8443)";
}

int Run(const RunOptions& options) {
  const std::optional<tcp::endpoint> endpoint = ParseListen(options.listen);
  if (!endpoint) {
    std::fprintf(stderr, "keyfence inject: --listen: %s\n", CheckListen(options.listen).c_str());
    return 2;
  }
  CertReloader certs(options.cert_path, options.key_path);
  if (std::string error = certs.Load(); !error.empty()) {
    std::fprintf(stderr, "keyfence inject: %s\n", error.c_str());
    return 1;
  }
  asio::io_context io{1};
  // Before listening: a signal that comes once the port accepts must find the handler
  // (a signal_set queues what arrives before async_wait).
  asio::signal_set signals(io, SIGTERM, SIGINT);
  asio::steady_timer drain(io);
  WebhookServer server(io, *endpoint, certs, options.inject);
  if (boost::system::error_code ec = server.Start()) {
    std::fprintf(stderr, "keyfence inject: cannot listen on %s: %s\n", options.listen.c_str(),
                 ec.message().c_str());
    return 1;
  }
  spdlog::info(
      "inject: serving https://{} (POST /mutate, GET /healthz); sidecar image {}, "
      "admin port {}",
      options.listen, options.inject.image, options.inject.admin_port);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("inject: signal {}: no new connections, finishing the requests under way", signo);
    server.Stop();
    DrainThenStop(io, server, drain,
                  std::chrono::steady_clock::now() + std::chrono::seconds(kShutdownGraceSeconds));
  });
  io.run();
  spdlog::info("inject: stopped");
  return 0;
}

}  // namespace keyfence::inject
