// RequestParser on arbitrary bytes: never crashes, and parsing the input in
// two pieces (the buffer growing, as on a socket) gives the same requests as
// parsing it at once.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/request_parser.h"

using keyfence::protocol::ParseStatus;
using keyfence::protocol::RequestLimits;
using keyfence::protocol::RequestParser;

namespace {

// Parses everything it can; returns the requests (args joined) and the status.
std::vector<std::string> ParseAll(const std::string& data, size_t split, ParseStatus* last) {
  RequestLimits limits;
  limits.max_bulk_len = 1 << 20;
  limits.max_args = 1 << 12;
  limits.max_inline_len = 1 << 14;
  RequestParser p(limits);
  std::vector<std::string> out;
  size_t off = 0;
  size_t avail = split;  // bytes "received" so far
  for (int guard = 0; guard < 100000; ++guard) {
    size_t consumed = 0;
    ParseStatus st = p.Parse(data.data() + off, avail - off, &consumed);
    *last = st;
    if (st == ParseStatus::kOk) {
      std::string r;
      for (size_t i = 0; i < p.argc(); ++i) {
        r += std::to_string(p.arg(i).size()) + ":";
        r.append(p.arg(i));
      }
      out.push_back(r);
      off += consumed;
      if (consumed == 0) break;
      continue;
    }
    if (st == ParseStatus::kError) break;
    if (avail == data.size()) break;  // need more, and nothing more comes
    avail = data.size();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t split = in.empty() ? 0 : data[0] % (in.size() + 1);
  ParseStatus a, b;
  auto whole = ParseAll(in, in.size(), &a);
  auto pieces = ParseAll(in, split, &b);
  if (whole != pieces || a != b) __builtin_trap();
  return 0;
}
