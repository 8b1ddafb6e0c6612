// Key rewriter micro-benchmarks: request side (FindNames + WriteRequest into a
// reused buffer, the per-request hot path) and reply side (RewriteReply of a
// SCAN page, a cold path).
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocol/command_table.h"
#include "protocol/writer.h"
#include "tenancy/command_rules.h"
#include "tenancy/key_finder.h"
#include "tenancy/rewriter.h"

namespace keyfence::tenancy {
namespace {

constexpr std::string_view kPrefix = "shop@orders:";

void RunRequest(benchmark::State& state, const std::vector<std::string_view>& args) {
  const protocol::CommandInfo* cmd = protocol::CommandTable::Get().Find(args[0]);
  if (cmd == nullptr) {
    state.SkipWithError("unknown command");
    return;
  }
  const Rule& rule = CommandRules::Get().For(cmd->id);
  NameRefs refs;
  std::string out;
  out.reserve(4096);
  int64_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    if (FindNames(rule, *cmd, args, &refs) != FindStatus::kOk) {
      state.SkipWithError("FindNames failed");
      return;
    }
    WriteRequest(args, refs, kPrefix, out);
    benchmark::DoNotOptimize(out.data());
    bytes += static_cast<int64_t>(out.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}

void BM_RewriteRequestSet(benchmark::State& state) {
  RunRequest(state, {"SET", "key:000123", "xyz"});
}
BENCHMARK(BM_RewriteRequestSet);

void BM_RewriteRequestMget10(benchmark::State& state) {
  RunRequest(state, {"MGET", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10"});
}
BENCHMARK(BM_RewriteRequestMget10);

// The SCAN reply a backend sends for "SCAN c MATCH shop@orders:* COUNT 10".
std::string ScanReply() {
  std::string frame;
  protocol::AppendArrayHeader(frame, 2);
  protocol::AppendBulk(frame, "1792");
  protocol::AppendArrayHeader(frame, 10);
  for (int i = 0; i < 10; ++i) {
    protocol::AppendBulk(frame, std::string(kPrefix) + "user:" + std::to_string(1000 + i));
  }
  return frame;
}

void RunScanReply(benchmark::State& state, std::string_view pattern) {
  const std::string frame = ScanReply();
  ReplyContext ctx;
  ctx.prefix = kPrefix;
  ctx.pattern = pattern;
  std::string out;
  out.reserve(4096);
  for (auto _ : state) {
    out.clear();
    RewriteReply(ReplyRule::kScan, frame, ctx, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame.size()));
}

void BM_RewriteReplyScan10(benchmark::State& state) { RunScanReply(state, ""); }
BENCHMARK(BM_RewriteReplyScan10);

// The same page filtered by the client's MATCH pattern.
void BM_RewriteReplyScan10Match(benchmark::State& state) { RunScanReply(state, "user:100*"); }
BENCHMARK(BM_RewriteReplyScan10Match);

}  // namespace
}  // namespace keyfence::tenancy
