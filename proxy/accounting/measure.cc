#include "proxy/accounting/measure.h"

#include <memory>

#include "protocol/glob.h"
#include "proxy/backend/control_link.h"

namespace keyfence::proxy::accounting {

namespace {

// False on a lost link or an error reply (e.g. NOPERM: the figure would be wrong).
bool MeasureNode(ControlLink& c, const std::string& match, int64_t* keys, int64_t* sampled,
                 int64_t* memory, const std::atomic<bool>* cancel) {
  std::string cursor = "0";
  do {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) return false;
    std::optional<ControlReply> r =
        c.Command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"});
    if (!r || !r->is_array() || r->elements.size() != 2 || !r->elements[1].is_array()) {
      return false;
    }
    cursor = r->elements[0].str;
    const std::vector<ControlReply>& batch = r->elements[1].elements;
    *keys += static_cast<int64_t>(batch.size());
    size_t asked = 0;
    for (size_t i = 0; i < batch.size() && *sampled < kMeasureSampleKeys; ++i, ++*sampled) {
      c.Append({"MEMORY", "USAGE", batch[i].str});
      ++asked;
    }
    for (size_t i = 0; i < asked; ++i) {
      std::optional<ControlReply> m = c.Next();
      if (!m || m->is_error()) return false;
      if (m->type == protocol::ReplyType::kInteger) *memory += m->integer;  // nil: deleted meanwhile
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
    std::unique_ptr<ControlLink> link = ControlLink::Open(m, be, "quota measurement", cancel);
    if (!link || !MeasureNode(*link, match, &f.keys, &sampled, &memory, cancel)) {
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
  std::unique_ptr<ControlLink> link = ControlLink::Open(node, be, "memory poll");
  if (!link) return n;
  std::optional<ControlReply> r = link->Command({"INFO", "memory"});
  if (!r || !r->is_string()) return n;
  const std::string_view text(r->str);
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
