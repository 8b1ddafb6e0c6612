// Per-namespace accounting from an RDB stream (issue 11): each key of the
// stream is given to its tenant by its namespace prefix (`<cluster>@<app>:`),
// counted (keys, keys with a TTL, bytes by type, estimated memory) and kept
// among the tenant's biggest keys; keys of no configured tenant count as
// "unowned". Fed by rdb::RdbParser (an RdbSink); reports as the JSON of
// DESIGN.md ("keyfence analyze --json") or as a table.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "rdb/parser.h"

namespace keyfence::proxy::accounting {

struct BigKey {
  std::string key;  // client-side name
  rdb::Type type = rdb::Type::kString;
  uint64_t bytes = 0;  // estimated memory
  uint64_t elements = 0;
  int64_t ttl_ms = -1;  // at the analysis' `now_ms`; -1: none
  int64_t idle_s = -1;
};

struct Figures {
  uint64_t keys = 0;
  uint64_t keys_with_ttl = 0;
  uint64_t memory_bytes = 0;
  std::map<std::string, uint64_t> bytes_by_type;  // TypeName -> estimated memory
  std::vector<BigKey> big_keys;                   // biggest first, at most top_keys
};

// One master read: where, how much, and how it went.
struct NodeRun {
  std::string node;  // host:port
  uint64_t keys = 0;
  uint64_t rdb_bytes = 0;
  std::string error;  // empty: read whole
};

// JSON text; key names that are not UTF-8 (a Redis key is any bytes) get
// U+FFFD for their bad bytes instead of an exception.
inline std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class Analysis final : public rdb::RdbSink {
 public:
  // `now_ms`: Unix time the TTLs are measured from.
  Analysis(const config::Snapshot& snap, size_t top_keys, int64_t now_ms);
  void OnKey(const rdb::KeyInfo& k) override;

  // Cluster: count bytes per slot too, and name each slot's master from
  // `owner_names` (index = slot; empty when unknown).
  void CountSlots(std::vector<std::string> owner_names);
  void AddNode(NodeRun run) { nodes_.push_back(std::move(run)); }
  const std::vector<NodeRun>& nodes() const { return nodes_; }
  bool complete() const;  // every node read whole

  const std::map<std::string, Figures>& tenants() const { return tenants_; }
  const Figures& unowned() const { return unowned_; }
  nlohmann::json ToJson() const;
  std::string ToTable() const;

 private:
  struct Slot {
    uint64_t bytes = 0;
    uint64_t keys = 0;
    std::vector<std::pair<const std::string*, uint64_t>> tenants;  // app (key of tenants_)
  };
  void CountSlot(std::string_view key, const std::string* app, uint64_t bytes);
  nlohmann::json SlotsJson() const;

  std::string cluster_prefix_;  // "<cluster>@"
  std::map<std::string, Figures> tenants_;  // by app
  std::vector<Slot> slots_;                 // cluster only: by slot
  std::vector<std::string> slot_owner_;     // by slot
  std::vector<NodeRun> nodes_;
  Figures unowned_;
  Figures own_;  // keyfence's reserved namespace (<cluster>@__keyfence:): reports, claims
  std::string own_prefix_;
  size_t top_keys_;
  int64_t now_ms_;
};

}  // namespace keyfence::proxy::accounting
