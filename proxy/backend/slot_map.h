// An immutable picture of the cluster: which master owns each slot, and the
// replicas of each master. Built by the topology refresher, shared read-only
// by every worker (std::shared_ptr<const SlotMap>).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "protocol/slot.h"

namespace keyfence::proxy {

struct SlotMap {
  uint64_t version = 0;
  std::vector<config::Endpoint> masters;                // index = node id in `owner`
  std::vector<std::vector<config::Endpoint>> replicas;  // per master
  std::array<int16_t, protocol::kNumSlots> owner;       // master index, -1 unassigned

  SlotMap() { owner.fill(-1); }
  bool Knows(const std::string& endpoint) const {
    for (const auto& m : masters) {
      if (m.ToString() == endpoint) return true;
    }
    for (const auto& rs : replicas) {
      for (const auto& r : rs) {
        if (r.ToString() == endpoint) return true;
      }
    }
    return false;
  }
};

using SlotMapPtr = std::shared_ptr<const SlotMap>;

}  // namespace keyfence::proxy
