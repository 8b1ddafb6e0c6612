#include "proxy/admin/admin_server.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

namespace keyfence::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Response = http::response<http::string_body>;

std::string Str(beast::string_view s) { return std::string(s.data(), s.size()); }

// A blocking HTTP/1.1 client on one keep-alive connection.
class Client {
 public:
  explicit Client(uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  Response Send(http::verb method, const std::string& target, const std::string& auth = "",
                std::string body = "", bool keep_alive = true) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!auth.empty()) req.set(http::field::authorization, auth);
    req.keep_alive(keep_alive);
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(socket_, req);
    Response res;
    http::read(socket_, buffer_, res);
    return res;
  }

  // True once the server has closed the connection (read returns EOF/reset).
  bool ServerClosed() {
    char c;
    beast::error_code ec;
    socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

Response Fetch(uint16_t port, http::verb method, const std::string& target,
               const std::string& auth = "") {
  Client client(port);
  return client.Send(method, target, auth, "", false);
}

// A server on 127.0.0.1:0 whose io_context runs on a background thread.
class Fixture {
 public:
  explicit Fixture(std::string token = "") {
    AdminHandlers h;
    h.metrics = [] { return std::string("keyfence_config_version 3\n"); };
    h.ready = [this] { return ready.load(); };
    h.config_json = [] { return std::string("{\"version\":3}"); };
    h.reload = [this]() -> std::pair<int, std::string> {
      ++reloads;
      if (fail_reload.load()) throw std::runtime_error("boom");
      return {200, "{\"version\":4}"};
    };
    h.tenants_json = [] { return std::string("[{\"tenant\":\"orders\"}]"); };
    h.hotkeys_json = [this](std::string_view tenant) -> std::pair<int, std::string> {
      last_tenant = std::string(tenant);
      if (tenant == "nobody") return {404, "{\"error\":\"unknown tenant\"}"};
      return {200, "{\"tenant\":\"" + std::string(tenant) + "\",\"keys\":[]}"};
    };
    server = std::make_unique<AdminServer>(io, "127.0.0.1", 0, std::move(h), std::move(token));
    const auto ec = server->Start();
    REQUIRE_FALSE(ec);
    REQUIRE(server->port() != 0);
    thread = std::thread([this] { io.run(); });
  }

  ~Fixture() {
    RunOnIo([this] { server->Stop(); });
    thread.join();  // run() returns once the acceptor and sessions are gone
  }

  template <typename Fn>
  void RunOnIo(Fn fn) {
    std::promise<void> done;
    asio::post(io, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  uint16_t port() const { return server->port(); }

  asio::io_context io;
  std::unique_ptr<AdminServer> server;
  std::thread thread;
  std::atomic<bool> ready{false};
  std::atomic<bool> fail_reload{false};
  std::atomic<int> reloads{0};
  std::string last_tenant;  // written on the io thread, read after a round trip
};

TEST_CASE("admin: constant-time token comparison") {
  CHECK(ConstantTimeEquals("secret", "secret"));
  CHECK_FALSE(ConstantTimeEquals("secreT", "secret"));
  CHECK_FALSE(ConstantTimeEquals("secret1", "secret"));
  CHECK_FALSE(ConstantTimeEquals("secre", "secret"));
  CHECK_FALSE(ConstantTimeEquals("", "secret"));
  CHECK_FALSE(ConstantTimeEquals("secretsecret", "secret"));
  CHECK(ConstantTimeEquals("", ""));
}

TEST_CASE("admin: every GET route answers") {
  Fixture f;

  auto res = Fetch(f.port(), http::verb::get, "/healthz");
  CHECK(res.result() == http::status::ok);
  CHECK(res.body() == "ok\n");

  res = Fetch(f.port(), http::verb::get, "/metrics");
  CHECK(res.result() == http::status::ok);
  CHECK(Str(res[http::field::content_type]).rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(res.body() == "keyfence_config_version 3\n");

  res = Fetch(f.port(), http::verb::get, "/readyz");
  CHECK(res.result() == http::status::service_unavailable);
  CHECK(res.body() == "not ready\n");
  f.ready = true;
  res = Fetch(f.port(), http::verb::get, "/readyz");
  CHECK(res.result() == http::status::ok);
  CHECK(res.body() == "ready\n");

  res = Fetch(f.port(), http::verb::get, "/config");
  CHECK(res.result() == http::status::ok);
  CHECK(Str(res[http::field::content_type]) == "application/json");
  CHECK(res.body() == "{\"version\":3}");

  res = Fetch(f.port(), http::verb::get, "/tenants");
  CHECK(res.result() == http::status::ok);
  CHECK(res.body() == "[{\"tenant\":\"orders\"}]");
}

TEST_CASE("admin: hotkeys takes a percent-decoded tenant parameter") {
  Fixture f;
  auto res = Fetch(f.port(), http::verb::get, "/hotkeys?x=1&tenant=shop%2Dorders");
  CHECK(res.result() == http::status::ok);
  CHECK(res.body() == "{\"tenant\":\"shop-orders\",\"keys\":[]}");
  f.RunOnIo([&] { CHECK(f.last_tenant == "shop-orders"); });

  res = Fetch(f.port(), http::verb::get, "/hotkeys?tenant=nobody");
  CHECK(res.result() == http::status::not_found);

  res = Fetch(f.port(), http::verb::get, "/hotkeys");
  CHECK(res.result() == http::status::bad_request);
  res = Fetch(f.port(), http::verb::get, "/hotkeys?tenant=");
  CHECK(res.result() == http::status::bad_request);
}

TEST_CASE("admin: 404 for unknown paths, 405 with Allow for wrong methods") {
  Fixture f;
  auto res = Fetch(f.port(), http::verb::get, "/nope");
  CHECK(res.result() == http::status::not_found);
  res = Fetch(f.port(), http::verb::get, "/metrics/extra");
  CHECK(res.result() == http::status::not_found);

  res = Fetch(f.port(), http::verb::get, "/reload");
  CHECK(res.result() == http::status::method_not_allowed);
  CHECK(Str(res[http::field::allow]) == "POST");
  CHECK(f.reloads == 0);

  res = Fetch(f.port(), http::verb::post, "/metrics");
  CHECK(res.result() == http::status::method_not_allowed);
  CHECK(Str(res[http::field::allow]) == "GET");
  res = Fetch(f.port(), http::verb::delete_, "/healthz");
  CHECK(res.result() == http::status::method_not_allowed);
}

TEST_CASE("admin: POST /reload without a token configured") {
  Fixture f;
  auto res = Fetch(f.port(), http::verb::post, "/reload");
  CHECK(res.result() == http::status::ok);
  CHECK(Str(res[http::field::content_type]) == "application/json");
  CHECK(res.body() == "{\"version\":4}");
  CHECK(f.reloads == 1);
}

TEST_CASE("admin: bearer token guards non-GET routes") {
  Fixture f("s3cret");
  auto res = Fetch(f.port(), http::verb::post, "/reload");
  CHECK(res.result() == http::status::unauthorized);
  CHECK(Str(res[http::field::www_authenticate]) == "Bearer");
  res = Fetch(f.port(), http::verb::post, "/reload", "Bearer wrong");
  CHECK(res.result() == http::status::unauthorized);
  res = Fetch(f.port(), http::verb::post, "/reload", "Basic s3cret");
  CHECK(res.result() == http::status::unauthorized);
  res = Fetch(f.port(), http::verb::post, "/reload", "Bearer s3cret2");
  CHECK(res.result() == http::status::unauthorized);
  CHECK(f.reloads == 0);

  res = Fetch(f.port(), http::verb::post, "/reload", "Bearer s3cret");
  CHECK(res.result() == http::status::ok);
  res = Fetch(f.port(), http::verb::post, "/reload", "bearer   s3cret ");
  CHECK(res.result() == http::status::ok);
  CHECK(f.reloads == 2);

  // GET routes stay open.
  res = Fetch(f.port(), http::verb::get, "/metrics");
  CHECK(res.result() == http::status::ok);

  // SetToken (config reload) replaces the token.
  f.RunOnIo([&] { f.server->SetToken("next"); });
  res = Fetch(f.port(), http::verb::post, "/reload", "Bearer s3cret");
  CHECK(res.result() == http::status::unauthorized);
  res = Fetch(f.port(), http::verb::post, "/reload", "Bearer next");
  CHECK(res.result() == http::status::ok);
  f.RunOnIo([&] { f.server->SetToken(""); });
  res = Fetch(f.port(), http::verb::post, "/reload");
  CHECK(res.result() == http::status::ok);
}

TEST_CASE("admin: keep-alive serves several requests on one connection") {
  Fixture f;
  Client client(f.port());
  for (int i = 0; i < 3; ++i) {
    auto res = client.Send(http::verb::get, "/healthz");
    CHECK(res.result() == http::status::ok);
    CHECK(res.keep_alive());
  }
  auto res = client.Send(http::verb::post, "/reload");
  CHECK(res.result() == http::status::ok);
  res = client.Send(http::verb::get, "/healthz", "", "", false);
  CHECK(res.result() == http::status::ok);
  CHECK_FALSE(res.keep_alive());
  CHECK(client.ServerClosed());
}

TEST_CASE("admin: a throwing handler yields 500 and the server keeps going") {
  Fixture f;
  f.fail_reload = true;
  auto res = Fetch(f.port(), http::verb::post, "/reload");
  CHECK(res.result() == http::status::internal_server_error);
  res = Fetch(f.port(), http::verb::get, "/healthz");
  CHECK(res.result() == http::status::ok);
}

TEST_CASE("admin: an oversized body gets 413 and a close") {
  Fixture f;
  Client client(f.port());
  auto res = client.Send(http::verb::post, "/reload", "", std::string(kAdminMaxBodyBytes + 1, 'x'));
  CHECK(res.result() == http::status::payload_too_large);
  CHECK(client.ServerClosed());
  CHECK(f.reloads == 0);
}

TEST_CASE("admin: a malformed request gets 400 and a close") {
  Fixture f;
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f.port()));
  asio::write(socket, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  beast::flat_buffer buffer;
  Response res;
  http::read(socket, buffer, res);
  CHECK(res.result() == http::status::bad_request);
  CHECK_FALSE(res.keep_alive());
}

TEST_CASE("admin: missing handlers answer 404, bind conflicts are reported") {
  asio::io_context io;
  AdminServer bare(io, "127.0.0.1", 0, AdminHandlers{}, "");
  REQUIRE_FALSE(bare.Start());
  CHECK(bare.Start() == asio::error::already_started);

  AdminServer clash(io, "127.0.0.1", bare.port(), AdminHandlers{}, "");
  const auto ec = clash.Start();
  CHECK(ec == asio::error::address_in_use);
  CHECK(clash.port() == 0);

  AdminServer bad_host(io, "192.0.2.1", 0, AdminHandlers{}, "");
  CHECK(bad_host.Start());

  std::thread t([&] { io.run(); });
  auto res = Fetch(bare.port(), http::verb::get, "/metrics");
  CHECK(res.result() == http::status::not_found);
  res = Fetch(bare.port(), http::verb::get, "/healthz");
  CHECK(res.result() == http::status::ok);
  Client idle(bare.port());  // an open keep-alive connection that Stop() must close
  CHECK(idle.Send(http::verb::get, "/healthz").result() == http::status::ok);
  asio::post(io, [&] { bare.Stop(); });
  t.join();
  CHECK(idle.ServerClosed());
}

}  // namespace
}  // namespace keyfence::proxy
