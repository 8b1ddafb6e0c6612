// The request path below the socket: a real Session driven through its
// RequestHandler interface (OnRequest), with a fake client stream, a fake
// worker host and a fake Backend that records what is sent and lets the test
// answer; transactions run on a real dedicated BackendConn to a scripted
// fake Redis server on 127.0.0.1.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "../config/config_test_util.h"
#include "fakes.h"
#include "proxy/session/session.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy {
namespace {

using testing::Bulk;
using testing::ClientSide;
using testing::FakeBackend;
using testing::FakeHost;
using testing::FakeRedis;
using testing::FakeStream;
using testing::Resp;
using testing::RunUntil;
using Lines = std::vector<std::string>;

constexpr std::string_view kConfig = R"(cluster_name: shop
listeners:
  - bind: 127.0.0.1:6380
backend:
  nodes: [127.0.0.1:6379]
tenants:
  orders:
    users:
      - name: orders
        password: orders-secret
    deny_commands: [keys]
)";

constexpr std::string_view kPrefix = "shop@orders:";
constexpr std::string_view kCrossSlot =
    "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
constexpr std::string_view kExecAbort =
    "-EXECABORT Transaction discarded because of previous errors.\r\n";

int SlotOf(std::string_view key) { return tenancy::BackendKeySlot(kPrefix, key); }

struct Options {
  std::string listener_tenant = "orders";  // "" = gateway (AUTH picks the tenant)
  bool cluster = false;                    // a cluster-like backend (slots)
};

// One client session of tenant "orders" (shop@orders:) on a fake worker.
struct Client {
  explicit Client(Options o = {})
      : host(config::testing::MustLoad(kConfig)), backend(host, o.cluster) {
    host.set_backend(&backend);
    config::Listener l;
    l.bind = {"127.0.0.1", 6380};
    l.tenant = o.listener_tenant;
    session = std::make_unique<Session>(host, std::make_unique<FakeStream>(&side), l, 7);
    session->Start();
    REQUIRE_FALSE(session->closed());
  }
  ~Client() {
    session->Close();
    Poll();
    session.reset();
    Poll();
  }
  // One request, as ClientConn hands it over; false: a barrier.
  bool Send(std::initializer_list<std::string_view> args) {
    std::vector<std::string> owned(args.begin(), args.end());
    std::vector<std::string_view> views(owned.begin(), owned.end());
    return session->OnRequest(views, Resp(args).size());
  }
  // What the client received since the last call (after the end-of-turn flush).
  std::string Output() {
    host.loop().FlushDirty();
    return side.Take();
  }
  void Poll() {
    host.loop().io().restart();
    host.loop().io().poll();
  }
  ReplySink* session_sink() { return static_cast<ReplySink*>(session.get()); }
  TenantCounters& orders() { return host.counters("orders"); }

  FakeHost host;
  FakeBackend backend;
  ClientSide side;
  std::unique_ptr<Session> session;
};

TEST_CASE("dispatcher: GET is rewritten into the namespace and its reply reaches the client") {
  Client c;
  REQUIRE(c.Send({"GET", "k"}));
  REQUIRE(c.backend.requests.size() == 1);
  const FakeBackend::Request& r = c.backend.requests[0];
  CHECK(r.bytes == Resp({"GET", "shop@orders:k"}));
  CHECK(r.slot == kAnySlot);
  CHECK(r.proto == 2);
  CHECK(r.hint == 7);  // the session id spreads clients over connections
  CHECK(r.sink == c.session_sink());
  CHECK(r.flags.follow_redirects);
  CHECK(r.flags.read_only);
  CHECK(c.Output().empty());
  c.backend.Answer(0, Bulk("v"));
  CHECK(c.Output() == "$1\r\nv\r\n");

  REQUIRE(c.Send({"SET", "k", "v"}));
  REQUIRE(c.backend.requests.size() == 2);
  CHECK(c.backend.requests[1].bytes == Resp({"SET", "shop@orders:k", "v"}));
  CHECK_FALSE(c.backend.requests[1].flags.read_only);
  c.backend.Answer(1, "+OK\r\n");
  CHECK(c.Output() == "+OK\r\n");
}

TEST_CASE("dispatcher: pipelined replies answered out of order reach the client in order") {
  Client c;
  REQUIRE(c.Send({"GET", "a"}));
  REQUIRE(c.Send({"GET", "b"}));
  REQUIRE(c.Send({"GET", "c"}));
  REQUIRE(c.backend.requests.size() == 3);
  CHECK(c.backend.requests[2].bytes == Resp({"GET", "shop@orders:c"}));
  c.backend.Answer(2, Bulk("C"));
  CHECK(c.Output().empty());
  c.backend.Answer(0, Bulk("A"));
  CHECK(c.Output() == "$1\r\nA\r\n");
  REQUIRE(c.Send({"PING"}));  // a local reply waits behind b
  CHECK(c.Output().empty());
  c.backend.Answer(1, Bulk("B"));
  CHECK(c.Output() == "$1\r\nB\r\n$1\r\nC\r\n+PONG\r\n");
}

TEST_CASE("dispatcher: a denied command never reaches the backend and gets NOPERM") {
  Client c;
  REQUIRE(c.Send({"GET", "a"}));
  REQUIRE(c.Send({"KEYS", "*"}));  // deny_commands: [keys]
  REQUIRE(c.Send({"MONITOR"}));    // never forwarded
  REQUIRE(c.Send({"MIGRATE", "h", "1", "k", "0", "5000"}));
  CHECK(c.backend.requests.size() == 1);
  CHECK(c.backend.node_conns.empty());
  CHECK(c.Output().empty());  // the errors wait behind GET's reply
  c.backend.Answer(0, Bulk("A"));
  CHECK(c.Output() ==
        "$1\r\nA\r\n"
        "-NOPERM this user has no permissions to run the 'keys' command\r\n"
        "-NOPERM this user has no permissions to run the 'monitor' command\r\n"
        "-NOPERM this user has no permissions to run the 'migrate' command\r\n");
  CHECK(c.orders().rejected(RejectReason::kDenied) == 3);
}

TEST_CASE("dispatcher: a gateway connection gets NOAUTH until AUTH binds a tenant") {
  Client c({.listener_tenant = ""});
  REQUIRE(c.Send({"GET", "k"}));
  CHECK(c.Output() == "-NOAUTH Authentication required.\r\n");
  CHECK(c.backend.requests.empty());
  CHECK(c.host.counters("unauthenticated").rejected(RejectReason::kAuth) == 1);

  REQUIRE(c.Send({"AUTH", "orders", "wrong"}));
  CHECK(c.Output() == "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  CHECK(c.host.auth_failures == 1);

  REQUIRE(c.Send({"AUTH", "orders", "orders-secret"}));
  CHECK(c.Output() == "+OK\r\n");
  REQUIRE(c.Send({"GET", "k"}));
  REQUIRE(c.backend.requests.size() == 1);
  CHECK(c.backend.requests[0].bytes == Resp({"GET", "shop@orders:k"}));
  c.backend.Answer(0, "$-1\r\n");
  CHECK(c.Output() == "$-1\r\n");
}

// MULTI ... EXEC on the node of a fake server: MULTI +OK, each command
// +QUEUED, EXEC `exec_reply`; WATCH and UNWATCH outside MULTI +OK.
void ServeTransactions(FakeRedis& server, std::string exec_reply = "*2\r\n+OK\r\n$1\r\nv\r\n") {
  auto in_multi = std::make_shared<bool>(false);
  server.set_handler([exec_reply, in_multi](const FakeRedis::Request& r) -> std::string {
    if (r.args[0] == "MULTI") *in_multi = true;
    if (r.args[0] == "EXEC") {
      *in_multi = false;
      return exec_reply;
    }
    return r.args[0] != "MULTI" && *in_multi ? "+QUEUED\r\n" : "+OK\r\n";
  });
}

TEST_CASE("dispatcher: MULTI queues locally, EXEC sends MULTI...EXEC on a dedicated conn") {
  const bool cluster = GENERATE(false, true);
  INFO("cluster " << cluster);
  Client c({.cluster = cluster});
  FakeRedis server(c.host.loop().io());
  ServeTransactions(server);
  c.backend.dedicated_node = server.endpoint();

  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"SET", "k", "v"}));
  REQUIRE(c.Send({"GET", "k"}));
  CHECK(c.Output() == "+OK\r\n+QUEUED\r\n+QUEUED\r\n");
  testing::RunFor(c.host.loop(), std::chrono::milliseconds(10));
  CHECK(c.backend.requests.empty());
  CHECK(c.backend.dedicated_slots.empty());
  CHECK(server.connections() == 0);

  REQUIRE(c.Send({"EXEC"}));
  CHECK(c.backend.dedicated_slots == std::vector<int>{cluster ? SlotOf("k") : kAnySlot});
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "*2\r\n+OK\r\n$1\r\nv\r\n");
  CHECK(server.Lines() == Lines{"MULTI", "SET shop@orders:k v", "GET shop@orders:k", "EXEC"});
  REQUIRE(server.connections() == 1);
  CHECK(server.received(0) == Resp({"MULTI"}) + Resp({"SET", "shop@orders:k", "v"}) +
                                  Resp({"GET", "shop@orders:k"}) + Resp({"EXEC"}));
  CHECK(c.backend.requests.empty());      // nothing on the shared path
  CHECK(c.backend.returned.size() == 1);  // clean again: back to the pool
}

TEST_CASE("dispatcher: a command refused inside MULTI makes EXEC answer EXECABORT") {
  Client c;
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"SET", "k", "v"}));
  REQUIRE(c.Send({"KEYS", "*"}));
  REQUIRE(c.Send({"GET", "k"}));
  REQUIRE(c.Send({"EXEC"}));
  CHECK(c.Output() ==
        "+OK\r\n+QUEUED\r\n"
        "-NOPERM this user has no permissions to run the 'keys' command\r\n"
        "+QUEUED\r\n" +
            std::string(kExecAbort));
  CHECK(c.backend.requests.empty());
  CHECK(c.backend.dedicated_slots.empty());
  // The transaction is over: a new one works.
  REQUIRE(c.Send({"EXEC"}));
  CHECK(c.Output() == "-ERR EXEC without MULTI\r\n");
}

TEST_CASE("dispatcher: keys of two slots inside MULTI make EXEC abort (cluster)") {
  Client c({.cluster = true});
  REQUIRE(SlotOf("{a}1") != SlotOf("{b}2"));
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"SET", "{a}1", "x"}));
  REQUIRE(c.Send({"SET", "{b}2", "y"}));
  REQUIRE(c.Send({"EXEC"}));
  CHECK(c.Output() == "+OK\r\n+QUEUED\r\n" + std::string(kCrossSlot) + std::string(kExecAbort));
  CHECK(c.backend.requests.empty());
  CHECK(c.backend.dedicated_slots.empty());
}

TEST_CASE("dispatcher: EXEC without a node for the slot answers the backend's error") {
  Client c;
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"INCR", "n"}));
  REQUIRE(c.Send({"EXEC"}));
  CHECK(c.Output() ==
        "+OK\r\n+QUEUED\r\n-CLUSTERDOWN keyfence: the cluster topology is not known yet\r\n");
  CHECK(c.backend.dedicated_slots == std::vector<int>{kAnySlot});
  REQUIRE(c.Send({"EXEC"}));
  CHECK(c.Output() == "-ERR EXEC without MULTI\r\n");
}

TEST_CASE("dispatcher: EXEC waits for the replies owed on the shared connection") {
  Client c;
  FakeRedis server(c.host.loop().io());
  ServeTransactions(server, "*1\r\n:1\r\n");
  c.backend.dedicated_node = server.endpoint();
  REQUIRE(c.Send({"GET", "a"}));
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"INCR", "n"}));
  CHECK_FALSE(c.Send({"EXEC"}));  // a barrier: handed again once GET is answered
  CHECK(c.backend.dedicated_slots.empty());
  c.backend.Answer(0, Bulk("A"));
  CHECK(c.Output() == "$1\r\nA\r\n+OK\r\n+QUEUED\r\n");
  REQUIRE(c.Send({"EXEC"}));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "*1\r\n:1\r\n");
  CHECK(server.Lines() == Lines{"MULTI", "INCR shop@orders:n", "EXEC"});
}

TEST_CASE("dispatcher: WATCH pins the dedicated connection EXEC runs on") {
  Client c;
  FakeRedis server(c.host.loop().io());
  ServeTransactions(server, "*1\r\n+OK\r\n");
  c.backend.dedicated_node = server.endpoint();
  REQUIRE(c.Send({"WATCH", "k"}));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "+OK\r\n");
  CHECK(c.backend.returned.empty());  // WATCHed keys live on it
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"SET", "k", "v"}));
  CHECK(c.Output() == "+OK\r\n+QUEUED\r\n");
  REQUIRE(c.Send({"EXEC"}));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "*1\r\n+OK\r\n");
  CHECK(server.Lines() == Lines{"WATCH shop@orders:k", "MULTI", "SET shop@orders:k v", "EXEC"});
  CHECK(server.connections() == 1);
  CHECK(c.backend.dedicated_slots.size() == 1);
  CHECK(c.backend.returned.size() == 1);
}

TEST_CASE("dispatcher: EXEC rewrites each queued command's reply by its rule") {
  Client c;
  FakeRedis server(c.host.loop().io());
  ServeTransactions(server, "*2\r\n*2\r\n$17\r\nshop@orders:queue\r\n$1\r\nx\r\n:3\r\n");
  c.backend.dedicated_node = server.endpoint();
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"BLPOP", "queue", "0"}));  // does not block inside MULTI
  REQUIRE(c.Send({"INCR", "n"}));
  CHECK(c.Output() == "+OK\r\n+QUEUED\r\n+QUEUED\r\n");
  REQUIRE(c.Send({"EXEC"}));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "*2\r\n*2\r\n$5\r\nqueue\r\n$1\r\nx\r\n:3\r\n");
  CHECK(server.Lines() ==
        Lines{"MULTI", "BLPOP shop@orders:queue 0", "INCR shop@orders:n", "EXEC"});
}

// Redis queues every command but EXEC/DISCARD/MULTI/WATCH/QUIT/RESET after
// MULTI, PING and ECHO included, and EXEC's array has their replies: clients
// (redis-py's transaction pipeline) count on one EXEC element per command.
TEST_CASE("dispatcher: PING inside MULTI is queued and answered in EXEC's array") {
  Client c;
  FakeRedis server(c.host.loop().io());
  auto queued = std::make_shared<int>(0);
  server.set_handler([queued](const FakeRedis::Request& r) -> std::string {
    if (r.args[0] == "MULTI") return "+OK\r\n";
    if (r.args[0] != "EXEC") {
      ++*queued;
      return "+QUEUED\r\n";
    }
    std::string a = "*" + std::to_string(*queued) + "\r\n";
    for (int i = 0; i < *queued; ++i) a += "+PONG\r\n";
    return a;
  });
  c.backend.dedicated_node = server.endpoint();
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"PING"}));
  CHECK(c.Output() == "+OK\r\n+QUEUED\r\n");
  REQUIRE(c.Send({"EXEC"}));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "*1\r\n+PONG\r\n");
}

TEST_CASE("dispatcher: EXEC interleaves local replies with the backend's at their positions") {
  Client c;
  FakeRedis server(c.host.loop().io());
  ServeTransactions(server, "*2\r\n+OK\r\n:1\r\n");
  c.backend.dedicated_node = server.endpoint();
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"ECHO", "first"}));
  REQUIRE(c.Send({"SET", "k", "v"}));
  REQUIRE(c.Send({"PING"}));
  REQUIRE(c.Send({"INCR", "n"}));
  REQUIRE(c.Send({"ECHO", "last"}));
  CHECK(c.Output() == "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n");
  REQUIRE(c.Send({"EXEC"}));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "*5\r\n$5\r\nfirst\r\n+OK\r\n+PONG\r\n:1\r\n$4\r\nlast\r\n");
  CHECK(server.Lines() == Lines{"MULTI", "SET shop@orders:k v", "INCR shop@orders:n", "EXEC"});
}

TEST_CASE("dispatcher: an unknown command inside MULTI makes EXEC abort") {
  Client c;
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"NOSUCHCOMMAND"}));
  REQUIRE(c.Send({"EXEC"}));
  const std::string out = c.Output();
  CHECK(out.starts_with("+OK\r\n-ERR unknown command"));
  CHECK(out.ends_with(std::string(kExecAbort)));
}

// EXECABORT after WATCH sends UNWATCH on the dedicated connection with no
// sink; once it is answered the connection is clean and should go back to
// the pool, so the next command of another slot takes the shared path.
TEST_CASE("dispatcher: an aborted WATCH transaction unpins the connection (cluster)") {
  Client c({.cluster = true});
  FakeRedis server(c.host.loop().io());
  ServeTransactions(server);
  c.backend.dedicated_node = server.endpoint();
  REQUIRE(c.Send({"WATCH", "{a}1"}));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "+OK\r\n");
  REQUIRE(c.Send({"MULTI"}));
  REQUIRE(c.Send({"SET", "{b}2", "x"}));  // another slot than the WATCHed key
  REQUIRE(c.Send({"EXEC"}));
  CHECK(c.Output() == "+OK\r\n" + std::string(kCrossSlot) + std::string(kExecAbort));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return server.requests().size() == 2; }));
  CHECK(server.Lines() == Lines{"WATCH shop@orders:{shop@orders:a}1", "UNWATCH"});
  testing::RunFor(c.host.loop(), std::chrono::milliseconds(20));  // UNWATCH's +OK arrives
  CHECK(c.backend.returned.size() == 1);
  REQUIRE(c.Send({"GET", "{b}2"}));
  CHECK(c.Output().empty());  // not -CROSSSLOT
  REQUIRE(c.backend.requests.size() == 1);
  CHECK(c.backend.requests[0].slot == SlotOf("{b}2"));
}

TEST_CASE("dispatcher: a blocking command waits for the shared replies, then goes dedicated") {
  Client c;
  FakeRedis server(c.host.loop().io());
  server.Queue("*2\r\n$17\r\nshop@orders:queue\r\n$1\r\nx\r\n");
  c.backend.dedicated_node = server.endpoint();
  REQUIRE(c.Send({"GET", "a"}));
  CHECK_FALSE(c.Send({"BLPOP", "queue", "0"}));  // a barrier: GET's reply comes first
  CHECK(c.backend.dedicated_slots.empty());
  c.backend.Answer(0, Bulk("A"));
  CHECK(c.Output() == "$1\r\nA\r\n");
  REQUIRE(c.Send({"BLPOP", "queue", "0"}));
  c.host.loop().FlushDirty();
  REQUIRE(RunUntil(c.host.loop(), [&] { return !c.side.written.empty(); }));
  CHECK(c.Output() == "*2\r\n$5\r\nqueue\r\n$1\r\nx\r\n");  // the key is the client's again
  CHECK(server.Lines() == Lines{"BLPOP shop@orders:queue 0"});
  CHECK(c.backend.requests.size() == 1);
}

TEST_CASE("dispatcher: a cross-slot MGET is split per slot and merged in key order") {
  Client c({.cluster = true});
  const int sa = SlotOf("{a}1"), sb = SlotOf("{b}2");
  REQUIRE(sa != sb);
  REQUIRE(SlotOf("{a}3") == sa);
  REQUIRE(c.Send({"GET", "x"}));
  REQUIRE(c.Send({"MGET", "{a}1", "{b}2", "{a}3"}));
  REQUIRE(c.backend.requests.size() == 3);
  CHECK(c.backend.requests[0].slot == SlotOf("x"));
  const FakeBackend::Request& pa = c.backend.requests[1];
  const FakeBackend::Request& pb = c.backend.requests[2];
  CHECK(pa.bytes == Resp({"MGET", "shop@orders:{shop@orders:a}1", "shop@orders:{shop@orders:a}3"}));
  CHECK(pa.slot == sa);
  CHECK(pb.bytes == Resp({"MGET", "shop@orders:{shop@orders:b}2"}));
  CHECK(pb.slot == sb);
  CHECK(pa.sink == pb.sink);
  CHECK(pa.sink != c.session_sink());  // the fan-out merges them
  CHECK(pa.tag != pb.tag);
  c.backend.Answer(2, "*1\r\n$2\r\nvb\r\n");
  c.backend.Answer(1, "*2\r\n$2\r\nva\r\n$-1\r\n");
  CHECK(c.Output().empty());  // behind GET x
  c.backend.Answer(0, Bulk("X"));
  CHECK(c.Output() == "$1\r\nX\r\n*3\r\n$2\r\nva\r\n$2\r\nvb\r\n$-1\r\n");
  c.Poll();  // the finished fan-out is deleted by a posted task

  // DEL sums the parts.
  REQUIRE(c.Send({"DEL", "{a}1", "{b}2"}));
  REQUIRE(c.backend.requests.size() == 5);
  CHECK(c.backend.requests[3].bytes == Resp({"DEL", "shop@orders:{shop@orders:a}1"}));
  CHECK(c.backend.requests[4].bytes == Resp({"DEL", "shop@orders:{shop@orders:b}2"}));
  c.backend.Answer(4, ":1\r\n");
  c.backend.Answer(3, ":1\r\n");
  CHECK(c.Output() == ":2\r\n");
}

TEST_CASE("dispatcher: a session that closes mid fan-out forgets every part") {
  Client c({.cluster = true});
  REQUIRE(c.Send({"MGET", "{a}1", "{b}2"}));
  REQUIRE(c.backend.requests.size() == 2);
  c.session->Close();
  c.Poll();
  CHECK(c.host.sessions_closed == 1);
  CHECK(c.backend.requests[0].forgotten);
  CHECK(c.backend.requests[1].forgotten);
}

TEST_CASE("dispatcher: keys of one slot are not split") {
  Client c({.cluster = true});
  REQUIRE(c.Send({"MGET", "{a}1", "{a}3"}));
  REQUIRE(c.backend.requests.size() == 1);
  CHECK(c.backend.requests[0].slot == SlotOf("{a}1"));
  CHECK(c.backend.requests[0].sink == c.session_sink());
}

TEST_CASE("dispatcher: a cross-slot command that cannot be split gets CROSSSLOT") {
  Client c({.cluster = true});
  REQUIRE(c.Send({"SUNION", "{a}1", "{b}2"}));
  CHECK(c.Output() == kCrossSlot);
  CHECK(c.backend.requests.empty());
  // Standalone: there are no slots, so it is forwarded.
  Client s;
  REQUIRE(s.Send({"SUNION", "{a}1", "{b}2"}));
  REQUIRE(s.backend.requests.size() == 1);
  CHECK(s.backend.requests[0].bytes ==
        Resp({"SUNION", "shop@orders:{shop@orders:a}1", "shop@orders:{shop@orders:b}2"}));
}

TEST_CASE("dispatcher: CLIENT REPLY OFF and SKIP suppress replies") {
  Client c;
  REQUIRE(c.Send({"CLIENT", "REPLY", "OFF"}));
  REQUIRE(c.Send({"GET", "k"}));
  REQUIRE(c.Send({"PING"}));
  REQUIRE(c.backend.requests.size() == 1);  // still sent
  c.backend.Answer(0, Bulk("v"));
  CHECK(c.Output().empty());
  REQUIRE(c.Send({"CLIENT", "REPLY", "ON"}));
  CHECK(c.Output() == "+OK\r\n");

  // SKIP drops the next reply only, also when it arrives out of order.
  REQUIRE(c.Send({"GET", "a"}));
  REQUIRE(c.Send({"CLIENT", "REPLY", "SKIP"}));
  REQUIRE(c.Send({"GET", "b"}));
  REQUIRE(c.Send({"GET", "c"}));
  REQUIRE(c.backend.requests.size() == 4);
  c.backend.Answer(3, Bulk("C"));
  c.backend.Answer(2, Bulk("B"));
  CHECK(c.Output().empty());
  c.backend.Answer(1, Bulk("A"));
  CHECK(c.Output() == "$1\r\nA\r\n$1\r\nC\r\n");
  REQUIRE(c.Send({"PING"}));
  CHECK(c.Output() == "+PONG\r\n");
}

}  // namespace
}  // namespace keyfence::proxy
