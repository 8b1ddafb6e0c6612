#include "proxy/admin/admin_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <exception>
#include <optional>
#include <set>

namespace keyfence::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Response = http::response<http::string_body>;
using Request = http::request<http::string_body>;

namespace {

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJson = "application/json";

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

Response MakeResponse(http::status status, unsigned version, std::string_view content_type,
                      std::string body) {
  Response res{status, version};
  res.set(http::field::server, "keyfence");
  res.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

Response Text(http::status status, unsigned version, std::string body) {
  return MakeResponse(status, version, kTextPlain, std::move(body));
}

// Maps a handler-supplied status code to http::status; anything outside 100..599 is a bug
// in the handler and becomes 500.
http::status ToStatus(int code) {
  if (code < 100 || code > 599) return http::status::internal_server_error;
  return static_cast<http::status>(code);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding ('+' is a space; bad escapes kept as is).
std::string PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 &&
               HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// The decoded value of query parameter `key`, if present.
std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq)) != key) continue;
    return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// True if `header` is "Bearer <token>" (scheme case-insensitive) with the expected token.
bool BearerMatches(std::string_view header, std::string_view token) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!header.empty() && is_space(header.front())) header.remove_prefix(1);
  while (!header.empty() && is_space(header.back())) header.remove_suffix(1);
  constexpr std::string_view kScheme = "Bearer";
  if (header.size() <= kScheme.size() || !EqualsIgnoreCase(header.substr(0, 6), kScheme) ||
      !is_space(header[kScheme.size()])) {
    return false;
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && is_space(header.front())) header.remove_prefix(1);
  return ConstantTimeEquals(header, token);
}

enum class Route {
  kMetrics, kHealthz, kReadyz, kConfig, kReload, kTenants, kHotkeys, kBigkeys, kNamespaces, kAnalyze
};

struct RouteInfo {
  std::string_view path;
  Route route;
  http::verb method;
};

constexpr RouteInfo kRoutes[] = {
    {"/metrics", Route::kMetrics, http::verb::get}, {"/healthz", Route::kHealthz, http::verb::get},
    {"/readyz", Route::kReadyz, http::verb::get},   {"/config", Route::kConfig, http::verb::get},
    {"/reload", Route::kReload, http::verb::post},  {"/tenants", Route::kTenants, http::verb::get},
    {"/hotkeys", Route::kHotkeys, http::verb::get}, {"/bigkeys", Route::kBigkeys, http::verb::get},
    {"/namespaces", Route::kNamespaces, http::verb::get},
    {"/analyze", Route::kAnalyze, http::verb::post},
};

bool Authorized(const std::string& token, const Request& req) {
  return token.empty() || BearerMatches(View(req[http::field::authorization]), token);
}

Response Unauthorized(unsigned v) {
  Response res = Text(http::status::unauthorized, v, "unauthorized\n");
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

// PUT / DELETE /tenants/<name>/limits.
Response TenantLimits(const AdminHandlers& h, const std::string& token, const Request& req,
                      std::string_view path, std::string_view query) {
  const unsigned v = req.version();
  constexpr size_t kHead = sizeof("/tenants/") - 1, kTail = sizeof("/limits") - 1;
  if (path.size() <= kHead + kTail || !h.tenant_limits) {
    return Text(http::status::not_found, v, "not found\n");
  }
  const std::string tenant = PercentDecode(path.substr(kHead, path.size() - kHead - kTail));
  if (req.method() != http::verb::put && req.method() != http::verb::delete_) {
    Response res = Text(http::status::method_not_allowed, v, "method not allowed\n");
    res.set(http::field::allow, "PUT, DELETE");
    return res;
  }
  if (!Authorized(token, req)) return Unauthorized(v);
  auto [status, body] =
      h.tenant_limits(req.method() == http::verb::put, tenant, req.body(), query);
  return MakeResponse(ToStatus(status), v, kJson, std::move(body));
}

// Answers one request. Runs the owner's handler, if any, on the calling thread.
Response Dispatch(const AdminHandlers& h, const std::string& token, const Request& req) {
  const unsigned v = req.version();
  const std::string_view target = View(req.target());
  const size_t qmark = target.find('?');
  const std::string_view path = target.substr(0, qmark);
  const std::string_view query =
      qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);

  if (path.starts_with("/tenants/") && path.ends_with("/limits")) {
    return TenantLimits(h, token, req, path, query);
  }
  const RouteInfo* info = nullptr;
  for (const RouteInfo& r : kRoutes) {
    if (r.path == path) info = &r;
  }
  if (info == nullptr) return Text(http::status::not_found, v, "not found\n");
  if (req.method() != info->method) {
    Response res = Text(http::status::method_not_allowed, v, "method not allowed\n");
    res.set(http::field::allow, http::to_string(info->method));
    return res;
  }
  if (req.method() != http::verb::get && !Authorized(token, req)) return Unauthorized(v);

  switch (info->route) {
    case Route::kHealthz:
      return Text(http::status::ok, v, "ok\n");
    case Route::kMetrics:
      if (!h.metrics) break;
      return MakeResponse(http::status::ok, v, kMetricsType, h.metrics());
    case Route::kReadyz:
      if (!h.ready) break;
      return h.ready() ? Text(http::status::ok, v, "ready\n")
                       : Text(http::status::service_unavailable, v, "not ready\n");
    case Route::kConfig:
      if (!h.config_json) break;
      return MakeResponse(http::status::ok, v, kJson, h.config_json());
    case Route::kReload: {
      if (!h.reload) break;
      auto [status, body] = h.reload();
      return MakeResponse(ToStatus(status), v, kJson, std::move(body));
    }
    case Route::kTenants:
      if (!h.tenants_json) break;
      return MakeResponse(http::status::ok, v, kJson, h.tenants_json());
    case Route::kNamespaces:
      if (!h.namespaces_json) break;
      return MakeResponse(http::status::ok, v, kJson, h.namespaces_json());
    case Route::kAnalyze: {
      if (!h.analyze) break;
      auto [status, body] = h.analyze();
      return MakeResponse(ToStatus(status), v, kJson, std::move(body));
    }
    case Route::kHotkeys:
    case Route::kBigkeys: {
      const auto& handler = info->route == Route::kHotkeys ? h.hotkeys_json : h.bigkeys_json;
      if (!handler) break;
      std::optional<std::string> tenant = QueryParam(query, "tenant");
      if (!tenant || tenant->empty()) {
        return MakeResponse(http::status::bad_request, v, kJson,
                            "{\"error\":\"missing query parameter: tenant\"}\n");
      }
      auto [status, body] = handler(*tenant);
      return MakeResponse(ToStatus(status), v, kJson, std::move(body));
    }
  }
  return Text(http::status::not_found, v, "not found\n");  // handler not installed
}

}  // namespace

bool ConstantTimeEquals(std::string_view presented, std::string_view expected) {
  // Walk `expected` fully whatever `presented` holds; fold the length difference in.
  unsigned diff = presented.size() == expected.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char p = presented.empty() ? '\0' : presented[i % presented.size()];
    diff |= static_cast<unsigned char>(p ^ expected[i]);
  }
  return diff == 0;
}

// State shared by the server and its sessions; outlives the server while sessions or
// the accept operation are still queued on the io_context.
struct AdminServer::State {
  explicit State(asio::io_context& io) : acceptor(io), retry_timer(io) {}
  AdminHandlers handlers;
  std::string token;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;  // re-arms accept after a transient error (EMFILE)
  bool running = false;
  std::set<Session*> sessions;  // open sessions, for Stop() and the connection cap
};

// One admin connection: read a request, answer it, repeat while keep-alive.
class AdminServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {
    state_->sessions.insert(this);
  }
  ~Session() { state_->sessions.erase(this); }

  void Run() { Read(); }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(kAdminMaxBodyBytes);
    parser_->header_limit(kAdminMaxHeaderBytes);
    stream_.expires_after(std::chrono::seconds(kAdminIdleTimeoutSeconds));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return Shutdown();
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || !state_->running) {
      return;  // idle client timed out, server stopped, or peer went away: just drop it
    }
    if (ec == http::error::body_limit) {
      return Reply(Text(http::status::payload_too_large, 11, "request body too large\n"), true);
    }
    if (ec == http::error::header_limit) {
      return Reply(Text(http::status::request_header_fields_too_large, 11, "headers too large\n"),
                   true);
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      spdlog::warn("admin http: bad request from {}: {}", Peer(), ec.message());
      return Reply(Text(http::status::bad_request, 11, "bad request\n"), true);
    }
    if (ec) {
      spdlog::warn("admin http: read from {} failed: {}", Peer(), ec.message());
      return;
    }

    Request req = parser_->release();
    Response res;
    try {
      res = Dispatch(state_->handlers, state_->token, req);
    } catch (const std::exception& e) {
      spdlog::error("admin http: {} {} failed: {}", View(req.method_string()), View(req.target()),
                    e.what());
      res = Text(http::status::internal_server_error, req.version(), "internal error\n");
    }
    spdlog::debug("admin http: {} {} -> {}", View(req.method_string()), View(req.target()),
                  res.result_int());
    res.keep_alive(req.keep_alive());
    Reply(std::move(res), false);
  }

  void Reply(Response&& res, bool close) {
    if (close) res.keep_alive(false);
    res.prepare_payload();
    res_ = std::move(res);
    stream_.expires_after(std::chrono::seconds(kAdminIdleTimeoutSeconds));
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) {
      if (ec != asio::error::operation_aborted && ec != beast::error::timeout) {
        spdlog::warn("admin http: write to {} failed: {}", Peer(), ec.message());
      }
      return;
    }
    if (res_.need_eof() || !state_->running) return Shutdown();
    Read();
  }

  void Shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  std::string Peer() {
    beast::error_code ec;
    const tcp::endpoint ep = stream_.socket().remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  std::shared_ptr<State> state_;
};

AdminServer::AdminServer(asio::io_context& io, const std::string& host, uint16_t port,
                         AdminHandlers handlers, std::string token)
    : io_(io), host_(host), requested_port_(port), state_(std::make_shared<State>(io)) {
  state_->handlers = std::move(handlers);
  state_->token = std::move(token);
}

AdminServer::~AdminServer() { Stop(); }

boost::system::error_code AdminServer::Start() {
  boost::system::error_code ec;
  if (state_->running) return asio::error::already_started;
  tcp::endpoint endpoint;
  const asio::ip::address address = asio::ip::make_address(host_, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, requested_port_);
  } else {
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(host_, std::to_string(requested_port_), ec);
    if (!ec && results.empty()) ec = asio::error::host_not_found;
    if (!ec) endpoint = results.begin()->endpoint();
  }
  tcp::acceptor& acceptor = state_->acceptor;
  if (!ec) acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  tcp::endpoint local;
  if (!ec) local = acceptor.local_endpoint(ec);
  if (ec) {
    spdlog::error("admin http: cannot listen on {}:{}: {}", host_, requested_port_, ec.message());
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return ec;
  }
  port_ = local.port();
  state_->running = true;
  spdlog::info("admin http: listening on {}:{}", local.address().to_string(), port_);
  Accept(state_);
  return {};
}

void AdminServer::Accept(std::shared_ptr<State> state) {
  State& s = *state;
  s.acceptor.async_accept([state = std::move(state)](beast::error_code ec, tcp::socket socket) {
    if (!state->running || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Transient (e.g. out of descriptors): log once per failure and retry shortly.
      spdlog::warn("admin http: accept failed: {}", ec.message());
      state->retry_timer.expires_after(std::chrono::milliseconds(100));
      state->retry_timer.async_wait([state](beast::error_code wait_ec) {
        if (!wait_ec && state->running) Accept(state);
      });
      return;
    }
    if (state->sessions.size() >= kAdminMaxConnections) {
      spdlog::warn("admin http: too many connections ({}), closing a new one",
                   state->sessions.size());
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Session>(std::move(socket), state)->Run();
    }
    Accept(state);
  });
}

void AdminServer::Stop() {
  if (!state_->running) return;
  state_->running = false;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  state_->retry_timer.cancel();
  for (Session* session : state_->sessions) session->Close();
}

void AdminServer::SetToken(std::string token) { state_->token = std::move(token); }

}  // namespace keyfence::proxy
