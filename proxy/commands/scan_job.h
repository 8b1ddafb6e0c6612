// Emulations that walk the tenant's namespace with SCAN MATCH P* on the
// backend: DBSIZE (count), FLUSHDB/FLUSHALL (UNLINK every key found, only the
// tenant's), RANDOMKEY (a key of the first non-empty page), and the keyspace
// figures of INFO (count, PTTL and MEMORY USAGE of the first kInspectKeys
// keys, extrapolated past them). The result fills the client's reply slot. Owned by its session (CommandContext::Adopt); worker-local.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend.h"
#include "proxy/base/tenant_state.h"
#include "proxy/commands/context.h"

namespace keyfence::proxy {

class ScanJob : public ReplySink, public AsyncOp {
 public:
  enum class Kind : uint8_t { kDbSize, kFlush, kRandomKey, kKeyspace };
  // kKeyspace: renders the reply from the figures (null: the walk failed).
  using KeyspaceDone = std::function<std::string(const KeyspaceFigures*)>;
  static constexpr int64_t kInspectKeys = 20000;
  // Walks `nodes` (the standalone server, or every master) one after another.
  ScanJob(CommandContext& ctx, std::vector<config::Endpoint> nodes, Kind kind,
          uint64_t seq, std::string prefix, int proto);
  ~ScanJob() override;
  void Start();
  void OnKeyspaceDone(KeyspaceDone done) { keyspace_done_ = std::move(done); }
  void OnReply(uint64_t tag, std::string_view frame) override;

 private:
  void SendScan();
  void Finish(std::string_view reply);
  void Inspect(const std::vector<std::string_view>& keys);
  void FinishKeyspace(bool ok);
  BackendConn& conn();
  CommandContext& ctx_;
  std::vector<config::Endpoint> nodes_;
  size_t node_ = 0;
  Kind kind_;
  uint64_t seq_;
  std::string prefix_;
  int proto_;
  std::string cursor_ = "0";
  int64_t count_ = 0;
  int64_t unlinks_in_flight_ = 0;  // UNLINK, or PTTL + MEMORY USAGE (kKeyspace)
  struct NodeFigures {
    int64_t keys = 0, inspected = 0, memory = 0, expires = 0, ttl_sum_ms = 0;
  };
  std::vector<NodeFigures> per_node_;  // kKeyspace, by master
  bool inspect_failed_ = false;
  KeyspaceDone keyspace_done_;
  bool scan_done_ = false;
  bool finished_ = false;
  bool next_node_ = false;
};

}  // namespace keyfence::proxy
