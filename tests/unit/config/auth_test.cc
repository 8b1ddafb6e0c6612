// SHA-256 digests and AUTH against a Snapshot.
#include <catch2/catch.hpp>
#include <string>

#include "config/config.h"
#include "config_test_util.h"

namespace keyfence::config {
namespace {

std::string Hex(const std::array<uint8_t, 32>& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

TEST_CASE("auth: Sha256 matches the standard test vectors") {
  CHECK(Hex(Sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Hex(Sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Hex(Sha256("billing-secret")) ==
        "12d043d4bd516bc34ea9e95648e9a12329d2d851840fb60b83822997f1382e17");
  CHECK(Hex(Sha256(std::string_view("a\0b", 3))) != Hex(Sha256("a")));
}

constexpr std::string_view kUsers = R"(cluster_name: shop
listeners:
  - bind: 127.0.0.1:6380
backend:
  nodes: [127.0.0.1:6379]
tenants:
  orders:
    users:
      - name: orders
        password: orders-secret
      - name: billing
        password_sha256: 12D043D4bd516bc34ea9e95648e9a12329d2d851840fb60b83822997f1382e17
  payments:
    users:
      - name: payments
        password: payments-secret
  nobody: {}
)";

TEST_CASE("auth: user and password") {
  const SnapshotPtr s = testing::MustLoad(kUsers);
  const Tenant* orders = s->FindTenant("orders");
  const Tenant* payments = s->FindTenant("payments");
  REQUIRE(orders != nullptr);
  REQUIRE(payments != nullptr);
  CHECK(s->Authenticate("orders", "orders-secret") == orders);
  CHECK(s->Authenticate("billing", "billing-secret") == orders);
  CHECK(s->Authenticate("payments", "payments-secret") == payments);
  CHECK(s->Authenticate("orders", "payments-secret") == nullptr);
  CHECK(s->Authenticate("orders", "") == nullptr);
  CHECK(s->Authenticate("orders", "orders-secreT") == nullptr);
  CHECK(s->Authenticate("Orders", "orders-secret") == nullptr);  // names are case-sensitive
  CHECK(s->Authenticate("nobody", "x") == nullptr);
  CHECK(s->Authenticate("", "") == nullptr);
  REQUIRE(orders->users.size() == 2);
  CHECK(orders->users[1].name == "billing");
  CHECK(orders->users[1].password_sha256 == Sha256("billing-secret"));
}

TEST_CASE("auth: password only names the unique user with that password") {
  const SnapshotPtr s = testing::MustLoad(kUsers);
  CHECK(s->AuthenticatePasswordOnly("orders-secret") == s->FindTenant("orders"));
  CHECK(s->AuthenticatePasswordOnly("billing-secret") == s->FindTenant("orders"));
  CHECK(s->AuthenticatePasswordOnly("payments-secret") == s->FindTenant("payments"));
  CHECK(s->AuthenticatePasswordOnly("orders") == nullptr);
  CHECK(s->AuthenticatePasswordOnly("") == nullptr);
}

TEST_CASE("auth: a hand-built Snapshot without users_by_name still authenticates") {
  Snapshot s;
  Tenant t;
  t.app = "a";
  t.users.push_back(User{"u", Sha256("pw")});
  s.tenants.push_back(t);
  CHECK(s.Authenticate("u", "pw") == &s.tenants[0]);
  CHECK(s.Authenticate("u", "px") == nullptr);
  CHECK(s.Authenticate("v", "pw") == nullptr);
  CHECK(s.AuthenticatePasswordOnly("pw") == &s.tenants[0]);
  CHECK(s.FindTenant("a") == &s.tenants[0]);
}

}  // namespace
}  // namespace keyfence::config
