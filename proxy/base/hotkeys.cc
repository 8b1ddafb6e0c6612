#include "proxy/base/hotkeys.h"

#include <algorithm>

namespace keyfence::proxy {

void HotKeys::Record(std::string_view key, uint64_t weight) {
  auto it = index_.find(absl::string_view(key.data(), key.size()));
  if (it != index_.end()) {
    entries_[it->second].count += weight;
    return;
  }
  if (entries_.size() < capacity_) {
    index_.emplace(std::string(key), entries_.size());
    entries_.push_back({std::string(key), weight});
    return;
  }
  // Space-Saving: the new key replaces the least counted one and inherits its
  // count (an upper bound on the new key's true count).
  size_t min = 0;
  for (size_t i = 1; i < entries_.size(); ++i) {
    if (entries_[i].count < entries_[min].count) min = i;
  }
  index_.erase(entries_[min].key);
  entries_[min].key.assign(key);
  entries_[min].count += weight;
  index_.emplace(entries_[min].key, min);
}

void HotKeys::Decay() {
  for (Entry& e : entries_) e.count /= 2;
}

std::vector<std::pair<std::string, uint64_t>> HotKeys::Top(size_t n) const {
  std::vector<std::pair<std::string, uint64_t>> v;
  for (const Entry& e : entries_) {
    if (e.count > 0) v.emplace_back(e.key, e.count);
  }
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

}  // namespace keyfence::proxy
