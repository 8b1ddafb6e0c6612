// Cluster slot hashing micro-benchmarks: short keys, hash-tagged keys, long keys.
#include <benchmark/benchmark.h>

#include <string>

#include "protocol/slot.h"

namespace keyfence::protocol {
namespace {

void RunKeySlot(benchmark::State& state, const std::string& key) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(KeySlot(key));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(key.size()));
}

void BM_KeySlotShort(benchmark::State& state) { RunKeySlot(state, "key:000123"); }
BENCHMARK(BM_KeySlotShort);

void BM_KeySlotTagged(benchmark::State& state) { RunKeySlot(state, "user:{42}:cart"); }
BENCHMARK(BM_KeySlotTagged);

// A prefixed, tagged backend key as the rewriter produces it.
void BM_KeySlotPrefixedTagged(benchmark::State& state) {
  RunKeySlot(state, "shop@orders:user:{shop@orders:42}:cart");
}
BENCHMARK(BM_KeySlotPrefixedTagged);

void BM_KeySlotLong(benchmark::State& state) { RunKeySlot(state, std::string(100, 'k')); }
BENCHMARK(BM_KeySlotLong);

}  // namespace
}  // namespace keyfence::protocol
