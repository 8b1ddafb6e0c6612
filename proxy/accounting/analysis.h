// Per-namespace accounting from an RDB stream (issue 11): each key of the
// stream is given to its tenant by its namespace prefix (`<cluster>@<app>:`),
// counted (keys, keys with a TTL, bytes by type, estimated memory) and kept
// among the tenant's biggest keys; keys of no configured tenant count as
// "unowned". Fed by rdb::RdbParser (an RdbSink); reports as the JSON of
// DESIGN.md ("keyfence analyze --json") or as a table.
#pragma once

#include <cstdint>
#include <map>
#include <string>
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

class Analysis final : public rdb::RdbSink {
 public:
  // `now_ms`: Unix time the TTLs are measured from.
  Analysis(const config::Snapshot& snap, size_t top_keys, int64_t now_ms);
  void OnKey(const rdb::KeyInfo& k) override;

  const std::map<std::string, Figures>& tenants() const { return tenants_; }
  const Figures& unowned() const { return unowned_; }
  nlohmann::json ToJson() const;
  std::string ToTable() const;

 private:
  std::string cluster_prefix_;  // "<cluster>@"
  std::map<std::string, Figures> tenants_;  // by app
  Figures unowned_;
  size_t top_keys_;
  int64_t now_ms_;
};

}  // namespace keyfence::proxy::accounting
