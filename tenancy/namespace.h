// Tenant namespaces (DESIGN.md "Namespaces"): the backend name of a client key
// K is P+K, where P = "cluster@app:"; if K has a hash tag (text between its
// first '{' and the next '}', when not empty) P is also inserted right after
// that '{', so the slot is CRC16(P + hashpart(K)). Stripping is the exact
// inverse. Pure functions; no allocation beyond growing `out`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keyfence::tenancy {

// Position just after the first '{' of key if key has a non-empty hash tag,
// else std::string_view::npos.
size_t HashTagInsertPos(std::string_view key);

// Length of the backend name of key.
inline size_t BackendKeyLength(std::string_view prefix, std::string_view key) {
  return key.size() + prefix.size() * (HashTagInsertPos(key) == std::string_view::npos ? 1 : 2);
}

// Appends the backend name of key (P+K with the hash-tag rule) to out.
void AppendBackendKey(std::string& out, std::string_view prefix, std::string_view key);

// The cluster slot of the backend name of key, without building it:
// CRC16(P + hashpart(K)) when K has a hash tag, else CRC16(P + K).
uint16_t BackendKeySlot(std::string_view prefix, std::string_view key);
// The same with the prefix's CRC16 computed once (protocol::Crc16(prefix)).
uint16_t BackendKeySlot(uint16_t prefix_crc, std::string_view key);

// Inverse of AppendBackendKey: if backend is in the namespace, appends the
// client key to out and returns true; otherwise appends nothing, returns false.
bool AppendClientKey(std::string& out, std::string_view prefix, std::string_view backend);

// Backend name of a pub/sub channel (classic channels have no slots: plain P+C).
// Keyspace notifications name a key after a fixed header: the tenant's
// `__keyspace@0__:K` is the backend's `__keyspace@0__:` + (P+K with the
// hash-tag rule), patterns alike, and stripped back the same way.
inline constexpr std::string_view kKeyspaceChannel = "__keyspace@0__:";
inline bool IsKeyspaceChannel(std::string_view c) { return c.starts_with(kKeyspaceChannel); }
// Keyevent channels name an event, and their messages name a key of any
// tenant: the channel is the backend's own (shared), and keyfence delivers a
// message only when its key is the tenant's, stripped (commands/sub_links.cc).
inline constexpr std::string_view kKeyeventChannel = "__keyevent@0__:";
inline bool IsKeyeventChannel(std::string_view c) { return c.starts_with(kKeyeventChannel); }

inline size_t BackendChannelLength(std::string_view prefix, std::string_view channel) {
  if (IsKeyeventChannel(channel)) return channel.size();
  if (IsKeyspaceChannel(channel)) {
    return kKeyspaceChannel.size() +
           BackendKeyLength(prefix, channel.substr(kKeyspaceChannel.size()));
  }
  return prefix.size() + channel.size();
}
inline void AppendBackendChannel(std::string& out, std::string_view prefix,
                                 std::string_view channel) {
  if (IsKeyeventChannel(channel)) {
    out.append(channel);
    return;
  }
  if (IsKeyspaceChannel(channel)) {
    out.append(kKeyspaceChannel);
    AppendBackendKey(out, prefix, channel.substr(kKeyspaceChannel.size()));
    return;
  }
  out.append(prefix);
  out.append(channel);
}
bool AppendClientChannel(std::string& out, std::string_view prefix, std::string_view backend);

}  // namespace keyfence::tenancy
