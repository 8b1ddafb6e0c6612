// Where accounting reports live besides memory (issue 11): in the backend,
// under keyfence's own reserved namespace (`<cluster>@__keyfence:accounting:
// <name>`), so that every keyfence instance of the fleet serves the same
// figures; and as files in accounting.state_dir, so that a restarted
// instance keeps its baseline without the backend. Also the backend locks
// that let one instance of the fleet run the daily analysis. Blocking
// ControlLink (control_link.h); control side only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "proxy/backend/slot_map.h"

namespace keyfence::proxy::accounting {

class ReportStore {
 public:
  // `map`: the cluster's slot map (null: standalone, or not known yet).
  ReportStore(const config::Snapshot& snap, SlotMapPtr map);

  std::string Key(std::string_view name) const;  // "<cluster>@__keyfence:accounting:<name>"
  bool Put(std::string_view name, const std::string& value);
  std::optional<std::string> Get(std::string_view name);
  // SET NX EX: true if this instance took it.
  bool Claim(std::string_view name, std::string_view owner, int ttl_s);
  // Deletes it if `owner` still holds it (a claim that expired and was taken
  // by another instance is left alone).
  void Release(std::string_view name, std::string_view owner);

  static bool SaveFile(const std::string& dir, std::string_view name, const std::string& value);
  static std::optional<std::string> LoadFile(const std::string& dir, std::string_view name);

 private:
  const config::Endpoint* NodeFor(const std::string& key) const;

  config::Backend backend_;
  std::string prefix_;
  SlotMapPtr map_;
};

}  // namespace keyfence::proxy::accounting
