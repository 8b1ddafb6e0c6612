// Hot keys of one tenant on one worker: a Space-Saving top-K sketch (bounded
// memory: K entries) over a decaying window (counts halve every few seconds,
// so old heat fades). Fed with sampled requests (client-side key names).
// Worker-local; Top() copies are taken on the worker thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/strings/string_view.h>

namespace keyfence::proxy {

class HotKeys {
 public:
  explicit HotKeys(size_t capacity = 64) : capacity_(capacity) {}
  void Record(std::string_view key, uint64_t weight = 1);
  void Decay();
  std::vector<std::pair<std::string, uint64_t>> Top(size_t n) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string key;
    uint64_t count;
  };
  size_t capacity_;
  std::vector<Entry> entries_;
  absl::flat_hash_map<std::string, size_t> index_;  // key -> position in entries_
};

}  // namespace keyfence::proxy
