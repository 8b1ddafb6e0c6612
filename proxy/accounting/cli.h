// `keyfence analyze ...`: its options (parsed by main.cc) and the exit code.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace keyfence::proxy::accounting {

struct AnalyzeOptions {
  std::string config_path;
  std::string rdb_path;              // "": read the masters over replication
  bool json = false;
  std::optional<size_t> top;         // unset: accounting.top_keys of the config
};

int RunAnalyze(const AnalyzeOptions& o);

}  // namespace keyfence::proxy::accounting
