// listeners[].unix (issue 12): a socket path and its mode instead of bind.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "config_test_util.h"

namespace keyfence::config {
namespace {

using testing::ExpectError;
using testing::MustLoad;

constexpr std::string_view kHead = "cluster_name: shop\nbackend: {nodes: [127.0.0.1:6379]}\n";

std::string With(std::string_view listeners) {
  return std::string(kHead) + "listeners:\n" + std::string(listeners) +
         "tenants: {orders: {}}\n";
}

TEST_CASE("unix listeners: path, mode, tenant") {
  const auto s = MustLoad(With("  - {unix: /run/kf/orders.sock, mode: \"0600\", tenant: orders}\n"
                               "  - {unix: /run/kf/gw.sock}\n  - bind: 127.0.0.1:6380\n"));
  REQUIRE(s->listeners.size() == 3);
  CHECK(s->listeners[0].is_unix());
  CHECK(s->listeners[0].unix_path == "/run/kf/orders.sock");
  CHECK(s->listeners[0].unix_mode == 0600);
  CHECK(s->listeners[0].tenant == "orders");
  CHECK(s->listeners[1].unix_mode == 0660);  // the default
  CHECK(s->listeners[1].Name() == "unix:/run/kf/gw.sock");
  CHECK(!s->listeners[2].is_unix());
  CHECK(ToJson(*s).find("\"unix\":\"/run/kf/orders.sock\",\"mode\":384") != std::string::npos);
}

TEST_CASE("unix listeners: errors") {
  ExpectError(With("  - {unix: /a.sock, bind: 127.0.0.1:1}\n"), 4, 5,
              "listeners[0]: a listener has either bind (TCP) or unix (a socket path), not both");
  ExpectError(With("  - {tenant: orders}\n"), 4, 5,
              "listeners[0]: missing required field 'bind' (or 'unix' for a Unix socket)");
  ExpectError(With("  - {bind: 127.0.0.1:1, mode: \"0600\"}\n"), 4, 5,
              "listeners[0]: mode applies to a unix listener only");
  ExpectError(With("  - {unix: /a.sock, mode: \"rw\"}\n"), 4, 27,
              "listeners[0].mode: expected octal permission bits as a string, e.g. \"0660\", "
              "got 'rw'");
  ExpectError(With("  - {unix: /a.sock}\n  - {unix: /a.sock}\n"), 5, 12,
              "listeners[1].unix: duplicate socket path '/a.sock' (listeners[0], line 4)");
  ExpectError(With("  - {unix: \"" + std::string(120, 'x') + "\"}\n"), 4, 12,
              "listeners[0].unix: a Unix socket path is at most 107 bytes, got 120");
}

}  // namespace
}  // namespace keyfence::config
