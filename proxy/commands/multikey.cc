// MGET, MSET, DEL, UNLINK, EXISTS, TOUCH over keys of several slots: split
// into one request per slot, sent in parallel, merged by a FanOut in the
// client's order (DESIGN.md: as Redis would answer with one node).
#include <algorithm>

#include "proxy/commands/families.h"
#include "proxy/commands/fanout.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy::commands {

namespace {
// Arguments per key: MSET takes key value pairs.
int StepOf(const protocol::CommandInfo& cmd) { return cmd.name == "mset" ? 2 : 1; }
}  // namespace

bool Splittable(const protocol::CommandInfo& cmd) {
  const std::string_view n = cmd.name;
  return n == "mget" || n == "mset" || n == "del" || n == "unlink" || n == "exists" ||
         n == "touch";
}

void SplitBySlot(CommandContext& ctx, const protocol::CommandInfo& cmd) {
  auto args = ctx.args();
  const int step = StepOf(cmd);
  const std::string& prefix = ctx.tenant()->prefix;
  // Group the keys (and MSET values) by slot, keeping the client's order.
  std::vector<std::pair<int, std::vector<size_t>>> groups;  // slot -> arg positions
  for (size_t i = 1; i + step - 1 < args.size(); i += step) {
    int s = tenancy::BackendKeySlot(ctx.prefix_crc(), args[i]);
    auto it = std::find_if(groups.begin(), groups.end(),
                           [s](const auto& g) { return g.first == s; });
    if (it == groups.end()) {
      groups.push_back({s, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(i);
  }
  FanOut::Kind kind = cmd.name == "mget"   ? FanOut::Kind::kMget
                      : cmd.name == "mset" ? FanOut::Kind::kMset
                                           : FanOut::Kind::kSum;
  uint64_t tag = ctx.Defer(tenancy::ReplyRule::kNone);
  auto f = std::make_unique<FanOut>(ctx, kind, tag, groups.size(), (args.size() - 1) / step,
                                    ctx.proto());
  f->SetNames(prefix, "");
  FanOut* raw = f.get();
  ctx.Adopt(std::move(f));
  std::string upper(cmd.name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string bytes;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& pos = groups[g].second;
    bytes.clear();
    protocol::AppendArrayHeader(bytes, 1 + pos.size() * step);
    protocol::AppendBulk(bytes, upper);
    std::vector<size_t> client_pos;
    for (size_t p : pos) {
      protocol::AppendBulkHeader(bytes, tenancy::BackendKeyLength(prefix, args[p]));
      tenancy::AppendBackendKey(bytes, prefix, args[p]);
      bytes.append("\r\n");
      if (step == 2) protocol::AppendBulk(bytes, args[p + 1]);
      client_pos.push_back((p - 1) / step);
    }
    raw->SetPositions(g, std::move(client_pos));
    ctx.backend().Send(bytes, groups[g].first, ctx.proto(), ctx.hint(), raw, g);
  }
}

}  // namespace keyfence::proxy::commands
