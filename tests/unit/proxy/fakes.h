// Fakes shared by the request-path unit tests (dispatcher_test, router_test):
// a client stream that captures what the proxy writes, a worker host
// (SessionHost + BackendHost) over a Loop the test owns, a Backend that
// records every request and lets the test answer it, and a scripted Redis
// server on 127.0.0.1 (port 0) that runs on the test's io_context.
// Everything is single-threaded: the test drives the loop with RunUntil().
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "protocol/command_table.h"
#include "protocol/request_parser.h"
#include "proxy/backend/backend.h"
#include "proxy/backend/backend_conn.h"
#include "proxy/base/metrics.h"
#include "proxy/base/tenant_state.h"
#include "proxy/net/client_stream.h"
#include "proxy/net/loop.h"
#include "proxy/commands/tracking.h"
#include "proxy/session/session_host.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// --- RESP helpers -------------------------------------------------------------------------

inline std::string Resp(std::initializer_list<std::string_view> args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) {
    s += "$" + std::to_string(a.size()) + "\r\n";
    s.append(a);
    s += "\r\n";
  }
  return s;
}

inline std::string Bulk(std::string_view v) {
  return "$" + std::to_string(v.size()) + "\r\n" + std::string(v) + "\r\n";
}

// Runs the loop until pred() holds or `timeout` passed; returns pred().
template <typename Pred>
bool RunUntil(Loop& loop, Pred pred, std::chrono::milliseconds timeout = 3000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    loop.io().restart();
    loop.io().run_one_for(5ms);
  }
  return true;
}

// Runs the loop for `d` (to see that nothing more happens).
inline void RunFor(Loop& loop, std::chrono::milliseconds d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    loop.io().restart();
    loop.io().run_one_for(5ms);
  }
}

// --- Client stream ------------------------------------------------------------------------

// What the proxy wrote to the client, and whether it closed the stream.
struct ClientSide {
  std::string written;
  size_t writes = 0;
  bool closed = false;
  // Everything written since the last Take().
  std::string Take() { return std::exchange(written, {}); }
};

// One end of a socketpair (so the ReadMux accepts native_handle()); writes
// are captured and complete at once.
class FakeStream final : public ClientStream {
 public:
  explicit FakeStream(ClientSide* side) : side_(side) {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_) == 0);
  }
  ~FakeStream() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int native_handle() override { return fds_[0]; }
  size_t ReadSome(char*, size_t, boost::system::error_code& ec) override {
    ec = asio::error::would_block;  // the tests call Session::OnRequest directly
    return 0;
  }
  void AsyncWrite(const char* data, size_t n, WriteDone* done) override {
    side_->written.append(data, n);
    ++side_->writes;
    done->OnWritten({});
  }
  void Close() override { side_->closed = true; }
  PeerInfo Peer() override { return {"127.0.0.1", 50000, "127.0.0.1", 6380}; }

 private:
  ClientSide* side_;
  int fds_[2] = {-1, -1};
};

// --- Worker host --------------------------------------------------------------------------

inline std::vector<std::string> CommandNames() {
  std::vector<std::string> names;
  const auto& table = protocol::CommandTable::Get();
  for (size_t i = 0; i < table.size(); ++i) {
    names.emplace_back(table.ById(static_cast<uint16_t>(i)).name);
  }
  return names;
}

// The worker as sessions and backend connections see it (like proxy/worker.cc).
class FakeHost final : public SessionHost, public BackendHost {
 public:
  explicit FakeHost(config::SnapshotPtr snap)
      : snap_(std::move(snap)), all_metrics_(CommandNames()), metrics_(all_metrics_.AddWorker()) {
    registry_.Apply(*snap_, Loop::NowNs());
  }
  void set_backend(Backend* b) { backend_ = b; }

  Loop& loop() override { return loop_; }
  const config::SnapshotPtr& snapshot() const override { return snap_; }
  uint64_t snapshot_version() const override { return snap_->version; }
  Backend& backend() override { return *backend_; }
  TenantLocal& Tenant(const std::string& name) override {
    auto& p = tenants_[name];
    if (!p) {
      p = std::make_unique<TenantLocal>();
      p->shared = &registry_.Get(name);
      p->counters = &metrics_.ForTenant(name);
      p->ops.set_shared(&p->shared->ops);
      p->bytes.set_shared(&p->shared->bytes);
    }
    return *p;
  }
  TenantCounters& Unauthenticated() override { return metrics_.ForTenant("unauthenticated"); }
  uint64_t AuthWait(const std::string&, uint64_t) override { return 0; }
  void AuthFailed(const std::string&, uint64_t) override { ++auth_failures; }
  size_t sessions() const override { return 1; }
  bool TryAddUnauthenticated(const std::string&, uint32_t, uint64_t) override { return true; }
  void RemoveUnauthenticated(const std::string&) override {}
  const BackendUser* BackendUserFor(std::string_view) override { return nullptr; }
  const MetricsRegistry& registry() const override { return all_metrics_; }
  // One worker; the sessions a test registers in `live`.
  void AskAllWorkers(SessionVisit visit,
                     std::function<void(std::vector<std::string>)> done) override {
    asio::post(loop_.io(), [this, visit = std::move(visit), done = std::move(done)] {
      done({visit(live)});
    });
  }
  Session* FindSession(uint64_t) override { return live.empty() ? nullptr : live.front(); }
  void PostToSession(uint64_t id, std::function<void(Session*)> fn) override {
    fn(FindSession(id));
  }
  TrackingHub& tracking_hub() override { return tracking_; }
  std::vector<Session*> live;  // (unit tests have one session)
  void SessionClosed(Session*) override { ++sessions_closed; }

  WorkerMetrics& metrics() override { return metrics_; }
  const config::Backend& settings() const override { return snap_->backend; }
  void RequestTopologyRefresh() override { ++refreshes; }

  TenantCounters& counters(std::string_view tenant) { return metrics_.ForTenant(tenant); }

  int auth_failures = 0;
  int sessions_closed = 0;
  int refreshes = 0;

 private:
  Loop loop_;
  TrackingHub tracking_{loop_};
  config::SnapshotPtr snap_;
  TenantRegistry registry_;
  MetricsRegistry all_metrics_;
  WorkerMetrics& metrics_;
  Backend* backend_ = nullptr;
  absl::flat_hash_map<std::string, std::unique_ptr<TenantLocal>> tenants_;
};

// --- Backend ------------------------------------------------------------------------------

// Records every request (Prepare/Commit or Send) and lets the test answer it.
// Standalone-like (every request kAnySlot) or cluster-like (the slot of the
// rewritten keys, as ClusterBackend computes it).
class FakeBackend final : public Backend {
 public:
  struct Request {
    std::string bytes;
    int slot = kAnySlot;
    int proto = 2;
    uint64_t hint = 0;
    ReplySink* sink = nullptr;  // null once answered (or forgotten)
    uint64_t tag = 0;
    SendFlags flags;
    bool forgotten = false;
  };

  FakeBackend(BackendHost& host, bool cluster) : host_(host), cluster_(cluster) {}

  int SlotOf(uint16_t prefix_crc, std::span<const std::string_view> args,
             const tenancy::NameRefs& refs, bool* cross) const override {
    *cross = false;
    if (!cluster_) return kAnySlot;
    int slot = kAnySlot;
    for (const tenancy::NameRef& r : refs) {
      if (r.kind != tenancy::RefKind::kKey && r.kind != tenancy::RefKind::kShardChannel) continue;
      int s = tenancy::BackendKeySlot(prefix_crc, args[r.pos]);
      if (slot == kAnySlot) {
        slot = s;
      } else if (s != slot) {
        *cross = true;
      }
    }
    return slot;
  }
  std::string& Prepare(int slot, int proto, BackendHint hint) override {
    CHECK_FALSE(preparing_);  // one Prepare()/Commit() pair at a time
    preparing_ = true;
    prepared_ = Request{};
    prepared_.slot = slot;
    prepared_.proto = proto;
    prepared_.hint = hint.spread;
    return prepared_.bytes;
  }
  void Commit(ReplySink* sink, uint64_t tag, SendFlags flags) override {
    CHECK(preparing_);
    preparing_ = false;
    prepared_.sink = sink;
    prepared_.tag = tag;
    prepared_.flags = flags;
    requests.push_back(std::move(prepared_));
  }
  // Answers request i as the server would.
  void Answer(size_t i, std::string_view frame) {
    REQUIRE(i < requests.size());
    Request& r = requests[i];
    REQUIRE(r.sink != nullptr);
    ReplySink* sink = std::exchange(r.sink, nullptr);
    sink->OnReply(r.tag, frame);
  }

  std::unique_ptr<BackendConn> Dedicated(int slot, int proto, std::string* error, const BackendUser*) override {
    dedicated_slots.push_back(slot);
    if (!dedicated_node) {
      *error = dedicated_error;
      return nullptr;
    }
    return std::make_unique<BackendConn>(host_, *dedicated_node, proto, true);
  }
  void ReturnDedicated(std::unique_ptr<BackendConn> conn) override {
    returned.push_back(std::move(conn));
  }
  const std::vector<config::Endpoint>& Masters() override { return masters; }
  BackendConn& NodeConn(const config::Endpoint& node, int proto, BackendHint) override {
    node_conns.push_back(std::make_unique<BackendConn>(host_, node, proto, false));
    return *node_conns.back();
  }
  void Forget(ReplySink* sink) override {
    for (Request& r : requests) {
      if (r.sink == sink) {
        r.sink = nullptr;
        r.forgotten = true;
      }
    }
  }
  void CheckTimeouts(uint64_t) override {}
  void Reconfigure() override {}

  std::vector<Request> requests;
  // Dedicated(): connections to this node, or null with dedicated_error.
  std::optional<config::Endpoint> dedicated_node;
  std::string dedicated_error = "CLUSTERDOWN keyfence: the cluster topology is not known yet";
  std::vector<int> dedicated_slots;  // the slot of every Dedicated() call
  std::vector<std::unique_ptr<BackendConn>> returned;
  std::vector<config::Endpoint> masters;
  std::vector<std::unique_ptr<BackendConn>> node_conns;

 private:
  BackendHost& host_;
  bool cluster_;
  bool preparing_ = false;
  Request prepared_;
};

// --- Scripted Redis server ----------------------------------------------------------------

// Listens on 127.0.0.1 (an ephemeral port) on the test's io_context, frames
// RESP requests and answers each one: with handler(request) if set, else the
// next queued reply, else "+OK". An empty answer sends nothing.
class FakeRedis {
 public:
  struct Request {
    size_t conn;  // index of the connection, in accept order
    std::vector<std::string> args;
  };
  using Handler = std::function<std::string(const Request&)>;

  explicit FakeRedis(asio::io_context& io)
      : io_(io),
        acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        alive_(std::make_shared<bool>(true)) {
    Accept();
  }
  ~FakeRedis() {
    *alive_ = false;
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& c : conns_) c->socket.close(ec);
  }
  FakeRedis(const FakeRedis&) = delete;
  FakeRedis& operator=(const FakeRedis&) = delete;

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  config::Endpoint endpoint() const { return {"127.0.0.1", port()}; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port()); }

  void Queue(std::string reply) { queued_.push_back(std::move(reply)); }
  void set_handler(Handler h) { handler_ = std::move(h); }

  const std::vector<Request>& requests() const { return requests_; }
  size_t connections() const { return conns_.size(); }
  // Every byte received on connection i.
  const std::string& received(size_t i) const { return conns_.at(i)->raw; }
  // The requests as "ARG ARG ..." lines (for readable expectations).
  std::vector<std::string> Lines() const {
    std::vector<std::string> out;
    for (const Request& r : requests_) {
      std::string l;
      for (const std::string& a : r.args) l += (l.empty() ? "" : " ") + a;
      out.push_back(l);
    }
    return out;
  }

 private:
  struct Conn {
    explicit Conn(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    std::string in, raw, out, writing;
    char buf[4096];
    bool write_in_flight = false;
    protocol::RequestParser parser;
  };

  void Accept() {
    auto conn = std::make_shared<std::unique_ptr<Conn>>(std::make_unique<Conn>(io_));
    auto alive = alive_;
    acceptor_.async_accept((*conn)->socket, [this, alive, conn](boost::system::error_code ec) {
      if (!*alive || ec) return;
      conns_.push_back(std::move(*conn));
      Read(conns_.size() - 1);
      Accept();
    });
  }

  void Read(size_t i) {
    Conn& c = *conns_[i];
    auto alive = alive_;
    c.socket.async_read_some(
        asio::buffer(c.buf), [this, alive, i](boost::system::error_code ec, size_t n) {
          if (!*alive || ec) return;
          Conn& c = *conns_[i];
          c.in.append(c.buf, n);
          c.raw.append(c.buf, n);
          for (;;) {
            size_t consumed = 0;
            if (c.parser.Parse(c.in.data(), c.in.size(), &consumed) != protocol::ParseStatus::kOk) {
              break;
            }
            Request r{i, {}};
            for (size_t a = 0; a < c.parser.argc(); ++a) r.args.emplace_back(c.parser.arg(a));
            c.in.erase(0, consumed);
            requests_.push_back(r);
            std::string reply;
            if (handler_) {
              reply = handler_(r);
            } else if (!queued_.empty()) {
              reply = std::move(queued_.front());
              queued_.pop_front();
            } else {
              reply = "+OK\r\n";
            }
            Write(i, reply);
          }
          Read(i);
        });
  }

  void Write(size_t i, std::string_view bytes) {
    Conn& c = *conns_[i];
    c.out.append(bytes);
    if (c.write_in_flight || c.out.empty()) return;
    c.writing.swap(c.out);
    c.out.clear();
    c.write_in_flight = true;
    auto alive = alive_;
    asio::async_write(c.socket, asio::buffer(c.writing),
                      [this, alive, i](boost::system::error_code ec, size_t) {
                        if (!*alive) return;
                        Conn& c = *conns_[i];
                        c.write_in_flight = false;
                        c.writing.clear();
                        if (!ec && !c.out.empty()) Write(i, {});
                      });
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::deque<std::string> queued_;
  Handler handler_;
  std::vector<Request> requests_;
  std::shared_ptr<bool> alive_;
};

// A ReplySink that keeps what it got.
struct RecordingSink final : ReplySink {
  std::vector<std::pair<uint64_t, std::string>> replies;
  void OnReply(uint64_t tag, std::string_view frame) override {
    replies.emplace_back(tag, std::string(frame));
  }
};

}  // namespace keyfence::proxy::testing
