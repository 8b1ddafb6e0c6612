// Keyspace-notification classes (Redis's notify-keyspace-events flags), for
// a tenant's own CONFIG SET notify-keyspace-events: parsing and printing the
// flags as Redis does, and the class of an event name. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keyfence::tenancy {

enum NotifyFlag : uint32_t {
  kNotifyKeyspace = 1u << 0,   // K
  kNotifyKeyevent = 1u << 1,   // E
  kNotifyGeneric = 1u << 2,    // g
  kNotifyString = 1u << 3,     // $
  kNotifyList = 1u << 4,       // l
  kNotifySet = 1u << 5,        // s
  kNotifyHash = 1u << 6,       // h
  kNotifyZset = 1u << 7,       // z
  kNotifyExpired = 1u << 8,    // x
  kNotifyEvicted = 1u << 9,    // e
  kNotifyStream = 1u << 10,    // t
  kNotifyKeyMiss = 1u << 11,   // m
  kNotifyModule = 1u << 12,    // d
  kNotifyNew = 1u << 13,       // n
};
// "A": every class but m and n.
inline constexpr uint32_t kNotifyAll = kNotifyGeneric | kNotifyString | kNotifyList | kNotifySet |
                                       kNotifyHash | kNotifyZset | kNotifyExpired |
                                       kNotifyEvicted | kNotifyStream | kNotifyModule;

// Redis's keyspaceEventsStringToFlags: false on a character it does not know.
bool ParseNotifyFlags(std::string_view s, uint32_t* flags);
// Redis's keyspaceEventsFlagsToString ("AKE" for KEA).
std::string NotifyFlagsToString(uint32_t flags);
// The class of an event name as Redis emits it ("set": $, "lpush": l, ...);
// kNotifyGeneric for names it does not list (a module's: d is not guessed).
uint32_t EventClass(std::string_view event);

}  // namespace keyfence::tenancy
