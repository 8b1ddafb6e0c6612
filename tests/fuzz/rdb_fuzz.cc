// RdbParser on arbitrary bytes: no crash, bounded memory, and the same
// outcome (keys seen, done / failed) whether the bytes come at once or in
// chunks of any size (the first byte picks the chunk size).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rdb/parser.h"

namespace {
struct Count : keyfence::rdb::RdbSink {
  uint64_t keys = 0, bytes = 0;
  void OnKey(const keyfence::rdb::KeyInfo& k) override {
    ++keys;
    bytes += k.payload_bytes + k.key.size();
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  keyfence::rdb::Limits limits{1 << 20, 1 << 16};
  Count whole, pieces;
  keyfence::rdb::RdbParser a(whole, limits), b(pieces, limits);
  a.Feed(in);
  for (size_t i = 0; i < in.size() && !b.failed(); i += chunk) b.Feed(in.substr(i, chunk));
  if (a.done() != b.done() || a.failed() != b.failed() || whole.keys != pieces.keys ||
      whole.bytes != pieces.bytes) {
    __builtin_trap();
  }
  return 0;
}
