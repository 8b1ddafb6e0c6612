// The accounting section and the quota limits (issue 11): parsed, defaulted,
// merged per tenant; bad values and reserved tenant names with positions.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "config_test_util.h"

namespace keyfence::config {
namespace {

using testing::ExpectError;
using testing::MustLoad;
using testing::WithBase;

TEST_CASE("accounting: defaults, a schedule, quotas per tenant") {
  const auto d = MustLoad(WithBase(""));
  CHECK(d->accounting.schedule_minute == -1);
  CHECK(d->accounting.top_keys == 10);
  CHECK(d->accounting.state_dir.empty());
  CHECK(d->default_limits.memory_quota_bytes == 0);
  CHECK(d->default_limits.max_keys == 0);
  const auto s = MustLoad(WithBase(
      "accounting: {schedule: \"03:30\", top_keys: 5, state_dir: /var/lib/keyfence}\n"
      "limits: {memory_quota_bytes: 1000}\n"
      "tenants:\n  orders: {limits: {max_keys: 7}}\n  payments: {limits: {memory_quota_bytes: 0}}\n"));
  CHECK(s->accounting.schedule_minute == 3 * 60 + 30);
  CHECK(s->accounting.schedule == "03:30");
  CHECK(s->accounting.top_keys == 5);
  CHECK(s->accounting.state_dir == "/var/lib/keyfence");
  const Tenant* o = s->FindTenant("orders");
  const Tenant* p = s->FindTenant("payments");
  REQUIRE((o != nullptr && p != nullptr));
  CHECK(o->limits.memory_quota_bytes == 1000);  // the default
  CHECK(o->limits.max_keys == 7);
  CHECK(p->limits.memory_quota_bytes == 0);  // the tenant's own: none
  CHECK(ToJson(*s).find("\"memory_quota_bytes\":1000") != std::string::npos);
  CHECK(ToJson(*s).find("\"schedule\":\"03:30\"") != std::string::npos);
}

TEST_CASE("accounting: bad schedules and reserved tenant names") {
  ExpectError(WithBase("accounting: {schedule: \"25:00\"}\n"), 6, 24,
              "accounting.schedule: expected a time of day HH:MM (e.g. \"03:30\") or \"\", got "
              "'25:00'");
  ExpectError(WithBase("accounting: {schedule: \"3:30\"}\n"), 6, 24,
              "accounting.schedule: expected a time of day HH:MM (e.g. \"03:30\") or \"\", got "
              "'3:30'");
  ExpectError(WithBase("accounting: {top_keys: 5000}\n"), 6, 24,
              "accounting.top_keys: must be between 0 and 1000, got '5000'");
  ExpectError(WithBase("tenants:\n  __keyfence: {}\n"), 7, 3,
              "tenants: tenant names starting with \"__\" are reserved for keyfence's own "
              "data, got '__keyfence'");
}

}  // namespace
}  // namespace keyfence::config
