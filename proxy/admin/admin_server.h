// The admin HTTP/1.1 server (DESIGN.md, "Admin HTTP"): /metrics, /healthz, /readyz,
// /config, /reload, /tenants, /hotkeys, /bigkeys, /namespaces, /analyze. Built on Boost.Beast; no extra threads.
//
// Thread affinity: everything (accept, sessions, handler callbacks, Start/Stop/SetToken)
// runs on the one io_context given at construction, the control thread's. Start/Stop may
// also be called while that io_context is not running (startup, shutdown).
// Ownership: the server owns its acceptor and sessions; the handlers are copied in.
// Sessions still queued on the io_context after the server is destroyed only keep a
// shared state alive and close themselves.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace keyfence::proxy {

// Route handlers supplied by the owner; each runs on the io_context thread. A handler
// left empty makes its route answer 404. A handler that throws yields a 500.
struct AdminHandlers {
  // GET /metrics -> 200, text/plain; version=0.0.4 (Prometheus text exposition).
  std::function<std::string()> metrics;
  // GET /readyz -> 200 "ready\n" when true, 503 "not ready\n" when false.
  std::function<bool()> ready;
  // GET /config -> 200, application/json (secrets already redacted by the handler).
  std::function<std::string()> config_json;
  // POST /reload -> (status, JSON body), e.g. 200 with the new version or 400 with errors.
  std::function<std::pair<int, std::string>()> reload;
  // GET /tenants -> 200, application/json.
  std::function<std::string()> tenants_json;
  // GET /hotkeys?tenant=NAME -> (status, JSON body). NAME arrives percent-decoded; a
  // request without a tenant parameter gets 400 without calling the handler.
  std::function<std::pair<int, std::string>(std::string_view tenant)> hotkeys_json;
  // GET /bigkeys?tenant=NAME -> (status, JSON body): the tenant's keys with the biggest
  // replies. The tenant parameter is handled as for /hotkeys (400 when missing).
  std::function<std::pair<int, std::string>(std::string_view tenant)> bigkeys_json;
  // GET /namespaces -> 200, application/json: the last per-tenant accounting,
  // the off-peak baseline and each tenant's growth since it.
  std::function<std::string()> namespaces_json;
  // POST /analyze -> (202, started) or (409, one is running).
  std::function<std::pair<int, std::string>()> analyze;
  // PUT /tenants/<name>/limits (put=true, body: JSON of limit fields) and DELETE of it
  // -> (status, JSON body). NAME arrives percent-decoded; `query` is the raw query string.
  std::function<std::pair<int, std::string>(bool put, std::string_view tenant,
                                            std::string_view body, std::string_view query)>
      tenant_limits;
};

// Limits of the admin server.
inline constexpr size_t kAdminMaxBodyBytes = 64 * 1024;
inline constexpr size_t kAdminMaxHeaderBytes = 16 * 1024;
inline constexpr int kAdminIdleTimeoutSeconds = 30;  // per read/write, keep-alive included
inline constexpr size_t kAdminMaxConnections = 64;   // further connections are closed

class AdminServer {
 public:
  // `host` is an IP literal ("127.0.0.1", "::", "0.0.0.0") or a name resolved once at
  // Start(). `port` 0 picks a free port (see port()). `token`: if non-empty, every
  // non-GET request needs "Authorization: Bearer <token>", else 401.
  AdminServer(boost::asio::io_context& io, const std::string& host, uint16_t port,
              AdminHandlers handlers, std::string token);
  ~AdminServer();  // Stop()s
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Resolves, binds, listens and starts accepting. On failure returns the error (also
  // logged once) and leaves the server stopped; the message is ec.message().
  boost::system::error_code Start();
  // Closes the acceptor and every open admin connection. Idempotent.
  void Stop();
  // Replaces the bearer token (config reload); applies to requests read from now on.
  void SetToken(std::string token);
  // The bound port (after a successful Start()), 0 before.
  uint16_t port() const { return port_; }

 private:
  struct State;
  class Session;
  static void Accept(std::shared_ptr<State> state);

  boost::asio::io_context& io_;
  std::string host_;
  uint16_t requested_port_;
  uint16_t port_ = 0;
  std::shared_ptr<State> state_;
};

// Constant-time equality of a presented secret and the expected one (time depends on
// the lengths only). Exposed for tests.
bool ConstantTimeEquals(std::string_view presented, std::string_view expected);

}  // namespace keyfence::proxy
