// RewriteExec (each queued command's reply rule applied at its position) and
// CONFIG GET filtering.
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tenancy/rewriter.h"
#include "tenancy_test_util.h"

namespace keyfence::tenancy {
namespace {

using testing::Bulk;
using testing::kUnexpected;

const std::string kP = "shop@orders:";

using Rules = std::vector<std::pair<ReplyRule, std::string>>;

std::string Exec(const std::string& frame, const Rules& rules, int proto = 2) {
  ReplyContext ctx;
  ctx.prefix = testing::kPrefix;
  ctx.pattern = "ignored:*";  // each command's own pattern applies instead
  ctx.proto = proto;
  std::string out;
  RewriteExec(frame, rules, ctx, out);
  return out;
}

std::string Filter(const std::string& frame) {
  std::string out;
  FilterConfigGet(frame, out);
  return out;
}

TEST_CASE("rewriter: RewriteExec applies each queued command's rule") {
  // MULTI; SET a 1; KEYS a*; BLPOP q 0 (non-blocking in EXEC); SCAN 0; GET a; EXEC
  const std::string keys = "*3\r\n" + Bulk(kP + "a1") + Bulk(kP + "b1") + Bulk(kP + "a2");
  const std::string blpop = "*2\r\n" + Bulk(kP + "q") + Bulk("job");
  const std::string scan = "*2\r\n" + Bulk("0") + "*2\r\n" + Bulk(kP + "a1") + Bulk(kP + "x");
  const std::string backend = "*5\r\n+OK\r\n" + keys + blpop + scan + Bulk(kP + "value-is-data");
  const Rules rules = {{ReplyRule::kNone, ""},
                       {ReplyRule::kKeyList, "a*"},
                       {ReplyRule::kFirstIsKey, ""},
                       {ReplyRule::kScan, ""},
                       {ReplyRule::kNone, ""}};
  CHECK(Exec(backend, rules) == "*5\r\n+OK\r\n*2\r\n" + Bulk("a1") + Bulk("a2") + "*2\r\n" +
                                    Bulk("q") + Bulk("job") + "*2\r\n" + Bulk("0") + "*2\r\n" +
                                    Bulk("a1") + Bulk("x") + Bulk(kP + "value-is-data"));
}

TEST_CASE("rewriter: RewriteExec passes per-command errors and nils") {
  const std::string backend = "*3\r\n-WRONGTYPE Operation against a key\r\n*-1\r\n:1\r\n";
  const Rules rules = {
      {ReplyRule::kKeyList, ""}, {ReplyRule::kFirstIsKey, ""}, {ReplyRule::kNone, ""}};
  CHECK(Exec(backend, rules) == backend);
}

TEST_CASE("rewriter: RewriteExec copies elements beyond the known rules") {
  const std::string backend = "*2\r\n" + Bulk(kP + "k") + Bulk(kP + "k");
  CHECK(Exec(backend, {{ReplyRule::kSingleKey, ""}}) == "*2\r\n" + Bulk("k") + Bulk(kP + "k"));
}

TEST_CASE("rewriter: RewriteExec passes EXECABORT and a failed WATCH") {
  const std::string abort = "-EXECABORT Transaction discarded because of previous errors.\r\n";
  CHECK(Exec(abort, {}) == abort);
  CHECK(Exec("*-1\r\n", {{ReplyRule::kKeyList, ""}}) == "*-1\r\n");
  CHECK(Exec("_\r\n", {{ReplyRule::kKeyList, ""}}, 3) == "_\r\n");
  CHECK(Exec("*0\r\n", {}) == "*0\r\n");
}

TEST_CASE("rewriter: RewriteExec in RESP3") {
  const std::string backend =
      "*2\r\n%1\r\n" + Bulk(kP + "s") + "*0\r\n" + "*3\r\n" + Bulk(kP + "z") + Bulk("m") + ",1\r\n";
  CHECK(Exec(backend, {{ReplyRule::kStreams, ""}, {ReplyRule::kFirstIsKey, ""}}, 3) ==
        "*2\r\n%1\r\n" + Bulk("s") + "*0\r\n" + "*3\r\n" + Bulk("z") + Bulk("m") + ",1\r\n");
}

TEST_CASE("rewriter: RewriteExec of a malformed frame is an error") {
  CHECK(Exec("*2\r\n+OK\r\n", {}) == kUnexpected);
}

TEST_CASE("rewriter: CONFIG GET keeps only allow-listed parameters (RESP2 pairs)") {
  const std::string backend = "*8\r\n" + Bulk("maxmemory-policy") + Bulk("noeviction") +
                              Bulk("dir") + Bulk("/var/lib/redis") + Bulk("timeout") + Bulk("0") +
                              Bulk("requirepass") + Bulk("secret");
  CHECK(Filter(backend) ==
        "*4\r\n" + Bulk("maxmemory-policy") + Bulk("noeviction") + Bulk("timeout") + Bulk("0"));
  // Through RewriteReply too.
  std::string out;
  RewriteReply(ReplyRule::kConfigGet, backend, ReplyContext{testing::kPrefix, "", 2}, out);
  CHECK(out == Filter(backend));
}

TEST_CASE("rewriter: CONFIG GET keeps only allow-listed parameters (RESP3 map)") {
  const std::string backend = "%3\r\n" + Bulk("hash-max-listpack-entries") + Bulk("128") +
                              Bulk("masterauth") + Bulk("pw") + Bulk("proto-max-bulk-len") +
                              Bulk("536870912");
  CHECK(Filter(backend) == "%2\r\n" + Bulk("hash-max-listpack-entries") + Bulk("128") +
                               Bulk("proto-max-bulk-len") + Bulk("536870912"));
}

TEST_CASE("rewriter: CONFIG GET with nothing allowed is empty; errors pass") {
  CHECK(Filter("*4\r\n" + Bulk("dir") + Bulk("/") + Bulk("logfile") + Bulk("")) == "*0\r\n");
  CHECK(Filter("%1\r\n" + Bulk("bind") + Bulk("0.0.0.0")) == "%0\r\n");
  CHECK(Filter("*0\r\n") == "*0\r\n");
  CHECK(Filter("-ERR unknown\r\n") == "-ERR unknown\r\n");
  CHECK(Filter("+OK\r\n") == kUnexpected);
}

TEST_CASE("rewriter: ConfigParamAllowed is an allow-list, case-insensitive") {
  CHECK(ConfigParamAllowed("timeout"));
  CHECK(ConfigParamAllowed("TIMEOUT"));
  CHECK(ConfigParamAllowed("Maxmemory-Policy"));
  CHECK(ConfigParamAllowed("zset-max-listpack-entries"));
  CHECK(ConfigParamAllowed("proto-max-bulk-len"));
  for (const char* name : {"dir", "dbfilename", "requirepass", "masterauth", "masteruser", "bind",
                           "port", "logfile", "aclfile", "unixsocket", "replicaof", "slaveof",
                           "cluster-config-file", "tls-key-file", "", "timeout ", "timeou", "*"}) {
    INFO(name);
    CHECK_FALSE(ConfigParamAllowed(name));
  }
}

}  // namespace
}  // namespace keyfence::tenancy
