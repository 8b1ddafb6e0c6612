// Live overrides of tenant limits (PUT /tenants/<name>/limits, `keyfence ctl limits
// set`). The config file stays the source of truth: an override is a layer over one
// tenant's limits from the file, reported as drift, kept across reloads that leave the
// tenant unchanged in the file and dropped by DELETE or by a reload that changes it.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace keyfence::config {

namespace internal {
struct LimitsSpec;
}

class LimitsOverride {
 public:
  // A JSON (or YAML) mapping of limit fields, checked as tenants.<t>.limits is in the
  // file (names, types, ranges). Errors come as NAME:LINE:COL: message.
  static std::optional<LimitsOverride> Parse(std::string_view text, const std::string& name,
                                             std::vector<Diagnostic>* errors);

  Limits ApplyTo(Limits base) const;
  // The fields of `newer` replace these (a second PUT adds to the first).
  void Merge(const LimitsOverride& newer);
  // {"ops_per_sec":100}: the fields set, by their file names.
  std::string ToJson() const;
  // The names of the fields set.
  std::vector<std::string> Fields() const;
  // True if a field this override sets differs between a and b (a reload changed
  // what the override overrides: the file wins).
  bool Touches(const Limits& a, const Limits& b) const;
  // {"ops_per_sec":{"file":5000,"live":100}} for each field set.
  std::string DriftJson(const Limits& file, const Limits& live) const;

 private:
  std::shared_ptr<internal::LimitsSpec> spec_;
};

using Overrides = std::map<std::string, LimitsOverride, std::less<>>;

// `file` with every override of a tenant it has applied, as version `version` (its
// hash recomputed: an instance with overrides does not claim the file's identity).
SnapshotPtr WithOverrides(const Snapshot& file, const Overrides& overrides, uint64_t version);

// {"orders":{"ops_per_sec":{"file":5000,"live":100}}}: each overridden field of each
// tenant, the file's value against the running one.
std::string DriftJson(const Snapshot& file, const Snapshot& running, const Overrides& overrides);

}  // namespace keyfence::config
