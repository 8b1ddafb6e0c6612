// keyfence analyze --config FILE [--rdb FILE] [--json] [--top N]: the
// per-namespace accounting of an RDB file (issue 11). Reading the masters
// over the replication protocol is the next step: without --rdb it says so.
#include "proxy/accounting/cli.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "proxy/accounting/analysis.h"
#include "rdb/parser.h"

namespace keyfence::proxy::accounting {

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: keyfence analyze --config FILE [--rdb FILE] [--json] [--top N]\n");
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int RunAnalyze(int argc, char** argv) {
  std::string config_path, rdb_path;
  bool json = false;
  size_t top = 10;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--rdb" && i + 1 < argc) {
      rdb_path = argv[++i];
    } else if (a == "--json") {
      json = true;
    } else if (a == "--top" && i + 1 < argc) {
      top = std::stoul(argv[++i]);
    } else {
      Usage();
      return 2;
    }
  }
  if (config_path.empty()) {
    Usage();
    return 2;
  }
  config::LoadResult r = config::LoadFile(config_path, 1);
  if (!r.ok()) {
    for (const auto& d : r.errors) std::fprintf(stderr, "%s\n", d.ToString().c_str());
    return 1;
  }
  if (rdb_path.empty()) {
    std::fprintf(stderr,
                 "keyfence analyze: reading the masters over replication is not built yet; "
                 "give --rdb FILE (e.g. a BGSAVE's dump.rdb)\n");
    return 2;
  }
  std::ifstream in(rdb_path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "keyfence analyze: cannot open %s\n", rdb_path.c_str());
    return 1;
  }
  Analysis analysis(*r.snapshot, top, NowMs());
  rdb::RdbParser parser(analysis);
  std::string chunk(1 << 16, '\0');
  auto last = std::chrono::steady_clock::now();
  while (in && !parser.done()) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    if (!parser.Feed(std::string_view(chunk.data(), n))) break;
    if (auto now = std::chrono::steady_clock::now(); now - last > std::chrono::seconds(1)) {
      last = now;
      std::fprintf(stderr, "analyze: %llu keys, %llu MB read\n",
                   static_cast<unsigned long long>(parser.keys()),
                   static_cast<unsigned long long>(parser.offset() >> 20));
    }
  }
  if (parser.failed()) {
    std::fprintf(stderr, "keyfence analyze: %s: %s\n", rdb_path.c_str(), parser.error().c_str());
    return 1;
  }
  if (!parser.done()) {
    std::fprintf(stderr, "keyfence analyze: %s: truncated after %llu bytes\n", rdb_path.c_str(),
                 static_cast<unsigned long long>(parser.offset()));
    return 1;
  }
  if (json) {
    std::printf("%s\n", analysis.ToJson().dump().c_str());
  } else {
    std::printf("%s", analysis.ToTable().c_str());
  }
  return 0;
}

}  // namespace keyfence::proxy::accounting
