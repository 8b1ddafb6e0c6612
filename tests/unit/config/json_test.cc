// ToJson: the running config for GET /config, secrets redacted, always valid JSON.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "config/config.h"
#include "config_test_util.h"

namespace keyfence::config {
namespace {

constexpr std::string_view kSecrets = R"(cluster_name: shop
listeners:
  - bind: 127.0.0.1:6380
  - bind: 127.0.0.1:6381
    tenant: orders
admin:
  bind: 127.0.0.1:9121
  token: admin-token-xyz
backend:
  nodes: [127.0.0.1:6379]
  username: kfuser
  password: backend-pass-xyz
policy:
  deny_commands: [FLUSHALL]
tenants:
  orders:
    users:
      - name: orders
        password: orders-secret-xyz
      - name: billing
        password_sha256: 12d043d4bd516bc34ea9e95648e9a12329d2d851840fb60b83822997f1382e17
    limits: { ops_per_sec: 5000 }
    key_rules:
      - match: "we\"ird\\ \t key*"
        read_only: true
)";

// Runs /usr/bin/python3 with `script` on the JSON (argv[1] is its file). The exit code,
// or -1 if python3 is not there.
int Python(const std::string& json, const std::string& script) {
  if (access("/usr/bin/python3", X_OK) != 0) return -1;
  char path[] = "/tmp/kf_config_json_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << json;
  const std::string cmd = "/usr/bin/python3 -c '" + script + "' " + path + " > /dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  std::remove(path);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 99;
}

TEST_CASE("json: secrets are redacted") {
  const std::string json = ToJson(*testing::MustLoad(kSecrets, 42));
  INFO(json);
  for (const char* secret :
       {"admin-token-xyz", "backend-pass-xyz", "orders-secret-xyz",
        "12d043d4bd516bc34ea9e95648e9a12329d2d851840fb60b83822997f1382e17", "12d043d4"}) {
    CHECK(json.find(secret) == std::string::npos);
  }
  CHECK(json.find("<redacted>") != std::string::npos);
  CHECK(json.find("\"version\":42") != std::string::npos);
  CHECK(json.find("\"kfuser\"") != std::string::npos);
  CHECK(json.find("\"shop@orders:\"") != std::string::npos);
  CHECK(json.find("\"flushall\"") != std::string::npos);
  CHECK(json.find(R"("match":"we\"ird\\ \t key*")") != std::string::npos);
}

TEST_CASE("json: the output is valid JSON with the expected shape") {
  const std::string json = ToJson(*testing::MustLoad(kSecrets, 42));
  INFO(json);
  const int rc = Python(
      json,
      "import json,sys\n"
      "d = json.load(open(sys.argv[1]))\n"
      "assert d[\"version\"] == 42\n"
      "assert d[\"cluster_name\"] == \"shop\"\n"
      "assert d[\"listeners\"][0] == {\"bind\": \"127.0.0.1:6380\", \"tenant\": None}\n"
      "assert d[\"listeners\"][1][\"tenant\"] == \"orders\"\n"
      "assert d[\"admin\"][\"token\"] == \"<redacted>\"\n"
      "assert d[\"backend\"][\"password\"] == \"<redacted>\"\n"
      "assert d[\"backend\"][\"nodes\"] == [\"127.0.0.1:6379\"]\n"
      "assert d[\"policy\"][\"deny_commands\"] == [\"flushall\"]\n"
      "assert d[\"limits\"][\"max_request_bytes\"] == 536870912\n"
      "t = d[\"tenants\"][\"orders\"]\n"
      "assert t[\"limits\"][\"ops_per_sec\"] == 5000\n"
      "assert t[\"users\"][1] == {\"name\": \"billing\", \"password_sha256\": \"<redacted>\"}\n"
      "assert t[\"deny_commands\"] == [\"flushall\"]\n"
      "assert t[\"key_rules\"][0][\"match\"] == \"we\\\"ird\\\\ \\t key*\"\n"
      "assert t[\"key_rules\"][0][\"read_only\"] is True\n");
  if (rc == -1) {
    WARN("no /usr/bin/python3: JSON validity not checked");
    return;
  }
  CHECK(rc == 0);
}

TEST_CASE("json: empty secrets stay empty, strings are escaped") {
  Snapshot s;
  s.cluster_name = std::string("a\x01\x1f\"\\\n/\x7f", 8) + "\xc3\xa9" + "\xff";
  Tenant t;
  t.app = "t";
  t.users.push_back(User{"u\xe2\x82", Sha256("x")});
  s.tenants.push_back(t);
  const std::string json = ToJson(s);
  INFO(json);
  CHECK(json.find(R"("cluster_name":"a\u0001\u001f\"\\\n/\u007f)"
                  "\xc3\xa9"
                  R"(\ufffd")") != std::string::npos);
  CHECK(json.find(R"("token":"")") != std::string::npos);
  CHECK(json.find(R"("password":"")") != std::string::npos);
  CHECK(json.find(R"("name":"u\ufffd\ufffd")") != std::string::npos);
  const int rc =
      Python(json, "import json,sys\njson.load(open(sys.argv[1], encoding=\"utf-8\"))\n");
  if (rc != -1) CHECK(rc == 0);
}

}  // namespace
}  // namespace keyfence::config
