#include "proxy/session/reply_stats.h"

#include "protocol/command_table.h"

namespace keyfence::proxy::session {

namespace {
std::array<uint8_t, kMaxCommandIds> BuildLookups() {
  const auto& table = protocol::CommandTable::Get();
  std::array<uint8_t, kMaxCommandIds> v{};
  for (std::string_view name :
       {"get", "getex", "getdel", "hget", "lindex", "zscore", "zrank", "zrevrank"}) {
    if (const protocol::CommandInfo* c = table.Find(name); c != nullptr && c->id < v.size()) {
      v[c->id] = 1;
    }
  }
  return v;
}

// The text of an error frame: "-CODE msg\r\n", or a RESP3 blob error.
std::string_view ErrorText(std::string_view frame) {
  if (frame.empty()) return frame;
  if (frame[0] == '!') {
    size_t nl = frame.find('\n');
    return nl == std::string_view::npos ? std::string_view() : frame.substr(nl + 1);
  }
  return frame.substr(1);
}
}  // namespace

const std::array<uint8_t, kMaxCommandIds> kLookups = BuildLookups();

void CountErrorFrame(TenantCounters& c, uint16_t cmd_id, std::string_view frame) {
  c.CountErrorReply(cmd_id, ErrorText(frame));
}

}  // namespace keyfence::proxy::session
