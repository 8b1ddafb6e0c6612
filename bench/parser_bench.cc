// Request parser, reply framer and writer micro-benchmarks. The "per_req" /
// "per_reply" counters are the time per parsed item (benchmark prints them as
// seconds, e.g. "20.1n" = 20.1 ns).
#include <benchmark/benchmark.h>

#include <string>

#include "protocol/reply_parser.h"
#include "protocol/request_parser.h"
#include "protocol/writer.h"

namespace keyfence::protocol {
namespace {

constexpr int kBatch = 16;

benchmark::Counter PerItem(int items) {
  return benchmark::Counter(
      items, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// A pipelined batch of 16 "GET key:000123" multibulk requests.
void BM_ParsePipelinedGet(benchmark::State& state) {
  const std::string batch = Repeat("*2\r\n$3\r\nGET\r\n$10\r\nkey:000123\r\n", kBatch);
  RequestParser parser;
  for (auto _ : state) {
    const char* p = batch.data();
    size_t left = batch.size();
    size_t consumed = 0;
    while (left > 0 && parser.Parse(p, left, &consumed) == ParseStatus::kOk) {
      benchmark::DoNotOptimize(parser.arg(1).data());
      p += consumed;
      left -= consumed;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(batch.size()));
  state.counters["per_req"] = PerItem(kBatch);
}
BENCHMARK(BM_ParsePipelinedGet);

// The same batch with SET and a 100-byte value.
void BM_ParsePipelinedSet100(benchmark::State& state) {
  const std::string batch = Repeat(
      "*3\r\n$3\r\nSET\r\n$10\r\nkey:000123\r\n$100\r\n" + std::string(100, 'v') + "\r\n", kBatch);
  RequestParser parser;
  for (auto _ : state) {
    const char* p = batch.data();
    size_t left = batch.size();
    size_t consumed = 0;
    while (left > 0 && parser.Parse(p, left, &consumed) == ParseStatus::kOk) {
      benchmark::DoNotOptimize(parser.arg(2).data());
      p += consumed;
      left -= consumed;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(batch.size()));
  state.counters["per_req"] = PerItem(kBatch);
}
BENCHMARK(BM_ParsePipelinedSet100);

// 16 inline "GET key:000123" lines (redis-cli / telnet style).
void BM_ParsePipelinedInline(benchmark::State& state) {
  const std::string batch = Repeat("GET key:000123\r\n", kBatch);
  RequestParser parser;
  for (auto _ : state) {
    const char* p = batch.data();
    size_t left = batch.size();
    size_t consumed = 0;
    while (left > 0 && parser.Parse(p, left, &consumed) == ParseStatus::kOk) {
      benchmark::DoNotOptimize(parser.arg(1).data());
      p += consumed;
      left -= consumed;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["per_req"] = PerItem(kBatch);
}
BENCHMARK(BM_ParsePipelinedInline);

// Frames 16 bulk replies, as a backend connection matching GET replies would.
void BM_FrameBulkReplies(benchmark::State& state) {
  const std::string batch = Repeat("$10\r\nvalue:0001\r\n", kBatch);
  ReplyFramer framer;
  for (auto _ : state) {
    const char* p = batch.data();
    size_t left = batch.size();
    size_t consumed = 0;
    while (left > 0 && framer.Frame(p, left, &consumed) == ParseStatus::kOk) {
      p += consumed;
      left -= consumed;
    }
    benchmark::DoNotOptimize(left);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(batch.size()));
  state.counters["per_reply"] = PerItem(kBatch);
}
BENCHMARK(BM_FrameBulkReplies);

// Frames one 100-element array reply (KEYS / SCAN page / MGET).
void BM_FrameArrayReply(benchmark::State& state) {
  const std::string reply = "*100\r\n" + Repeat("$10\r\nkey:000123\r\n", 100);
  ReplyFramer framer;
  for (auto _ : state) {
    size_t consumed = 0;
    benchmark::DoNotOptimize(framer.Frame(reply.data(), reply.size(), &consumed));
  }
  state.SetItemsProcessed(state.iterations() * 100);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(reply.size()));
}
BENCHMARK(BM_FrameArrayReply);

// Writes 16 "GET key:000123" commands into a reused buffer.
void BM_WriteCommands(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < kBatch; ++i) AppendCommand(out, {"GET", "key:000123"});
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["per_req"] = PerItem(kBatch);
}
BENCHMARK(BM_WriteCommands);

void BM_AppendInteger(benchmark::State& state) {
  std::string out;
  int64_t v = 1234567;
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < kBatch; ++i) AppendInteger(out, v + i);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_AppendInteger);

}  // namespace
}  // namespace keyfence::protocol
