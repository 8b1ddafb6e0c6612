#include "proxy/accounting/measure.h"

#include <hiredis/hiredis.h>

#include <memory>

#include "protocol/glob.h"
#include "proxy/backend/admin_link.h"

namespace keyfence::proxy::accounting {

namespace {

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

ReplyPtr Get(redisContext* c) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK) return {nullptr, freeReplyObject};
  return {static_cast<redisReply*>(r), freeReplyObject};
}

// One master's part: keys counted, memory of the sampled ones summed.
// False on a lost link or an error reply (e.g. NOPERM: the figure would be wrong).
bool MeasureNode(redisContext* c, const std::string& match, int64_t* keys, int64_t* sampled,
                 int64_t* memory, const std::atomic<bool>* cancel) {
  std::string cursor = "0";
  do {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) return false;
    const char* argv[] = {"SCAN", cursor.c_str(), "MATCH", match.c_str(), "COUNT", "1000"};
    const size_t lens[] = {4, cursor.size(), 5, match.size(), 5, 4};
    ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(c, 6, argv, lens)), freeReplyObject);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
      return false;
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    const redisReply* batch = r->element[1];
    *keys += static_cast<int64_t>(batch->elements);
    size_t asked = 0;
    for (size_t i = 0; i < batch->elements && *sampled < kMeasureSampleKeys; ++i, ++*sampled) {
      const char* margv[] = {"MEMORY", "USAGE", batch->element[i]->str};
      const size_t mlens[] = {6, 5, batch->element[i]->len};
      redisAppendCommandArgv(c, 3, margv, mlens);
      ++asked;
    }
    for (size_t i = 0; i < asked; ++i) {
      ReplyPtr m = Get(c);
      if (!m || m->type == REDIS_REPLY_ERROR) return false;
      if (m->type == REDIS_REPLY_INTEGER) *memory += m->integer;  // nil: deleted meanwhile
    }
  } while (cursor != "0");
  return true;
}

}  // namespace

NamespaceFigures MeasureNamespace(const std::vector<config::Endpoint>& masters,
                                  const config::Backend& be, std::string_view prefix,
                                  const std::atomic<bool>* cancel) {
  NamespaceFigures f;
  const std::string match = protocol::GlobEscape(prefix) + "*";
  int64_t sampled = 0, memory = 0;
  for (const config::Endpoint& m : masters) {
    AdminLink link = ConnectAdmin(m, be, "quota measurement");
    if (!link || !MeasureNode(link.get(), match, &f.keys, &sampled, &memory, cancel)) {
      f.error = "cannot measure on " + m.ToString();
      return f;
    }
  }
  f.memory = sampled == 0 ? 0 : memory * f.keys / sampled;  // extrapolated past the sample
  f.ok = true;
  return f;
}

NodeMemory PollMemory(const config::Endpoint& node, const config::Backend& be) {
  NodeMemory n;
  n.node = node.ToString();
  AdminLink link = ConnectAdmin(node, be, "memory poll");
  if (!link) return n;
  ReplyPtr r(static_cast<redisReply*>(redisCommand(link.get(), "INFO memory")), freeReplyObject);
  if (!r || r->type != REDIS_REPLY_STRING) return n;
  const std::string_view text(r->str, r->len);
  auto field = [&](std::string_view name, uint64_t* out) {
    const std::string key = "\n" + std::string(name) + ":";
    const size_t at = ("\n" + std::string(text)).find(key);
    if (at == std::string::npos) return false;
    *out = std::strtoull(text.data() + at + key.size() - 1, nullptr, 10);
    return true;
  };
  n.ok = field("used_memory", &n.used) && field("maxmemory", &n.maxmemory);
  return n;
}

}  // namespace keyfence::proxy::accounting
