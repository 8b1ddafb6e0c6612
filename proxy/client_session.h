// One client connection: reads pipelined requests, authenticates, applies the
// tenant's policy, rewrites each command into the namespace and routes it,
// and writes replies back in request order.
//
// Reply ordering: every request that produces a reply takes a Slot in a ring,
// in arrival order. A reply for the head slot is written straight to the
// output buffer; a reply for a later slot waits in its slot.
// Routing: the shared multiplexed connection by default; a dedicated backend
// connection while a transaction, WATCH, a blocking command or a subscription
// is active. Switching between them waits until nothing is in flight.
// Worker-local. Owned by its Worker; destroyed when closed (its pending
// backend entries are Forget()-ed first).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>

#include "config/config.h"
#include "protocol/command_table.h"
#include "protocol/request_parser.h"
#include "proxy/backend_conn.h"
#include "proxy/buffer.h"
#include "proxy/metrics.h"
#include "proxy/read_mux.h"
#include "proxy/ring.h"
#include "proxy/tenant_state.h"
#include "tenancy/command_rules.h"
#include "tenancy/key_finder.h"

namespace keyfence::proxy {

class Worker;
class ScanJob;
class FanOut;

class ClientSession : public ReplySink, public UnsolicitedSink, public Readable {
 public:
  ClientSession(Worker& worker, boost::asio::ip::tcp::socket socket, config::Listener listener,
                uint64_t id);
  ~ClientSession() override;

  void Start();
  // Writes the pending output (called once per loop turn by Worker::FlushDirty).
  void Flush();
  // Closes with an optional final error reply.
  void CloseWithError(std::string_view error);
  void Close();

  // ReplySink: a backend reply for slot `tag` (its sequence number).
  void OnReply(uint64_t tag, std::string_view frame) override;
  // UnsolicitedSink: pub/sub frames on the subscriber connection.
  void OnUnsolicited(std::string_view frame) override;
  void OnBackendClosed() override;
  // Readable: the socket has data (level-triggered, from the worker's ReadMux).
  void OnReadable() override;

  // For emulations (ScanJob): complete slot `seq` with a finished reply.
  void CompleteSlot(uint64_t seq, std::string_view reply);
  void JobDone(ScanJob* job);
  void FanOutDone(FanOut* f);

  uint64_t id() const { return id_; }
  // Requests whose replies are still owed (a blocked BLPOP counts).
  bool has_inflight() const { return !slots_.empty(); }
  int proto() const { return proto_; }
  bool closed() const { return closed_; }
  const config::Tenant* tenant() const { return tenant_; }
  BackendConn* RouteShared();  // the connection this session's plain commands use now

  bool dirty_ = false;  // owned by Worker::FlushDirty

 private:
  struct Slot {
    uint64_t seq = 0;
    bool ready = false;
    bool discard = false;  // CLIENT REPLY OFF/SKIP
    tenancy::ReplyRule rule = tenancy::ReplyRule::kNone;
    std::string pattern;  // KEYS/SCAN/PUBSUB CHANNELS client pattern
    std::string data;     // the finished reply when it is not at the head
    bool replace = false;  // answer `pattern` as an error instead (EXECABORT)
    std::vector<std::pair<tenancy::ReplyRule, std::string>> exec_rules;  // EXEC
    uint64_t start_ns = 0;
    uint16_t cmd_id = 0;  // for the big-reply log line
  };
  enum class Mode : uint8_t { kNormal, kDedicated, kPubSub };

  void StartRead();
  void ReadReady();
  // Parses and handles complete requests; stops early when paused.
  void ProcessInput();
  // Handles one request in args_. Returns false to stop processing (pause).
  bool Dispatch();
  bool DispatchForward(const protocol::CommandInfo& cmd, const tenancy::Rule& rule);
  bool HandleLocal(const protocol::CommandInfo& cmd, const tenancy::Rule& rule);
  bool Authenticated() const { return tenant_ != nullptr; }
  bool SetTenant(const config::Tenant* t);
  void LeaveTenant();
  // Rate limits: true to go on; false to pause (delay) — a reply was queued if rejected.
  enum class Admit : uint8_t { kGo, kRejected, kWait };
  Admit AdmitRequest();
  void Reject(RejectReason reason, std::string_view error);

  // Replies produced locally, in order.
  std::string& LocalReply();  // buffer to append one local reply to; then FinishLocal()
  void FinishLocal();
  void ReplyError(std::string_view e);
  void ReplySimple(std::string_view s);
  void ReplyInteger(int64_t v);
  void ReplyBulk(std::string_view s);
  void ReplyNull();

  // A slot for a reply that will come later.
  Slot& NewSlot(tenancy::ReplyRule rule);
  void DeliverReady();
  void WriteReply(Slot& slot, std::string_view frame, std::string& out);
  bool AttachDedicated();
  void MaybeReleaseDedicated();
  size_t inflight() const { return slots_.size(); }

  // Local command handlers (local_commands.cc).
  bool LocalHello();
  bool LocalAuth();
  bool LocalClient(const protocol::CommandInfo& cmd, tenancy::Local what);
  void LocalInfo();
  void LocalConfigGet();
  void LocalCommandGetKeys();
  void LocalCluster(const protocol::CommandInfo& cmd);
  bool LocalKeysScan(tenancy::Local what);
  bool LocalPubsubChannels();
  bool StartScanJob(tenancy::Local what);
  // Sends a command built by keyfence (emulations) with the reply rule given.
  void SendBuilt(BackendConn& conn, std::string_view bytes, tenancy::ReplyRule rule,
                 std::string_view pattern);

 public:
  // Picks up a new config between requests: a removed tenant's connection is
  // closed with an error reply.
  void RefreshSnapshot();

 private:
  void Resume();
  void TrackSubscriptions(std::string_view frame);

  // Cluster mode (cluster_dispatch.cc).
  int SlotOfRefs(bool* cross) const;
  bool DispatchCluster(const protocol::CommandInfo& cmd, const tenancy::Rule& rule,
                       tenancy::Route route);
  bool ClusterTransaction(std::string_view name, int slot, bool cross, const tenancy::Rule& rule);
  bool ClusterExec();
  void SplitBySlot(const protocol::CommandInfo& cmd, int step);
  bool ClusterKeys(std::string_view pattern);
  bool ClusterScan(uint64_t cursor, const std::vector<std::string>& backend_args,
                   std::string_view pattern);
  void StartScanWalk(const std::vector<config::Endpoint>& nodes, size_t node, uint64_t cursor,
                     const std::vector<std::string>& backend_args, std::string_view pattern);
  std::string ClientInfoLine() const;
  void HandleClientExtension();  // CLIENT SETINFO / NO-TOUCH (Redis 7.2)
  void ApplyLimits();
  void NoteBig(bool reply, size_t bytes, std::string_view what);

  Worker& worker_;
  boost::asio::ip::tcp::socket socket_;
  config::Listener listener_;
  uint64_t id_;
  std::shared_ptr<bool> alive_;
  Buffer in_;
  std::string out_;
  std::string writing_;
  bool write_in_flight_ = false;
  bool reading_enabled_ = false;
  bool read_paused_ = false;
  bool processing_ = false;
  bool close_after_flush_ = false;
  bool closed_ = false;
  protocol::RequestParser parser_;
  std::vector<std::string_view> args_;
  tenancy::NameRefs refs_;
  Ring<Slot> slots_;
  uint64_t next_seq_ = 1;
  uint64_t head_seq_ = 1;  // the seq of slots_.front() when not empty

  // Connection state.
  config::SnapshotPtr snapshot_;
  uint64_t snapshot_version_ = 0;
  const config::Tenant* tenant_ = nullptr;
  std::string tenant_name_;
  TenantCounters* counters_ = nullptr;
  TenantLocal* local_ = nullptr;  // this worker's state of the tenant
  bool counted_connection_ = false;  // in local_->shared->connections
  uint64_t delay_deadline_ns_ = 0;   // on_limit: delay, while waiting for a token
  std::unique_ptr<boost::asio::steady_timer> delay_timer_;
  int proto_ = 2;
  std::string name_;
  std::string lib_name_, lib_ver_;
  std::string remote_ip_;
  // AUTH throttling: false (and a reply queued) if this address is throttled.
  bool AuthAllowed();
  bool SwitchingTenantWithState(const config::Tenant* t);
  void AuthFailedHere();
  enum class ReplyMode : uint8_t { kOn, kOff, kSkip } reply_mode_ = ReplyMode::kOn;
  uint64_t created_ns_;
  uint64_t last_cmd_ns_;
  uint64_t commands_ = 0;
  uint16_t cur_cmd_id_ = 0;

  Mode mode_ = Mode::kNormal;
  std::unique_ptr<BackendConn> dedicated_;
  bool in_multi_ = false;
  bool multi_error_ = false;
  bool watching_ = false;
  bool blocking_ = false;
  std::vector<std::pair<tenancy::ReplyRule, std::string>> multi_rules_;
  int64_t classic_subs_ = 0;
  int64_t shard_subs_ = 0;
  bool discard_this_ = false;  // CLIENT REPLY OFF/SKIP applies to this request
  std::vector<std::unique_ptr<ScanJob>> jobs_;
  std::vector<std::unique_ptr<FanOut>> fanouts_;
  std::string scratch_;            // cluster: a rewritten request before routing
  bool cmulti_ = false;            // cluster: MULTI answered here, commands queued
  std::string cmulti_bytes_;
  size_t cmulti_count_ = 0;
  int cmulti_slot_ = -1;
  int dedicated_slot_ = -1;
  uint16_t prefix_crc_ = 0;        // CRC16 of the tenant prefix (slot computation)
};

}  // namespace keyfence::proxy
