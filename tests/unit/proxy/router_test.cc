// The cluster Router (proxy/backend/router.h) against scripted fake Redis
// nodes on 127.0.0.1: real BackendConns, a fake ClusterView (slot table,
// connections per master) and a fake BackendHost. Every wait has a deadline.
#include "proxy/backend/router.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "../config/config_test_util.h"
#include "fakes.h"

namespace keyfence::proxy {
namespace {

using testing::Bulk;
using testing::FakeHost;
using testing::FakeRedis;
using testing::RecordingSink;
using testing::Resp;
using testing::RunFor;
using testing::RunUntil;
using Lines = std::vector<std::string>;
using Replies = std::vector<std::pair<uint64_t, std::string>>;

constexpr int kSlot = 1234;

// The slot table and connections of a ClusterBackend, scripted.
class FakeView final : public ClusterView {
 public:
  explicit FakeView(BackendHost& host) : host_(host) {}

  int MasterForSlot(int slot) const override {
    if (masters.empty()) return -1;
    auto it = owner.find(slot);
    return it == owner.end() ? 0 : it->second;
  }
  BackendConn& MasterConn(int master, int proto, BackendHint) override {
    auto& c = conns_[{master, proto}];
    if (!c) c = std::make_unique<BackendConn>(host_, masters.at(master), proto, false);
    return *c;
  }
  BackendConn* ReplicaConn(int, int, BackendHint) override { return nullptr; }
  int MasterIndex(const config::Endpoint& ep) override {
    asked.push_back(ep.ToString());
    for (size_t i = 0; i < masters.size(); ++i) {
      if (masters[i].host == ep.host && masters[i].port == ep.port) return static_cast<int>(i);
    }
    return -1;
  }
  void NoteMoved(int slot, int master) override {
    moved.emplace_back(slot, master);
    owner[slot] = master;
  }

  std::vector<config::Endpoint> masters;
  std::map<int, int> owner;                // slot -> master (default: master 0)
  std::vector<std::string> asked;          // MasterIndex() calls
  std::vector<std::pair<int, int>> moved;  // NoteMoved() calls

 private:
  BackendHost& host_;
  std::map<std::pair<int, int>, std::unique_ptr<BackendConn>> conns_;
};

// Two masters a (index 0) and b (index 1), and c, a node outside the topology.
struct Cluster {
  explicit Cluster(std::string_view yaml = config::testing::kBase)
      : host(config::testing::MustLoad(yaml)) {
    view.masters = {a.endpoint(), b.endpoint()};
  }

  FakeHost host;
  FakeRedis a{host.loop().io()};
  FakeRedis b{host.loop().io()};
  FakeRedis c{host.loop().io()};
  FakeView view{host};
  Router router{host, view};
  RecordingSink sink;

  void Get(uint64_t tag = 42, bool follow = true, int slot = kSlot) {
    router.Send(Resp({"GET", "k"}), slot, &sink, tag, 2, follow);
    host.loop().FlushDirty();
  }
  bool WaitReplies(size_t n = 1, std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
    return RunUntil(
        host.loop(), [&] { return sink.replies.size() >= n; }, timeout);
  }
  uint64_t redirects(RedirectType t) { return host.metrics().redirects(t); }
};

std::string Moved(const FakeRedis& to, int slot = kSlot) {
  return "-MOVED " + std::to_string(slot) + " " + to.address() + "\r\n";
}

TEST_CASE("router: the reply reaches the sink with its tag") {
  Cluster k;
  k.a.Queue(Bulk("v"));
  k.a.Queue(Bulk("w"));
  k.Get(42);
  k.Get(43);
  REQUIRE(k.WaitReplies(2));
  CHECK(k.sink.replies == Replies{{42, "$1\r\nv\r\n"}, {43, "$1\r\nw\r\n"}});
  CHECK(k.a.received(0) == Resp({"GET", "k"}) + Resp({"GET", "k"}));
  CHECK(k.a.connections() == 1);
  CHECK(k.b.connections() == 0);
  CHECK(k.view.moved.empty());
  CHECK(k.host.refreshes == 0);
}

TEST_CASE("router: MOVED to a known node resends there and patches the slot table") {
  Cluster k;
  k.a.Queue(Moved(k.b));
  k.b.Queue(Bulk("v"));
  k.Get();
  REQUIRE(k.WaitReplies());
  CHECK(k.sink.replies == Replies{{42, "$1\r\nv\r\n"}});
  CHECK(k.a.Lines() == Lines{"GET k"});
  CHECK(k.b.Lines() == Lines{"GET k"});
  CHECK(k.view.moved == std::vector<std::pair<int, int>>{{kSlot, 1}});
  CHECK(k.view.asked == Lines{k.b.address()});
  CHECK(k.host.refreshes >= 1);
  CHECK(k.redirects(RedirectType::kMoved) == 1);
  // The next request for the slot goes to its new owner at once.
  k.b.Queue(Bulk("w"));
  k.Get(43);
  REQUIRE(k.WaitReplies(2));
  CHECK(k.sink.replies.back() == std::pair<uint64_t, std::string>{43, "$1\r\nw\r\n"});
  CHECK(k.a.Lines() == Lines{"GET k"});
  CHECK(k.b.Lines() == Lines{"GET k", "GET k"});
}

TEST_CASE("router: ASK sends ASKING then the request to the importing node, table untouched") {
  Cluster k;
  k.a.Queue("-ASK " + std::to_string(kSlot) + " " + k.b.address() + "\r\n");
  k.b.set_handler([](const FakeRedis::Request& r) {
    return r.args[0] == "ASKING" ? std::string("+OK\r\n") : Bulk("v");
  });
  k.Get();
  REQUIRE(k.WaitReplies());
  RunFor(k.host.loop(), std::chrono::milliseconds(20));  // ASKING's +OK is not delivered
  CHECK(k.sink.replies == Replies{{42, "$1\r\nv\r\n"}});
  CHECK(k.b.Lines() == Lines{"ASKING", "GET k"});
  CHECK(k.b.received(0) == Resp({"ASKING"}) + Resp({"GET", "k"}));  // one connection
  CHECK(k.view.moved.empty());
  CHECK(k.redirects(RedirectType::kAsk) == 1);
  CHECK(k.redirects(RedirectType::kMoved) == 0);
  // The slot still belongs to a.
  k.a.Queue(Bulk("w"));
  k.Get(43);
  REQUIRE(k.WaitReplies(2));
  CHECK(k.sink.replies.back() == std::pair<uint64_t, std::string>{43, "$1\r\nw\r\n"});
  CHECK(k.a.Lines() == Lines{"GET k", "GET k"});
  CHECK(k.b.Lines() == Lines{"ASKING", "GET k"});
}

TEST_CASE("router: TRYAGAIN from the importing node retries there, with ASKING again") {
  Cluster k;
  k.a.Queue("-ASK " + std::to_string(kSlot) + " " + k.b.address() + "\r\n");
  auto gets = std::make_shared<int>(0);
  k.b.set_handler([gets](const FakeRedis::Request& r) {
    if (r.args[0] == "ASKING") return std::string("+OK\r\n");
    return ++*gets == 1 ? std::string("-TRYAGAIN Multiple keys request during rehashing\r\n")
                        : Bulk("v");
  });
  k.Get();
  REQUIRE(k.WaitReplies());
  CHECK(k.sink.replies == Replies{{42, "$1\r\nv\r\n"}});
  CHECK(k.a.Lines() == Lines{"GET k"});
  CHECK(k.b.Lines() == Lines{"ASKING", "GET k", "ASKING", "GET k"});
  CHECK(k.view.moved.empty());
}

TEST_CASE("router: a redirect to a node outside the topology is not followed") {
  Cluster k;
  k.a.Queue(Moved(k.c));
  k.a.Queue(Bulk("v"));
  const auto start = std::chrono::steady_clock::now();
  k.Get();
  REQUIRE(k.WaitReplies());
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(k.sink.replies == Replies{{42, "$1\r\nv\r\n"}});
  CHECK(k.c.connections() == 0);
  CHECK(k.view.asked == Lines{k.c.address()});
  CHECK(k.view.moved.empty());
  CHECK(k.host.refreshes >= 1);
  // Retried on the slot's owner after a refresh was asked for (50 ms later).
  CHECK(k.a.Lines() == Lines{"GET k", "GET k"});
  CHECK(waited >= std::chrono::milliseconds(45));
}

TEST_CASE("router: a script's MOVED error is passed through (follow_redirects=false)") {
  Cluster k;
  k.a.Queue(Moved(k.b));
  k.Get(42, /*follow=*/false);
  REQUIRE(k.WaitReplies());
  CHECK(k.sink.replies == Replies{{42, Moved(k.b)}});
  CHECK(k.b.connections() == 0);
  CHECK(k.view.asked.empty());
  CHECK(k.view.moved.empty());
  CHECK(k.host.refreshes == 0);
  CHECK(k.redirects(RedirectType::kMoved) == 0);
}

TEST_CASE("router: TRYAGAIN and CLUSTERDOWN are retried until the node answers") {
  Cluster k;
  k.a.Queue("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
  k.a.Queue("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
  k.a.Queue("-CLUSTERDOWN The cluster is down\r\n");
  k.a.Queue(Bulk("v"));
  k.Get();
  REQUIRE(k.WaitReplies());
  CHECK(k.sink.replies == Replies{{42, "$1\r\nv\r\n"}});
  CHECK(k.a.Lines() == Lines{"GET k", "GET k", "GET k", "GET k"});
  CHECK(k.host.refreshes >= 1);  // CLUSTERDOWN asks for a new topology
}

TEST_CASE("router: more than kMaxRedirects MOVED gives the too-many error") {
  Cluster k;
  k.a.set_handler([&](const FakeRedis::Request&) { return Moved(k.b); });
  k.b.set_handler([&](const FakeRedis::Request&) { return Moved(k.a); });
  k.Get();
  REQUIRE(k.WaitReplies());
  CHECK(k.sink.replies == Replies{{42, "-ERR keyfence: too many cluster redirects\r\n"}});
  CHECK(k.a.requests().size() + k.b.requests().size() == 1 + Router::kMaxRedirects);
  CHECK(k.view.moved.size() == Router::kMaxRedirects);
}

TEST_CASE("router: endless TRYAGAIN fails once backend.retry_budget_ms is spent") {
  Cluster k(config::testing::WithBase("  retry_budget_ms: 300\n"));
  REQUIRE(k.host.settings().retry_budget_ms == 300);
  k.a.set_handler([](const FakeRedis::Request&) { return std::string("-TRYAGAIN later\r\n"); });
  const auto start = std::chrono::steady_clock::now();
  k.Get();
  REQUIRE(k.WaitReplies(1, std::chrono::seconds(3)));
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(k.sink.replies ==
        Replies{{42, "-ERR keyfence: too many cluster redirects or retries\r\n"}});
  CHECK(waited >= std::chrono::milliseconds(290));
  CHECK(waited < std::chrono::seconds(2));
  // Backoff 20, 40, 80, 160, 200 ms...: a handful of sends, not a busy loop.
  const size_t sent = k.a.requests().size();
  CHECK(sent >= 3);
  CHECK(sent <= 7);
  RunFor(k.host.loop(), std::chrono::milliseconds(250));  // and nothing after the error
  CHECK(k.a.requests().size() == sent);
  CHECK(k.sink.replies.size() == 1);
}

TEST_CASE("router: a slot without a master waits for the topology, then is sent") {
  Cluster k;
  k.view.owner[kSlot] = -1;  // failover in progress
  k.a.Queue(Bulk("v"));
  k.Get();
  CHECK(k.host.refreshes == 1);
  RunFor(k.host.loop(), std::chrono::milliseconds(20));
  CHECK(k.a.connections() == 0);
  k.view.owner[kSlot] = 0;  // the new topology
  REQUIRE(k.WaitReplies());
  CHECK(k.sink.replies == Replies{{42, "$1\r\nv\r\n"}});
  CHECK(k.a.Lines() == Lines{"GET k"});
}

TEST_CASE("router: a forgotten sink gets no reply") {
  Cluster k;
  k.a.Queue(Bulk("v"));
  k.Get();
  k.router.Forget(&k.sink);
  REQUIRE(RunUntil(k.host.loop(), [&] { return k.a.requests().size() == 1; }));
  RunFor(k.host.loop(), std::chrono::milliseconds(30));
  CHECK(k.sink.replies.empty());
}

TEST_CASE("router: a node that is down answers with the backend error at once") {
  Cluster k;
  k.view.masters = {{"127.0.0.1", 1}};  // nothing listens on port 1
  k.Get();
  REQUIRE(k.WaitReplies());
  REQUIRE(k.sink.replies.size() == 1);
  CHECK(k.sink.replies[0].first == 42);
  CHECK(k.sink.replies[0].second.starts_with("-ERR keyfence: backend unavailable ("));
  CHECK(k.sink.replies[0].second.find("127.0.0.1") == std::string::npos);
  CHECK(k.sink.replies[0].second.ends_with(")\r\n"));
}

TEST_CASE("router: ParseRedirect") {
  int slot = -1;
  config::Endpoint ep;
  REQUIRE(ParseRedirect("MOVED 3999 127.0.0.1:6381", &slot, &ep));
  CHECK(slot == 3999);
  CHECK(ep.host == "127.0.0.1");
  CHECK(ep.port == 6381);
  REQUIRE(ParseRedirect("ASK 0 [::1]:7000\r\n", &slot, &ep));
  CHECK(slot == 0);
  CHECK(ep.host == "::1");
  CHECK(ep.port == 7000);
  CHECK_FALSE(ParseRedirect("MOVED 16384 127.0.0.1:6381", &slot, &ep));
  CHECK_FALSE(ParseRedirect("MOVED x 127.0.0.1:6381", &slot, &ep));
  CHECK_FALSE(ParseRedirect("MOVED 1 127.0.0.1:0", &slot, &ep));
  CHECK_FALSE(ParseRedirect("MOVED 1 127.0.0.1", &slot, &ep));
  CHECK_FALSE(ParseRedirect("MOVED 1", &slot, &ep));
}

}  // namespace
}  // namespace keyfence::proxy
