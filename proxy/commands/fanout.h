// Cluster fan-out: one client command split into per-slot (or per-master)
// sub-requests sent in parallel through the Router, whose replies are merged
// into the one reply the client expects, in the client's order:
//   MGET   per-key values back in the client's key order
//   DEL/UNLINK/EXISTS/TOUCH   integers summed
//   MSET   +OK unless a part failed (then that error)
//   KEYS   the names of every master, stripped and filtered
//   SCAN   one master at a time: the cursor encodes the master's index
// Owned by its session (CommandContext::Adopt) until it finishes.
// Worker-local.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/backend/backend.h"
#include "proxy/commands/context.h"

namespace keyfence::proxy {

class FanOut : public ReplySink, public AsyncOp {
 public:
  enum class Kind : uint8_t { kMget, kSum, kMset, kKeys, kScan };
  FanOut(CommandContext& ctx, Kind kind, uint64_t seq, size_t parts, size_t keys,
         int proto);
  ~FanOut() override;

  // MGET: the client positions of the keys of part `part`, in the part's order.
  void SetPositions(size_t part, std::vector<size_t> positions);
  // KEYS/SCAN: what to strip and filter the names with.
  void SetNames(std::string prefix, std::string pattern) {
    prefix_ = std::move(prefix);
    pattern_ = std::move(pattern);
  }
  // SCAN: walks `nodes` from (node, cursor) with `args` (MATCH/COUNT/TYPE),
  // continuing past empty pages until `want` names are collected, the walk
  // ends, or kMaxScanRounds backend SCANs were made (DESIGN.md: a tenant with
  // few keys in a shared keyspace does not get pages of nothing). With more
  // than one node the client cursor encodes the node: backend << 10 | node.
  void StartScan(Backend& backend, std::vector<config::Endpoint> nodes, size_t node,
                 uint64_t cursor, std::vector<std::string> args, size_t want);
  void OnReply(uint64_t part, std::string_view frame) override;

  static constexpr uint64_t kScanNodeBits = 10;  // client cursor = backend << 10 | node
  static constexpr int kMaxScanRounds = 16;
  // Each round that leaves the page short doubles the backend COUNT, up to
  // kMaxBackendScanCount, and one client SCAN asks for at most kMaxScanWork
  // entries in all: a tenant with few keys among many gets full pages.
  static constexpr uint64_t kMaxBackendScanCount = 8192;
  static constexpr uint64_t kMaxScanWork = 65536;

 private:
  void Done();
  CommandContext& ctx_;
  Kind kind_;
  uint64_t seq_;
  size_t waiting_;
  int proto_;
  std::vector<std::vector<size_t>> positions_;
  std::vector<std::string> values_;  // MGET: per client key; KEYS: collected names
  int64_t sum_ = 0;
  std::string error_;
  std::string prefix_, pattern_;
  void SendScan();
  void GrowScanCount();
  Backend* backend_ = nullptr;
  std::vector<config::Endpoint> scan_nodes_;
  size_t scan_node_ = 0;
  uint64_t scan_cursor_ = 0;
  std::vector<std::string> scan_args_;
  size_t scan_want_ = 10;
  int scan_rounds_ = 0;
  size_t scan_count_arg_ = 0;     // index of COUNT's value in scan_args_ (0: none)
  uint64_t scan_work_ = 0;        // entries asked for so far
  bool scan_done_ = false;
  bool finished_ = false;
};

}  // namespace keyfence::proxy
