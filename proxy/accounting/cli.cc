// keyfence analyze --config FILE [--rdb FILE] [--json] [--top N] (options: main.cc): the
// per-namespace accounting of the backend's data (issue 11), read from every
// master as an RDB-only replica, or from an RDB file. A progress line goes to
// stderr once a second; the report to stdout. Exit 1 when a master (or the
// file) could not be read whole: the report then covers what was read.
#include "proxy/accounting/cli.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "proxy/accounting/analysis.h"
#include "proxy/accounting/run.h"
#include "rdb/parser.h"

namespace keyfence::proxy::accounting {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The file into `a`, as one node named after it; false when it cannot be opened.
bool ReadFile(const std::string& path, Analysis& a, const Progress& tick) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "keyfence analyze: cannot open %s\n", path.c_str());
    return false;
  }
  rdb::RdbParser parser(a);
  std::string chunk(1 << 16, '\0');
  while (in && !parser.done()) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    if (!parser.Feed(std::string_view(chunk.data(), n))) break;
    tick(path, parser.keys(), parser.offset());
  }
  std::string error;
  if (parser.failed()) {
    error = parser.error();
  } else if (!parser.done()) {
    error = "truncated after " + std::to_string(parser.offset()) + " bytes";
  }
  a.AddNode({path, parser.keys(), parser.offset(), error});
  return true;
}

}  // namespace

int RunAnalyze(const AnalyzeOptions& o) {
  config::LoadResult r = config::LoadFile(o.config_path, 1);
  if (!r.ok()) {
    for (const auto& d : r.errors) std::fprintf(stderr, "%s\n", d.ToString().c_str());
    return 1;
  }
  const size_t top_keys = o.top ? *o.top : r.snapshot->accounting.top_keys;
  Analysis analysis(*r.snapshot, top_keys, NowMs());
  auto last = std::chrono::steady_clock::now();
  auto tick = [&](const std::string& what, uint64_t keys, uint64_t bytes) {
    if (auto now = std::chrono::steady_clock::now(); now - last > std::chrono::seconds(1)) {
      last = now;
      std::fprintf(stderr, "analyze: %s: %llu keys, %llu MB read\n", what.c_str(),
                   static_cast<unsigned long long>(keys),
                   static_cast<unsigned long long>(bytes >> 20));
    }
  };
  if (o.rdb_path.empty()) {
    AnalyzeBackend(*r.snapshot, analysis, tick);
  } else if (!ReadFile(o.rdb_path, analysis, tick)) {
    return 1;
  }
  for (const NodeRun& n : analysis.nodes()) {
    if (!n.error.empty()) std::fprintf(stderr, "keyfence analyze: %s: %s\n", n.node.c_str(),
                                       n.error.c_str());
  }
  if (o.json) {
    std::printf("%s\n", Dump(analysis.ToJson()).c_str());
  } else {
    std::printf("%s", analysis.ToTable().c_str());
  }
  return analysis.complete() ? 0 : 1;
}

}  // namespace keyfence::proxy::accounting
