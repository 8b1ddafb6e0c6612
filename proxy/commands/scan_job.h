// Emulations that walk the tenant's namespace with SCAN MATCH P* on the
// backend: DBSIZE (count), FLUSHDB/FLUSHALL (UNLINK every key found, only the
// tenant's), RANDOMKEY (a key of the first non-empty page). The result fills
// the client's reply slot. Owned by its session (CommandContext::Adopt); worker-local.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend.h"
#include "proxy/commands/context.h"

namespace keyfence::proxy {

class ScanJob : public ReplySink, public AsyncOp {
 public:
  enum class Kind : uint8_t { kDbSize, kFlush, kRandomKey };
  // Walks `nodes` (the standalone server, or every master) one after another.
  ScanJob(CommandContext& ctx, std::vector<config::Endpoint> nodes, Kind kind,
          uint64_t seq, std::string prefix, int proto);
  ~ScanJob() override;
  void Start();
  void OnReply(uint64_t tag, std::string_view frame) override;

 private:
  void SendScan();
  void Finish(std::string_view reply);
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
  int64_t unlinks_in_flight_ = 0;
  bool scan_done_ = false;
  bool finished_ = false;
  bool next_node_ = false;
};

}  // namespace keyfence::proxy
