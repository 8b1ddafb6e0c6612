#include "proxy/ctl/http_client.h"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace keyfence::proxy::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// "http://host:port" -> host, port. False if it is not that form.
bool SplitUrl(const std::string& url, std::string* host, std::string* port) {
  constexpr std::string_view kScheme = "http://";
  std::string_view rest(url);
  if (!rest.starts_with(kScheme)) return false;
  rest.remove_prefix(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t colon;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return false;
    *host = std::string(rest.substr(1, close - 1));
    colon = close + 1;
    if (colon >= rest.size() || rest[colon] != ':') return false;
  } else {
    colon = rest.rfind(':');
    if (colon == std::string_view::npos) return false;
    *host = std::string(rest.substr(0, colon));
  }
  *port = std::string(rest.substr(colon + 1));
  return !host->empty() && !port->empty() &&
         port->find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

std::optional<HttpAnswer> HttpRequest(const std::string& url, const std::string& method,
                                      const std::string& target, const std::string& token,
                                      const std::string& body, std::chrono::milliseconds timeout,
                                      std::string* error) {
  std::string host, port;
  if (!SplitUrl(url, &host, &port)) {
    *error = "the admin address must be http://HOST:PORT, got '" + url + "'";
    return std::nullopt;
  }
  asio::io_context io;
  beast::tcp_stream stream(io);
  asio::ip::tcp::resolver resolver(io);
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "keyfence-ctl");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  boost::system::error_code failure;
  bool done = false;
  stream.expires_after(timeout);
  resolver.async_resolve(host, port, [&](const boost::system::error_code& ec, auto results) {
    if (ec) {
      failure = ec;
      return;
    }
    stream.async_connect(results, [&](const boost::system::error_code& ec2, auto) {
      if (ec2) {
        failure = ec2;
        return;
      }
      http::async_write(stream, req, [&](const boost::system::error_code& ec3, size_t) {
        if (ec3) {
          failure = ec3;
          return;
        }
        http::async_read(stream, buffer, res, [&](const boost::system::error_code& ec4, size_t) {
          failure = ec4;
          done = !ec4;
        });
      });
    });
  });
  io.run_for(timeout + std::chrono::milliseconds(100));
  if (!done) {
    *error = "cannot reach the admin API at " + url + ": " +
             (failure ? failure.message() : std::string("no answer in time"));
    return std::nullopt;
  }
  return HttpAnswer{static_cast<int>(res.result_int()), std::move(res.body())};
}

}  // namespace keyfence::proxy::ctl
