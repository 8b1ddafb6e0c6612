#include "tenancy/notify_events.h"

#include <array>
#include <utility>

namespace keyfence::tenancy {

bool ParseNotifyFlags(std::string_view s, uint32_t* flags) {
  uint32_t f = 0;
  for (char c : s) {
    switch (c) {
      case 'A': f |= kNotifyAll; break;
      case 'g': f |= kNotifyGeneric; break;
      case '$': f |= kNotifyString; break;
      case 'l': f |= kNotifyList; break;
      case 's': f |= kNotifySet; break;
      case 'h': f |= kNotifyHash; break;
      case 'z': f |= kNotifyZset; break;
      case 'x': f |= kNotifyExpired; break;
      case 'e': f |= kNotifyEvicted; break;
      case 'K': f |= kNotifyKeyspace; break;
      case 'E': f |= kNotifyKeyevent; break;
      case 't': f |= kNotifyStream; break;
      case 'm': f |= kNotifyKeyMiss; break;
      case 'd': f |= kNotifyModule; break;
      case 'n': f |= kNotifyNew; break;
      default: return false;
    }
  }
  *flags = f;
  return true;
}

std::string NotifyFlagsToString(uint32_t f) {
  std::string s;
  if ((f & kNotifyAll) == kNotifyAll) {
    s += 'A';
  } else {
    constexpr std::pair<uint32_t, char> kOrder[] = {
        {kNotifyGeneric, 'g'}, {kNotifyString, '$'}, {kNotifyList, 'l'}, {kNotifySet, 's'},
        {kNotifyHash, 'h'},    {kNotifyZset, 'z'},   {kNotifyExpired, 'x'},
        {kNotifyEvicted, 'e'}, {kNotifyStream, 't'}, {kNotifyModule, 'd'}, {kNotifyNew, 'n'}};
    for (const auto& [bit, c] : kOrder) {
      if (f & bit) s += c;
    }
  }
  if (f & kNotifyKeyspace) s += 'K';
  if (f & kNotifyKeyevent) s += 'E';
  if (f & kNotifyKeyMiss) s += 'm';
  return s;
}

uint32_t EventClass(std::string_view e) {
  // The events Redis 7.0 emits with a class other than g (notify.c callers).
  static constexpr std::pair<std::string_view, uint32_t> kEvents[] = {
      {"set", kNotifyString},          {"setrange", kNotifyString},
      {"incrby", kNotifyString},       {"incrbyfloat", kNotifyString},
      {"append", kNotifyString},       {"lpush", kNotifyList},
      {"rpush", kNotifyList},          {"lpop", kNotifyList},
      {"rpop", kNotifyList},           {"linsert", kNotifyList},
      {"lset", kNotifyList},           {"lrem", kNotifyList},
      {"ltrim", kNotifyList},          {"sortstore", kNotifyList},
      {"sadd", kNotifySet},            {"srem", kNotifySet},
      {"spop", kNotifySet},            {"sinterstore", kNotifySet},
      {"sunionstore", kNotifySet},     {"sdiffstore", kNotifySet},
      {"hset", kNotifyHash},           {"hincrby", kNotifyHash},
      {"hincrbyfloat", kNotifyHash},   {"hdel", kNotifyHash},
      {"zincr", kNotifyZset},          {"zadd", kNotifyZset},
      {"zrem", kNotifyZset},           {"zremrangebyscore", kNotifyZset},
      {"zremrangebyrank", kNotifyZset}, {"zremrangebylex", kNotifyZset},
      {"zinterstore", kNotifyZset},    {"zunionstore", kNotifyZset},
      {"zdiffstore", kNotifyZset},     {"zpopmin", kNotifyZset},
      {"zpopmax", kNotifyZset},        {"zrangestore", kNotifyZset},
      {"xadd", kNotifyStream},         {"xtrim", kNotifyStream},
      {"xdel", kNotifyStream},         {"xgroup-create", kNotifyStream},
      {"xgroup-createconsumer", kNotifyStream}, {"xgroup-delconsumer", kNotifyStream},
      {"xgroup-destroy", kNotifyStream}, {"xgroup-setid", kNotifyStream},
      {"xsetid", kNotifyStream},       {"xclaim", kNotifyStream},
      {"xautoclaim", kNotifyStream},   {"expired", kNotifyExpired},
      {"evicted", kNotifyEvicted},     {"keymiss", kNotifyKeyMiss},
      {"new", kNotifyNew},
  };
  for (const auto& [name, cls] : kEvents) {
    if (name == e) return cls;
  }
  return kNotifyGeneric;
}

}  // namespace keyfence::tenancy
