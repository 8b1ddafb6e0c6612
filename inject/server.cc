#include "inject/server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "inject/review.h"

namespace keyfence::inject {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

namespace {

// After a response that closes the connection, unread request bytes are read and dropped
// for this long (at most kLingerBytes), so that a client still sending a refused body
// reads the 400 instead of a reset.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 64 * 1024 * 1024;

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

Response Text(http::status status, unsigned version, std::string body) {
  Response res{status, version};
  res.set(http::field::server, "keyfence-inject");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  return res;
}

Response MethodNotAllowed(unsigned version, http::verb allowed) {
  Response res = Text(http::status::method_not_allowed, version, "method not allowed\n");
  res.set(http::field::allow, http::to_string(allowed));
  return res;
}

// Answers one request; `log` gets a line for the log when there is something to say.
Response Answer(const Request& req, const InjectOptions& options, std::string& log) {
  const unsigned v = req.version();
  const std::string_view target = View(req.target());
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/healthz") {
    if (req.method() != http::verb::get) return MethodNotAllowed(v, http::verb::get);
    return Text(http::status::ok, v, "ok\n");
  }
  if (path != "/mutate") return Text(http::status::not_found, v, "not found\n");
  if (req.method() != http::verb::post) return MethodNotAllowed(v, http::verb::post);
  HttpResult r = HandleMutate(req.body(), options);
  log = std::move(r.log);
  Response res{static_cast<http::status>(r.status), v};
  res.set(http::field::server, "keyfence-inject");
  res.set(http::field::content_type, r.content_type);
  res.body() = std::move(r.body);
  return res;
}

}  // namespace

struct WebhookServer::State {
  State(asio::io_context& io, CertReloader& c, InjectOptions o)
      : acceptor(io), retry_timer(io), certs(c), options(std::move(o)) {}
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;  // re-arms accept after a transient error (EMFILE)
  CertReloader& certs;
  InjectOptions options;
  bool running = false;
  std::set<Session*> sessions;
};

// One HTTPS connection: handshake, then read a request, answer it, repeat while
// keep-alive (and the server runs).
class WebhookServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, CertReloader::ContextPtr ctx, std::shared_ptr<State> state)
      : ctx_(std::move(ctx)), stream_(std::move(socket), *ctx_), state_(std::move(state)) {
    state_->sessions.insert(this);
    beast::error_code ec;
    const tcp::endpoint ep = Lowest().socket().remote_endpoint(ec);
    peer_ = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() { state_->sessions.erase(this); }

  void Run() {
    phase_ = Phase::kHandshake;
    Lowest().expires_after(std::chrono::seconds(kHandshakeTimeoutSeconds));
    stream_.async_handshake(
        ssl::stream_base::server,
        [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

  // The server stops: a connection with no request under way is closed now.
  void OnStop() {
    const bool idle_read =
        phase_ == Phase::kReading && parser_ && !parser_->got_some() && buffer_.size() == 0;
    if (phase_ == Phase::kHandshake || phase_ == Phase::kLingering || idle_read) Close();
  }

  void Close() {
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().socket().close(ec);
  }

 private:
  enum class Phase { kHandshake, kReading, kWriting, kLingering };

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      // A TCP probe or a scanner ends here often: not worth a warning.
      if (ec == asio::error::eof || ec == asio::error::operation_aborted ||
          ec == ssl::error::stream_truncated || ec == asio::error::connection_reset) {
        spdlog::debug("inject: TLS handshake with {} ended: {}", peer_, ec.message());
      } else {
        spdlog::warn("inject: TLS handshake with {} failed: {}", peer_, ec.message());
      }
      return Close();
    }
    Read();
  }

  void Read() {
    phase_ = Phase::kReading;
    parser_.emplace();
    parser_->body_limit(kMaxReviewBytes);
    parser_->header_limit(kMaxHeaderBytes);
    Lowest().expires_after(std::chrono::seconds(kIdleTimeoutSeconds));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == ssl::error::stream_truncated ||
        ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof ||
        ec == http::error::partial_message) {
      return Close();  // peer went away, idle timeout, or the server stopped
    }
    if (ec == http::error::body_limit) {
      spdlog::warn("inject: {}: request body over {} bytes refused", peer_, kMaxReviewBytes);
      return Reply(Text(http::status::bad_request, 11,
                        "bad request: the body is over the limit of " +
                            std::to_string(kMaxReviewBytes) + " bytes (4 MiB)\n"),
                   true, true);
    }
    if (ec == http::error::header_limit) {
      return Reply(
          Text(http::status::request_header_fields_too_large, 11, "request headers too large\n"),
          true, true);
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      spdlog::warn("inject: {}: bad HTTP request: {}", peer_, ec.message());
      return Reply(Text(http::status::bad_request, 11, "bad request: " + ec.message() + "\n"), true,
                   true);
    }
    if (ec) {
      spdlog::warn("inject: read from {} failed: {}", peer_, ec.message());
      return Close();
    }
    Request req = parser_->release();
    std::string log;
    Response res;
    try {
      res = Answer(req, state_->options, log);
    } catch (const std::exception& e) {  // a bug, not the client's doing
      spdlog::error("inject: {} {} from {} failed: {}", View(req.method_string()),
                    View(req.target()), peer_, e.what());
      res = Text(http::status::internal_server_error, req.version(), "internal error\n");
    }
    if (!log.empty()) {
      if (res.result() == http::status::ok) {
        spdlog::info("inject: {}", log);
      } else {
        spdlog::warn("inject: {}: {}", peer_, log);
      }
    }
    spdlog::debug("inject: {} {} from {} -> {}", View(req.method_string()), View(req.target()),
                  peer_, res.result_int());
    // A refused body closes the connection (the client may be in a bad state).
    const bool close = !req.keep_alive() || res.result() == http::status::bad_request;
    Reply(std::move(res), close);
  }

  // close: no keep-alive; linger: the request was not read to its end (see Linger).
  void Reply(Response&& res, bool close, bool linger = false) {
    phase_ = Phase::kWriting;
    linger_ = linger;
    res.keep_alive(!close && state_->running);
    res.prepare_payload();
    res_ = std::move(res);
    Lowest().expires_after(std::chrono::seconds(kIdleTimeoutSeconds));
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) {
      if (ec != asio::error::operation_aborted && ec != beast::error::timeout) {
        spdlog::warn("inject: write to {} failed: {}", peer_, ec.message());
      }
      return Close();
    }
    if (res_.keep_alive()) return Read();
    if (linger_) return Linger();
    Close();
  }

  // Reads and drops what the client still sends, then closes (see kLingerTime).
  void Linger() {
    phase_ = Phase::kLingering;
    if (lingered_ == 0) Lowest().expires_after(kLingerTime);
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > kLingerBytes) return self->Close();
                              self->Linger();
                            });
  }

  CertReloader::ContextPtr ctx_;  // before stream_: the stream uses it
  beast::ssl_stream<beast::tcp_stream> stream_;
  std::shared_ptr<State> state_;
  std::string peer_;
  Phase phase_ = Phase::kHandshake;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  bool linger_ = false;
  size_t lingered_ = 0;
  std::array<char, 16 * 1024> scratch_{};
};

WebhookServer::WebhookServer(asio::io_context& io, tcp::endpoint endpoint, CertReloader& certs,
                             InjectOptions options)
    : endpoint_(std::move(endpoint)),
      state_(std::make_shared<State>(io, certs, std::move(options))) {}

WebhookServer::~WebhookServer() { Stop(); }

boost::system::error_code WebhookServer::Start() {
  boost::system::error_code ec;
  tcp::acceptor& acceptor = state_->acceptor;
  acceptor.open(endpoint_.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && endpoint_.address().is_v6()) acceptor.set_option(asio::ip::v6_only(false), ec);
  if (!ec) acceptor.bind(endpoint_, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  tcp::endpoint local;
  if (!ec) local = acceptor.local_endpoint(ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return ec;
  }
  port_ = local.port();
  state_->running = true;
  Accept(state_);
  return {};
}

void WebhookServer::Accept(std::shared_ptr<State> state) {
  State& s = *state;
  s.acceptor.async_accept([state = std::move(state)](beast::error_code ec, tcp::socket socket) {
    if (!state->running || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Transient (e.g. out of descriptors): log and retry shortly.
      spdlog::warn("inject: accept failed: {}", ec.message());
      state->retry_timer.expires_after(std::chrono::milliseconds(100));
      state->retry_timer.async_wait([state](beast::error_code wait_ec) {
        if (!wait_ec && state->running) Accept(state);
      });
      return;
    }
    if (state->sessions.size() >= kMaxConnections) {
      spdlog::warn("inject: too many connections ({}), closing a new one", state->sessions.size());
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      // The certificate in force for this connection (reloaded if its files changed).
      std::make_shared<Session>(std::move(socket), state->certs.Current(), state)->Run();
    }
    Accept(state);
  });
}

void WebhookServer::Stop() {
  if (!state_->running) return;
  state_->running = false;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  state_->retry_timer.cancel();
  // OnStop may close (and so, later, destroy) a session: iterate over a copy.
  const std::set<Session*> sessions = state_->sessions;
  for (Session* session : sessions) session->OnStop();
}

size_t WebhookServer::open_connections() const { return state_->sessions.size(); }

}  // namespace keyfence::inject
