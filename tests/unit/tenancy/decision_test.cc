// Decide: the policy decision for one request, table-style. Each row gives the
// session, the request, and everything Decide and RejectText must produce.
#include "tenancy/decision.h"

#include <catch2/catch.hpp>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "protocol/error_replies.h"
#include "tenancy_test_util.h"

namespace keyfence::tenancy {
namespace {

using testing::Args;

constexpr std::string_view kConfig = R"(cluster_name: shop
listeners:
  - bind: 127.0.0.1:6380
backend:
  nodes: [127.0.0.1:6379]
tenants:
  orders:
    deny_commands: [HGETALL, CONFIG, "@hyperloglog"]
    key_rules:
      - match: "report:*"
        deny_commands: [GET]
      - match: "config:*"
        read_only: true
  scripted:
    limits:
      allow_scripts: true
)";

const config::Snapshot& Snapshot() {
  static const config::SnapshotPtr snap = [] {
    config::LoadResult r = config::LoadString(kConfig, "decision.yaml", 1);
    for (const config::Diagnostic& d : r.errors) UNSCOPED_INFO(d.ToString());
    REQUIRE(r.ok());
    return r.snapshot;
  }();
  return *snap;
}

const config::Tenant* Orders() { return Snapshot().FindTenant("orders"); }
const config::Tenant* Scripted() { return Snapshot().FindTenant("scripted"); }

// Session views.
SessionView Anon() { return {}; }
SessionView In(const config::Tenant* t) { return {.tenant = t}; }
SessionView Resp2Subscribed() { return {.tenant = Orders(), .proto = 2, .subscribed = true}; }
SessionView Resp3Subscribed() { return {.tenant = Orders(), .proto = 3, .subscribed = true}; }
SessionView InMulti() { return {.tenant = Orders(), .in_multi = true}; }

const char* Str(Outcome o) {
  switch (o) {
    case Outcome::kLocal:
      return "kLocal";
    case Outcome::kForward:
      return "kForward";
    case Outcome::kClientExtension:
      return "kClientExtension";
    case Outcome::kReject:
      return "kReject";
    case Outcome::kCrossProtocol:
      return "kCrossProtocol";
  }
  return "?";
}

const char* Str(RejectKind k) {
  switch (k) {
    case RejectKind::kNone:
      return "kNone";
    case RejectKind::kUnknownCommand:
      return "kUnknownCommand";
    case RejectKind::kMissingSubcommand:
      return "kMissingSubcommand";
    case RejectKind::kUnknownSubcommand:
      return "kUnknownSubcommand";
    case RejectKind::kArity:
      return "kArity";
    case RejectKind::kNoAuth:
      return "kNoAuth";
    case RejectKind::kSubscribedContext:
      return "kSubscribedContext";
    case RejectKind::kDeniedCommand:
      return "kDeniedCommand";
    case RejectKind::kSyntax:
      return "kSyntax";
    case RejectKind::kDeniedChannel:
      return "kDeniedChannel";
    case RejectKind::kKeyRule:
      return "kKeyRule";
    case RejectKind::kNotInteger:
      return "kNotInteger";
  }
  return "?";
}

const char* Str(Route r) {
  switch (r) {
    case Route::kShared:
      return "kShared";
    case Route::kBlocking:
      return "kBlocking";
    case Route::kTransaction:
      return "kTransaction";
    case Route::kPubSub:
      return "kPubSub";
  }
  return "?";
}

const char* Str(RejectMetric m) {
  switch (m) {
    case RejectMetric::kNone:
      return "kNone";
    case RejectMetric::kDenied:
      return "kDenied";
    case RejectMetric::kAuth:
      return "kAuth";
    case RejectMetric::kKeyRule:
      return "kKeyRule";
  }
  return "?";
}

// refs as testing::Names writes them: "1 2c 3cp".
std::string NamesOf(const NameRefs& refs) {
  std::string s;
  for (const NameRef& r : refs) {
    if (!s.empty()) s += ' ';
    s += std::to_string(r.pos);
    s += testing::KindSuffix(r.kind);
  }
  return s;
}

struct Row {
  const char* what;
  SessionView session;
  Args args;
  Outcome outcome;
  RejectKind reject;
  Route route;
  std::string_view text;   // RejectText ("" unless kReject)
  std::string_view names;  // *refs for kForward, as NamesOf writes them
  std::string_view cmd;    // Decision::cmd->name ("" for null)
};

constexpr Outcome kLocal = Outcome::kLocal;
constexpr Outcome kForward = Outcome::kForward;
constexpr Outcome kExtension = Outcome::kClientExtension;
constexpr Outcome kReject = Outcome::kReject;
constexpr Route kShared = Route::kShared;
constexpr Route kBlocking = Route::kBlocking;
constexpr Route kTransaction = Route::kTransaction;
constexpr Route kPubSub = Route::kPubSub;
using R = RejectKind;

constexpr std::string_view kNoPermChannel =
    "NOPERM this user has no permissions to access one of the channels used as arguments";
constexpr std::string_view kSubscribedTail =
    "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
    "context";

std::string NoPerm(std::string_view name) {
  return "NOPERM this user has no permissions to run the '" + std::string(name) + "' command";
}
std::string Arity(std::string_view name) {
  return "ERR wrong number of arguments for '" + std::string(name) + "' command";
}
std::string Subscribed(std::string_view name) {
  return "ERR Can't execute '" + std::string(name) + std::string(kSubscribedTail);
}

// Owns the strings the rows' texts point into (a deque: push_back keeps them in place).
struct Texts {
  std::deque<std::string> owned;
  std::string_view operator()(std::string s) { return owned.emplace_back(std::move(s)); }
};

void Run(const std::vector<Row>& rows) {
  for (const Row& row : rows) {
    INFO(row.what);
    NameRefs refs;
    refs.push_back({99, RefKind::kKey, 0});  // Decide must clear it
    const Decision d = Decide(row.session, row.args, &refs);
    CHECK(std::string(Str(d.outcome)) == Str(row.outcome));
    CHECK(std::string(Str(d.reject)) == Str(row.reject));
    CHECK(std::string(Str(d.route)) == Str(row.route));
    CHECK(RejectText(d, row.args) == row.text);
    if (row.outcome == Outcome::kForward) CHECK(NamesOf(refs) == row.names);
    CHECK((d.cmd != nullptr ? d.cmd->name : std::string_view()) == row.cmd);
    if (d.cmd != nullptr) {
      CHECK(d.rule == &CommandRules::Get().For(d.cmd->id));
    } else {
      CHECK(d.rule == nullptr);
    }
  }
}

TEST_CASE("decision: unknown commands, containers and arity") {
  const std::string long_name(200, 'x');
  const std::string long_arg(100, 'y');
  Texts t;
  Run({
      {"unknown command: up to 3 args quoted",
       Anon(),
       {"FOO", "a", "b", "c", "d"},
       kReject,
       R::kUnknownCommand,
       kShared,
       "ERR unknown command 'FOO', with args beginning with: 'a' 'b' 'c' ",
       "",
       ""},
      {"an HTTP request line: closed, before and after AUTH",
       Anon(),
       {"POST", "/", "HTTP/1.1"},
       Outcome::kCrossProtocol,
       R::kNone,
       kShared,
       "",
       "",
       ""},
      {"an HTTP header line",
       In(Orders()),
       {"host:", "localhost:6379"},
       Outcome::kCrossProtocol,
       R::kNone,
       kShared,
       "",
       "",
       ""},
      {"unknown command without args",
       In(Orders()),
       {"nosuch"},
       kReject,
       R::kUnknownCommand,
       kShared,
       "ERR unknown command 'nosuch', with args beginning with: ",
       "",
       ""},
      {"unknown command: name clipped to 128, args to 64",
       In(Orders()),
       {long_name, long_arg},
       kReject,
       R::kUnknownCommand,
       kShared,
       t("ERR unknown command '" + std::string(128, 'x') + "', with args beginning with: '" +
         std::string(64, 'y') + "' "),
       "",
       ""},
      {"bare COMMAND is the local parent",
       In(Orders()),
       {"COMMAND"},
       kLocal,
       R::kNone,
       kShared,
       "",
       "",
       "command"},
      {"COMMAND COUNT is the local subcommand",
       In(Orders()),
       {"command", "count"},
       kLocal,
       R::kNone,
       kShared,
       "",
       "",
       "command|count"},
      {"bare CLIENT: missing subcommand",
       In(Orders()),
       {"CLIENT"},
       kReject,
       R::kMissingSubcommand,
       kShared,
       t(Arity("client")),
       "",
       "client"},
      {"bare OBJECT: missing subcommand, even before AUTH",
       Anon(),
       {"object"},
       kReject,
       R::kMissingSubcommand,
       kShared,
       t(Arity("object")),
       "",
       "object"},
      {"unknown subcommand",
       In(Orders()),
       {"CLIENT", "FOO"},
       kReject,
       R::kUnknownSubcommand,
       kShared,
       "ERR unknown subcommand 'FOO'. Try CLIENT HELP.",
       "",
       "client"},
      {"unknown subcommand: parent upper-cased, sub clipped to 128",
       In(Orders()),
       {"object", long_name},
       kReject,
       R::kUnknownSubcommand,
       kShared,
       t("ERR unknown subcommand '" + std::string(128, 'x') + "'. Try OBJECT HELP."),
       "",
       "object"},
      {"CLIENT SETINFO authenticated: extension",
       In(Orders()),
       {"CLIENT", "SETINFO", "lib-name", "redis-py"},
       kExtension,
       R::kNone,
       kShared,
       "",
       "",
       "client"},
      {"client no-touch authenticated (any case): extension",
       In(Orders()),
       {"client", "No-Touch", "on"},
       kExtension,
       R::kNone,
       kShared,
       "",
       "",
       "client"},
      {"CLIENT SETINFO before AUTH: unknown subcommand",
       Anon(),
       {"CLIENT", "SETINFO", "lib-name", "redis-py"},
       kReject,
       R::kUnknownSubcommand,
       kShared,
       "ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.",
       "",
       "client"},
      {"SETINFO of another parent: unknown subcommand",
       In(Orders()),
       {"OBJECT", "SETINFO"},
       kReject,
       R::kUnknownSubcommand,
       kShared,
       "ERR unknown subcommand 'SETINFO'. Try OBJECT HELP.",
       "",
       "object"},
      {"GET without key: arity",
       In(Orders()),
       {"GET"},
       kReject,
       R::kArity,
       kShared,
       t(Arity("get")),
       "",
       "get"},
      {"GET with two keys: exact arity",
       In(Orders()),
       {"get", "a", "b"},
       kReject,
       R::kArity,
       kShared,
       t(Arity("get")),
       "",
       "get"},
      {"MGET without keys: at-least arity",
       In(Orders()),
       {"MGET"},
       kReject,
       R::kArity,
       kShared,
       t(Arity("mget")),
       "",
       "mget"},
      {"subcommand arity names the subcommand",
       In(Orders()),
       {"CLIENT", "SETNAME"},
       kReject,
       R::kArity,
       kShared,
       t(Arity("client|setname")),
       "",
       "client|setname"},
      {"arity is checked before AUTH",
       Anon(),
       {"GET"},
       kReject,
       R::kArity,
       kShared,
       t(Arity("get")),
       "",
       "get"},
  });
}

TEST_CASE("decision: NOAUTH for all but AUTH, HELLO, QUIT, RESET") {
  const std::string noauth(protocol::errors::kNoAuth);
  Run({
      {"GET before AUTH", Anon(), {"GET", "k"}, kReject, R::kNoAuth, kShared, noauth, "", "get"},
      {"PING before AUTH", Anon(), {"PING"}, kReject, R::kNoAuth, kShared, noauth, "", "ping"},
      {"CLIENT SETNAME before AUTH",
       Anon(),
       {"CLIENT", "SETNAME", "x"},
       kReject,
       R::kNoAuth,
       kShared,
       noauth,
       "",
       "client|setname"},
      {"NOAUTH before the deny check",
       Anon(),
       {"MOVE", "k", "1"},
       kReject,
       R::kNoAuth,
       kShared,
       noauth,
       "",
       "move"},
      {"AUTH before AUTH", Anon(), {"AUTH", "secret"}, kLocal, R::kNone, kShared, "", "", "auth"},
      {"HELLO before AUTH", Anon(), {"HELLO", "3"}, kLocal, R::kNone, kShared, "", "", "hello"},
      {"QUIT before AUTH", Anon(), {"QUIT"}, kLocal, R::kNone, kShared, "", "", "quit"},
      {"RESET before AUTH", Anon(), {"reset"}, kLocal, R::kNone, kShared, "", "", "reset"},
      {"GET after AUTH", In(Orders()), {"GET", "k"}, kForward, R::kNone, kShared, "", "1", "get"},
  });
}

TEST_CASE("decision: pub/sub context, RESP2 vs RESP3") {
  Texts t;
  Run({
      {"RESP2 subscribed: GET refused",
       Resp2Subscribed(),
       {"GET", "k"},
       kReject,
       R::kSubscribedContext,
       kShared,
       t(Subscribed("get")),
       "",
       "get"},
      {"RESP2 subscribed: a subcommand is named parent|sub",
       Resp2Subscribed(),
       {"CLIENT", "ID"},
       kReject,
       R::kSubscribedContext,
       kShared,
       t(Subscribed("client|id")),
       "",
       "client|id"},
      {"RESP2 subscribed: context before the deny list",
       Resp2Subscribed(),
       {"HGETALL", "h"},
       kReject,
       R::kSubscribedContext,
       kShared,
       t(Subscribed("hgetall")),
       "",
       "hgetall"},
      {"RESP2 subscribed: SUBSCRIBE",
       Resp2Subscribed(),
       {"SUBSCRIBE", "b"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1c",
       "subscribe"},
      {"RESP2 subscribed: UNSUBSCRIBE from all",
       Resp2Subscribed(),
       {"UNSUBSCRIBE"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "",
       "unsubscribe"},
      {"RESP2 subscribed: PUNSUBSCRIBE",
       Resp2Subscribed(),
       {"PUNSUBSCRIBE", "n*"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1cp",
       "punsubscribe"},
      {"RESP2 subscribed: PING",
       Resp2Subscribed(),
       {"PING"},
       kLocal,
       R::kNone,
       kShared,
       "",
       "",
       "ping"},
      {"RESP2 subscribed: QUIT",
       Resp2Subscribed(),
       {"QUIT"},
       kLocal,
       R::kNone,
       kShared,
       "",
       "",
       "quit"},
      {"RESP2 subscribed: RESET",
       Resp2Subscribed(),
       {"RESET"},
       kLocal,
       R::kNone,
       kShared,
       "",
       "",
       "reset"},
      {"RESP2 subscribed: ECHO refused",
       Resp2Subscribed(),
       {"ECHO", "x"},
       kReject,
       R::kSubscribedContext,
       kShared,
       t(Subscribed("echo")),
       "",
       "echo"},
      {"RESP3 subscribed: GET on the subscriber connection",
       Resp3Subscribed(),
       {"GET", "k"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "get"},
      {"RESP3 subscribed: BLPOP becomes kShared",
       Resp3Subscribed(),
       {"BLPOP", "q", "0"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "blpop"},
      {"RESP3 subscribed: MULTI becomes kShared",
       Resp3Subscribed(),
       {"MULTI"},
       kForward,
       R::kNone,
       kShared,
       "",
       "",
       "multi"},
      {"RESP3 subscribed: XREAD BLOCK becomes kShared",
       Resp3Subscribed(),
       {"XREAD", "BLOCK", "0", "STREAMS", "s", "0"},
       kForward,
       R::kNone,
       kShared,
       "",
       "4",
       "xread"},
      {"RESP3 subscribed: SUBSCRIBE stays kPubSub",
       Resp3Subscribed(),
       {"SUBSCRIBE", "b"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1c",
       "subscribe"},
      {"RESP3 subscribed: the deny list still applies",
       Resp3Subscribed(),
       {"HGETALL", "h"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("hgetall")),
       "",
       "hgetall"},
  });
}

TEST_CASE("decision: deny lists and the scripts gate") {
  Texts t;
  Run({
      {"tenant deny by name",
       In(Orders()),
       {"HGETALL", "h"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("hgetall")),
       "",
       "hgetall"},
      {"not denied for another tenant",
       In(Scripted()),
       {"HGETALL", "h"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "hgetall"},
      {"tenant deny by @category",
       In(Orders()),
       {"PFADD", "hll", "a"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("pfadd")),
       "",
       "pfadd"},
      {"@category: not for another tenant",
       In(Scripted()),
       {"PFADD", "hll", "a"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "pfadd"},
      {"a denied parent denies its local subcommand",
       In(Orders()),
       {"CONFIG", "GET", "maxmemory"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("config|get")),
       "",
       "config|get"},
      {"CONFIG GET is local where allowed",
       In(Scripted()),
       {"CONFIG", "GET", "maxmemory"},
       kLocal,
       R::kNone,
       kShared,
       "",
       "",
       "config|get"},
      {"denied by the command table",
       In(Scripted()),
       {"MOVE", "k", "1"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("move")),
       "",
       "move"},
      {"a denied subcommand by the table",
       In(Scripted()),
       {"CLIENT", "PAUSE", "10"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("client|pause")),
       "",
       "client|pause"},
      {"EVAL without allow_scripts",
       In(Orders()),
       {"EVAL", "return 1", "0"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("eval")),
       "",
       "eval"},
      {"EVAL with allow_scripts",
       In(Scripted()),
       {"EVAL", "return 1", "1", "k"},
       kForward,
       R::kNone,
       kShared,
       "",
       "3",
       "eval"},
      {"SCRIPT LOAD without allow_scripts",
       In(Orders()),
       {"SCRIPT", "LOAD", "return 1"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("script|load")),
       "",
       "script|load"},
      {"SCRIPT LOAD with allow_scripts",
       In(Scripted()),
       {"SCRIPT", "LOAD", "return 1"},
       kForward,
       R::kNone,
       kShared,
       "",
       "",
       "script|load"},
      {"PING is local", In(Orders()), {"PING"}, kLocal, R::kNone, kShared, "", "", "ping"},
  });
}

TEST_CASE("decision: forwarded names: syntax, COPY DB, keyspace channels, key_rules") {
  Texts t;
  const std::string nopermkey(protocol::errors::kNoPermKey);
  Run({
      {"keys cannot be located: syntax error",
       In(Orders()),
       {"ZUNIONSTORE", "dst", "3", "a", "b"},
       kReject,
       R::kSyntax,
       kShared,
       "ERR syntax error",
       "",
       "zunionstore"},
      {"EVAL numkeys too large: Redis's text",
       In(Scripted()),
       {"EVAL", "s", "3", "a"},
       kReject,
       R::kSyntax,
       kShared,
       "ERR Number of keys can't be greater than number of args",
       "",
       "eval"},
      {"COPY ... DB",
       In(Orders()),
       {"COPY", "a", "b", "DB", "1"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("copy")),
       "",
       "copy"},
      {"COPY ... db (any case) after REPLACE",
       In(Orders()),
       {"copy", "a", "b", "REPLACE", "db", "2"},
       kReject,
       R::kDeniedCommand,
       kShared,
       t(NoPerm("copy")),
       "",
       "copy"},
      {"COPY ... DB 0 is the tenant's own database",
       In(Orders()),
       {"COPY", "a", "b", "DB", "0"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1 2",
       "copy"},
      {"COPY ... DB x: Redis's integer error first",
       In(Orders()),
       {"COPY", "a", "b", "DB", "x"},
       kReject,
       R::kNotInteger,
       kShared,
       t(std::string(protocol::errors::kNotInteger)),
       "",
       "copy"},
      {"COPY of keys named db",
       In(Orders()),
       {"COPY", "db", "DB"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1 2",
       "copy"},
      {"COPY ... REPLACE",
       In(Orders()),
       {"COPY", "a", "b", "REPLACE"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1 2",
       "copy"},
      {"SUBSCRIBE a keyspace channel of the tenant's own key",
       In(Orders()),
       {"SUBSCRIBE", "__keyspace@0__:x"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1c",
       "subscribe"},
      {"SUBSCRIBE a keyspace channel of another database",
       In(Orders()),
       {"SUBSCRIBE", "__keyspace@1__:x"},
       kReject,
       R::kDeniedChannel,
       kShared,
       kNoPermChannel,
       "",
       "subscribe"},
      {"SUBSCRIBE with a keyevent channel second (messages filtered to the tenant)",
       In(Orders()),
       {"SUBSCRIBE", "news", "__keyevent@0__:del"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1c 2c",
       "subscribe"},
      {"SUBSCRIBE a keyevent channel of another database",
       In(Orders()),
       {"SUBSCRIBE", "__keyevent@1__:del"},
       kReject,
       R::kDeniedChannel,
       kShared,
       kNoPermChannel,
       "",
       "subscribe"},
      {"PSUBSCRIBE __key*",
       In(Orders()),
       {"PSUBSCRIBE", "__key*"},
       kReject,
       R::kDeniedChannel,
       kShared,
       kNoPermChannel,
       "",
       "psubscribe"},
      {"PUBLISH to a keyspace channel",
       In(Orders()),
       {"PUBLISH", "__keyspace@0__:x", "m"},
       kReject,
       R::kDeniedChannel,
       kShared,
       kNoPermChannel,
       "",
       "publish"},
      {"PUBSUB NUMSUB of a keyspace channel",
       In(Orders()),
       {"PUBSUB", "NUMSUB", "__keyspace@0__:x"},
       kReject,
       R::kDeniedChannel,
       kShared,
       kNoPermChannel,
       "",
       "pubsub|numsub"},
      {"SUBSCRIBE _key (one underscore)",
       In(Orders()),
       {"SUBSCRIBE", "_key"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1c",
       "subscribe"},
      {"shard channels are not checked (prefixed like keys)",
       In(Orders()),
       {"SSUBSCRIBE", "__keyspace@0__:x"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1s",
       "ssubscribe"},
      {"key_rules deny_commands",
       In(Orders()),
       {"GET", "report:1"},
       kReject,
       R::kKeyRule,
       kShared,
       nopermkey,
       "",
       "get"},
      {"key_rules deny_commands: another command",
       In(Orders()),
       {"SET", "report:1", "v"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "set"},
      {"key_rules read_only: write denied",
       In(Orders()),
       {"SET", "config:x", "v"},
       kReject,
       R::kKeyRule,
       kShared,
       nopermkey,
       "",
       "set"},
      {"key_rules read_only: read allowed",
       In(Orders()),
       {"GET", "config:x"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "get"},
      {"key_rules: the second key decides",
       In(Orders()),
       {"MSET", "a", "1", "config:x", "2"},
       kReject,
       R::kKeyRule,
       kShared,
       nopermkey,
       "",
       "mset"},
      {"key_rules: other tenants unaffected",
       In(Scripted()),
       {"GET", "report:1"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "get"},
  });
}

TEST_CASE("decision: routes") {
  Run({
      {"GET: shared, refs filled",
       In(Orders()),
       {"GET", "k"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "get"},
      {"MGET: every key",
       In(Orders()),
       {"MGET", "a", "b", "c"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1 2 3",
       "mget"},
      {"SUBSCRIBE: pub/sub",
       In(Orders()),
       {"SUBSCRIBE", "a", "b"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1c 2c",
       "subscribe"},
      {"PSUBSCRIBE: pub/sub, patterns",
       In(Orders()),
       {"PSUBSCRIBE", "n*"},
       kForward,
       R::kNone,
       kPubSub,
       "",
       "1cp",
       "psubscribe"},
      {"BLPOP: blocking",
       In(Orders()),
       {"BLPOP", "q", "0"},
       kForward,
       R::kNone,
       kBlocking,
       "",
       "1",
       "blpop"},
      {"BLPOP inside MULTI stays blocking (rule route)",
       InMulti(),
       {"BLPOP", "q", "0"},
       kForward,
       R::kNone,
       kBlocking,
       "",
       "1",
       "blpop"},
      {"MULTI: transaction",
       In(Orders()),
       {"MULTI"},
       kForward,
       R::kNone,
       kTransaction,
       "",
       "",
       "multi"},
      {"WATCH: transaction, with keys",
       In(Orders()),
       {"WATCH", "a", "b"},
       kForward,
       R::kNone,
       kTransaction,
       "",
       "1 2",
       "watch"},
      {"XREAD BLOCK: blocking",
       In(Orders()),
       {"XREAD", "BLOCK", "0", "STREAMS", "s", "0"},
       kForward,
       R::kNone,
       kBlocking,
       "",
       "4",
       "xread"},
      {"xread block (any case) after COUNT: blocking",
       In(Orders()),
       {"xread", "count", "1", "block", "10", "streams", "s", "$"},
       kForward,
       R::kNone,
       kBlocking,
       "",
       "6",
       "xread"},
      {"XREAD BLOCK inside MULTI: shared",
       InMulti(),
       {"XREAD", "BLOCK", "0", "STREAMS", "s", "0"},
       kForward,
       R::kNone,
       kShared,
       "",
       "4",
       "xread"},
      {"XREAD without BLOCK: shared",
       In(Orders()),
       {"XREAD", "COUNT", "1", "STREAMS", "s", "0"},
       kForward,
       R::kNone,
       kShared,
       "",
       "4",
       "xread"},
      {"XREAD: a stream named block is not the option",
       In(Orders()),
       {"XREAD", "STREAMS", "block", "0"},
       kForward,
       R::kNone,
       kShared,
       "",
       "2",
       "xread"},
      {"XREADGROUP BLOCK: blocking",
       In(Orders()),
       {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"},
       kForward,
       R::kNone,
       kBlocking,
       "",
       "7",
       "xreadgroup"},
      {"XREADGROUP without BLOCK: shared",
       In(Orders()),
       {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"},
       kForward,
       R::kNone,
       kShared,
       "",
       "5",
       "xreadgroup"},
      {"XRANGE (no block option) with an argument named block",
       In(Orders()),
       {"XRANGE", "block", "-", "+"},
       kForward,
       R::kNone,
       kShared,
       "",
       "1",
       "xrange"},
      {"PING: local", In(Orders()), {"PING"}, kLocal, R::kNone, kShared, "", "", "ping"},
  });
}

TEST_CASE("decision: local commands say which handler") {
  struct LocalRow {
    Args args;
    Local local;
  };
  const LocalRow rows[] = {
      {{"PING"}, Local::kPing},       {{"AUTH", "pw"}, Local::kAuth},
      {{"COMMAND"}, Local::kCommand}, {{"CLIENT", "SETNAME", "x"}, Local::kClientSetName},
      {{"SCAN", "0"}, Local::kScan},
  };
  for (const LocalRow& row : rows) {
    INFO(row.args[0]);
    NameRefs refs;
    const Decision d = Decide(In(Orders()), row.args, &refs);
    REQUIRE(d.outcome == Outcome::kLocal);
    REQUIRE(d.rule != nullptr);
    CHECK(d.rule->local == row.local);
  }
}

TEST_CASE("decision: MetricOf every reject kind") {
  struct MetricRow {
    RejectKind kind;
    RejectMetric metric;
  };
  const MetricRow rows[] = {
      {RejectKind::kNone, RejectMetric::kNone},
      {RejectKind::kUnknownCommand, RejectMetric::kDenied},
      {RejectKind::kMissingSubcommand, RejectMetric::kDenied},
      {RejectKind::kUnknownSubcommand, RejectMetric::kDenied},
      {RejectKind::kArity, RejectMetric::kDenied},
      {RejectKind::kNoAuth, RejectMetric::kAuth},
      {RejectKind::kSubscribedContext, RejectMetric::kNone},
      {RejectKind::kDeniedCommand, RejectMetric::kDenied},
      {RejectKind::kSyntax, RejectMetric::kDenied},
      {RejectKind::kDeniedChannel, RejectMetric::kDenied},
      {RejectKind::kKeyRule, RejectMetric::kKeyRule},
  };
  for (const MetricRow& row : rows) {
    INFO(Str(row.kind));
    CHECK(std::string(Str(MetricOf(row.kind))) == Str(row.metric));
  }
}

TEST_CASE("decision: refs is cleared and keeps its capacity") {
  NameRefs refs;
  refs.reserve(64);
  const NameRef* data = refs.data();
  const Args mget = {"MGET", "a", "b", "c"};
  REQUIRE(Decide(In(Orders()), mget, &refs).outcome == Outcome::kForward);
  CHECK(refs.size() == 3);
  CHECK(refs.data() == data);
  REQUIRE(Decide(In(Orders()), Args{"PING"}, &refs).outcome == Outcome::kLocal);
  CHECK(refs.empty());
  CHECK(refs.capacity() >= 64);
  CHECK(refs.data() == data);
}

TEST_CASE("decision: RejectText is empty unless rejected; empty args are unknown") {
  NameRefs refs;
  const Args get = {"GET", "k"};
  CHECK(RejectText(Decide(In(Orders()), get, &refs), get).empty());
  const Args none;
  const Decision d = Decide(In(Orders()), none, &refs);
  CHECK(d.outcome == Outcome::kReject);
  CHECK(d.reject == RejectKind::kUnknownCommand);
  CHECK(RejectText(d, none) == "ERR unknown command '', with args beginning with: ");
}

TEST_CASE("decision: block_option is set exactly for XREAD and XREADGROUP") {
  const protocol::CommandTable& table = protocol::CommandTable::Get();
  for (size_t id = 0; id < table.size(); ++id) {
    const protocol::CommandInfo& c = table.ById(static_cast<uint16_t>(id));
    INFO(c.name);
    CHECK(CommandRules::Get().For(c.id).block_option ==
          (c.name == "xread" || c.name == "xreadgroup"));
  }
}

}  // namespace
}  // namespace keyfence::tenancy
