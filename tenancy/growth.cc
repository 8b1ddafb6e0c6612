#include "tenancy/growth.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/numbers.h>

#include <algorithm>
#include <string>

namespace keyfence::tenancy {

namespace {

bool Is(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(absl::string_view(a.data(), a.size()),
                                absl::string_view(b.data(), b.size()));
}

uint64_t Number(std::string_view s) {
  uint64_t v = 0;
  return absl::SimpleAtoi(absl::string_view(s.data(), s.size()), &v) ? v : 0;
}

// BITFIELD key [GET|SET|INCRBY type offset ...]: the highest byte written to.
uint64_t BitfieldBytes(std::span<const std::string_view> args) {
  uint64_t top = 0;
  for (size_t i = 2; i + 2 < args.size(); ++i) {
    const bool writes = Is(args[i], "set") || Is(args[i], "incrby");
    if (!writes && !Is(args[i], "get")) continue;
    const std::string_view type = args[i + 1];
    std::string_view off = args[i + 2];
    const uint64_t bits = type.size() > 1 ? Number(type.substr(1)) : 0;
    uint64_t offset = 0;
    if (!off.empty() && off[0] == '#') {
      offset = Number(off.substr(1)) * bits;
    } else {
      offset = Number(off);
    }
    if (writes) top = std::max(top, (offset + bits + 7) / 8);
    i += writes ? 3 : 2;
  }
  return top;
}

constexpr std::string_view kComputed[] = {
    "copy",        "sort",        "sunionstore", "sinterstore",    "sdiffstore",
    "zunionstore", "zinterstore", "zdiffstore",  "zrangestore",    "bitop",
    "georadius",   "georadiusbymember", "geosearchstore", "restore", "eval",
    "evalsha",     "fcall",       "pfmerge",     "function"};

}  // namespace

Growth WriteGrowth(std::span<const std::string_view> args) {
  Growth g;
  if (args.empty()) return g;
  const std::string_view name = args[0];
  if (Is(name, "setbit") && args.size() >= 3) {
    g.bytes = Number(args[2]) / 8 + 1;
  } else if (Is(name, "setrange") && args.size() >= 4) {
    g.bytes = Number(args[2]) + args[3].size();
  } else if (Is(name, "bitfield") && args.size() >= 3) {
    g.bytes = BitfieldBytes(args);
  } else {
    for (std::string_view c : kComputed) {
      if (Is(name, c)) g.computed = true;
    }
  }
  return g;
}

}  // namespace keyfence::tenancy
