#include "tenancy/namespace.h"

#include <cstring>

#include "protocol/slot.h"

namespace keyfence::tenancy {

size_t HashTagInsertPos(std::string_view key) {
  size_t open = key.find('{');
  if (open == std::string_view::npos) return std::string_view::npos;
  size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return std::string_view::npos;
  return open + 1;
}

void AppendBackendKey(std::string& out, std::string_view prefix, std::string_view key) {
  size_t pos = HashTagInsertPos(key);
  out.append(prefix);
  if (pos == std::string_view::npos) {
    out.append(key);
    return;
  }
  out.append(key.data(), pos);
  out.append(prefix);
  out.append(key.data() + pos, key.size() - pos);
}

uint16_t BackendKeySlot(std::string_view prefix, std::string_view key) {
  return BackendKeySlot(protocol::Crc16(prefix.data(), prefix.size()), key);
}

uint16_t BackendKeySlot(uint16_t prefix_crc, std::string_view key) {
  size_t pos = HashTagInsertPos(key);
  std::string_view part = key;
  if (pos != std::string_view::npos) {
    size_t close = key.find('}', pos);
    part = key.substr(pos, close - pos);
  }
  return protocol::Crc16Update(prefix_crc, part.data(), part.size()) & (protocol::kNumSlots - 1);
}

bool AppendClientKey(std::string& out, std::string_view prefix, std::string_view backend) {
  if (backend.size() < prefix.size() || backend.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  std::string_view rest = backend.substr(prefix.size());
  size_t open = rest.find('{');
  if (open != std::string_view::npos) {
    std::string_view after = rest.substr(open + 1);
    // The forward rule inserted P after the first '{' iff the tag (text up to
    // the next '}' after P) is non-empty.
    if (after.size() > prefix.size() && after.compare(0, prefix.size(), prefix) == 0) {
      size_t close = after.find('}', prefix.size());
      if (close != std::string_view::npos && close > prefix.size()) {
        out.append(rest.data(), open + 1);
        out.append(after.data() + prefix.size(), after.size() - prefix.size());
        return true;
      }
    }
  }
  out.append(rest);
  return true;
}

bool AppendClientChannel(std::string& out, std::string_view prefix, std::string_view backend) {
  if (IsKeyeventChannel(backend)) {
    out.append(backend);
    return true;
  }
  if (IsKeyspaceChannel(backend)) {
    const size_t at = out.size();
    out.append(kKeyspaceChannel);
    if (AppendClientKey(out, prefix, backend.substr(kKeyspaceChannel.size()))) return true;
    out.resize(at);
    return false;
  }
  if (backend.size() < prefix.size() || backend.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  out.append(backend.substr(prefix.size()));
  return true;
}

}  // namespace keyfence::tenancy
