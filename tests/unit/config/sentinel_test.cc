// backend.mode: sentinel and backend.tls (issue 12).
#include <catch2/catch.hpp>

#include "config/config.h"
#include "config_test_util.h"

namespace keyfence::config {
namespace {

using testing::ExpectError;
using testing::MustLoad;

std::string With(std::string_view backend) {
  return "cluster_name: shop\nlisteners: [{bind: 127.0.0.1:6380}]\nbackend:\n" +
         std::string(backend) + "tenants: {orders: {}}\n";
}

TEST_CASE("sentinel backend: master, sentinels, their own credentials") {
  const auto s = MustLoad(With(
      "  mode: sentinel\n"
      "  sentinel: {master: mymaster, nodes: [127.0.0.1:26379, 127.0.0.1:26380],"
      " username: sen, password: pw}\n"
      "  password: data-pw\n"));
  CHECK(s->backend.mode == BackendMode::kSentinel);
  CHECK(s->backend.nodes.empty());
  CHECK(s->backend.sentinel.master == "mymaster");
  REQUIRE(s->backend.sentinel.nodes.size() == 2);
  CHECK(s->backend.sentinel.nodes[1].ToString() == "127.0.0.1:26380");
  CHECK(s->backend.sentinel.username == "sen");
  CHECK(s->backend.sentinel.password == "pw");
  CHECK(s->backend.password == "data-pw");
  const std::string j = ToJson(*s);
  CHECK(j.find("\"mode\":\"sentinel\"") != std::string::npos);
  CHECK(j.find("\"pw\"") == std::string::npos);  // secrets are not shown
}

TEST_CASE("sentinel backend: errors") {
  ExpectError(With("  mode: sentinel\n"), 4, 3, "backend: missing required field 'sentinel'");
  ExpectError(With("  mode: sentinel\n  nodes: [127.0.0.1:1]\n"
                   "  sentinel: {master: m, nodes: [127.0.0.1:2]}\n"),
              5, 10, "backend.nodes: sentinel mode takes no nodes: the sentinels name the master");
  ExpectError(With("  mode: sentinel\n  sentinel: {master: m, nodes: []}\n"), 5, 32,
              "backend.sentinel.nodes: at least one sentinel is required");
  ExpectError(With("  nodes: [127.0.0.1:1]\n  sentinel: {master: m, nodes: [127.0.0.1:2]}\n"), 5,
              13, "backend.sentinel: sentinel applies to mode: sentinel only");
}

TEST_CASE("backend tls: on with no fields, off with enabled: false") {
  const auto on = MustLoad(With("  nodes: [127.0.0.1:6379]\n  tls: {}\n"));
  REQUIRE(on->backend.tls != nullptr);
  CHECK(on->backend.tls->verify);
  CHECK(on->backend.tls->ca_pem.empty());  // the system's trust store
  CHECK(!on->backend.tls->fingerprint.empty());
  const auto off = MustLoad(With("  nodes: [127.0.0.1:6379]\n  tls: {enabled: false}\n"));
  CHECK(off->backend.tls == nullptr);
  const auto plain = MustLoad(With("  nodes: [127.0.0.1:6379]\n"));
  CHECK(plain->backend.tls == nullptr);
  const auto named =
      MustLoad(With("  nodes: [127.0.0.1:6379]\n  tls: {server_name: redis.internal, verify: false}\n"));
  CHECK(named->backend.tls->server_name == "redis.internal");
  CHECK(!named->backend.tls->verify);
  CHECK(named->backend.tls->fingerprint != on->backend.tls->fingerprint);
}

}  // namespace
}  // namespace keyfence::config
