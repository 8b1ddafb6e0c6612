// The subscription commands over any backend, on the client's subscriber
// connections (sub_links.h): one per node it needs (Redis Cluster serves a
// shard channel only on the node of its slot), so a client may (S)SUBSCRIBE
// to channels of any slots on one connection. Classic channels and patterns
// live on one connection (any node serves them).
//
// Order: a (un)subscribe command takes a reply slot that fills with its acks,
// whichever connections they come from; messages and other pushes go out
// after every reply owed when they arrive. Shard acks carry the client's
// total shard count (the sum over its connections). Redirects are followed
// and lost subscriptions restored by sub_links.cc, never shown to the client.
// Worker-local.
#include "protocol/error_replies.h"
#include "proxy/commands/families.h"
#include "proxy/commands/helpers.h"
#include "proxy/commands/sub_links.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy::commands {

namespace {

// Redis's acks for unsubscribing what is not subscribed, answered locally.
void LocalUnsubscribeAcks(CommandContext& ctx, std::string_view name, int64_t count) {
  auto args = ctx.args();
  std::string out;
  if (args.size() == 1) AppendAck(out, ctx.proto(), name, nullptr, count);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string ch(args[i]);
    AppendAck(out, ctx.proto(), name, &ch, count);
  }
  ctx.BeginPush().append(out);
  ctx.EndReply();
}

// SUBSCRIBE / PSUBSCRIBE / UNSUBSCRIBE / PUNSUBSCRIBE on the classic link.
bool SubscribeClassic(CommandContext& ctx, std::string_view name, bool unsub) {
  PubSubState& ps = ctx.pubsub();
  if (unsub && ps.classic == nullptr && !ps.classic_lost) {
    LocalUnsubscribeAcks(ctx, name, 0);  // nothing classic is subscribed
    return true;
  }
  SubLink* link = ClassicLink(ctx, !Restoring(ps));
  if (link == nullptr && !Restoring(ps)) return true;  // the error was sent
  auto args = ctx.args();
  std::vector<std::string_view> names(args.begin() + 1, args.end());
  auto& set = name[0] == 'p' ? ps.patterns : ps.channels;
  LinkAcks a;
  a.bytes = SubRequest(ctx.tenant()->prefix, name, false, names);
  // Without names, UNSUBSCRIBE acks each channel it drops (or once, null).
  a.count = names.empty() ? std::max<size_t>(1, set.size()) : names.size();
  if (!unsub) {
    for (std::string_view n : names) set.emplace(n);
  } else if (names.empty()) {
    set.clear();
  } else {
    for (std::string_view n : names) set.erase(std::string(n));
  }
  a.wait = std::make_shared<AckWait>();
  a.wait->tag = ctx.Defer(tenancy::ReplyRule::kNone);
  a.wait->remaining = a.count;
  SendPart(ctx, link, std::move(a));
  return true;
}

// SUNSUBSCRIBE without channels: every link's shard channels, and locally
// those waiting for a connection.
bool UnsubscribeAllShards(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  if (!ps.parked.empty()) return false;  // after the commands still waiting to be sent
  std::string local;
  size_t remaining = 0;
  for (const auto& l : ps.links) remaining += l->shard.size();
  int64_t left = static_cast<int64_t>(remaining + ps.orphans.size());
  for (const std::string& ch : ps.orphans) AppendAck(local, ctx.proto(), "sunsubscribe", &ch, --left);
  ps.orphans.clear();
  if (remaining == 0) {
    if (local.empty()) AppendAck(local, ctx.proto(), "sunsubscribe", nullptr, 0);
    ctx.state().shard_subs = ShardTotal(ps);
    ctx.BeginPush().append(local);
    ctx.EndReply();
    return true;
  }
  auto wait = std::make_shared<AckWait>();
  wait->tag = ctx.Defer(tenancy::ReplyRule::kNone);
  wait->remaining = remaining;
  wait->data = std::move(local);
  for (auto& l : ps.links) {
    if (l->shard.empty()) continue;
    LinkAcks a;
    a.wait = wait;
    a.count = l->shard.size();
    a.shard = true;
    a.names.assign(l->shard.begin(), l->shard.end());
    protocol::AppendCommand(a.bytes, {"SUNSUBSCRIBE"});
    SendPart(ctx, l.get(), std::move(a));
  }
  return true;
}

// The client unsubscribes these shard channels: wherever keyfence holds them.
void ForgetShardChannel(PubSubState& ps, const std::string& ch) {
  ps.orphans.erase(ch);
  for (auto& l : ps.links) l->shard.erase(ch);
}

struct SlotGroup {
  int slot;
  SubLink* link;  // null: waiting for a connection (restoring)
  std::vector<size_t> args;
};

}  // namespace

bool Subscribe(CommandContext& ctx, const protocol::CommandInfo& cmd) {
  std::string name(cmd.name);
  const bool unsub = name.find("unsub") != std::string::npos;
  if (name != "ssubscribe" && name != "sunsubscribe") return SubscribeClassic(ctx, name, unsub);
  auto args = ctx.args();
  if (args.size() == 1) return UnsubscribeAllShards(ctx);
  PubSubState& ps = ctx.pubsub();
  const bool restoring = Restoring(ps);
  // Shard channels: grouped by slot, on the connection to the slot's node.
  // Redis Cluster takes shard channels of one slot per SSUBSCRIBE (CROSSSLOT
  // otherwise), even on the same node.
  std::vector<SlotGroup> groups;
  std::vector<size_t> local;  // unsubscribes where nothing is subscribed
  for (size_t i = 1; i < args.size(); ++i) {
    const int slot = tenancy::BackendKeySlot(ctx.prefix_crc(), args[i]);
    size_t g = 0;
    while (g < groups.size() && groups[g].slot != slot) ++g;
    if (g == groups.size()) {
      SubLink* l = LinkFor(ctx, slot, !unsub, !unsub && !restoring);
      if (l == nullptr && !unsub && !restoring) return true;  // the error was sent
      if (l == nullptr && unsub) {
        local.push_back(i);
        continue;
      }
      groups.push_back({slot, l, {}});
    }
    groups[g].args.push_back(i);
  }
  if (unsub) {
    for (size_t i = 1; i < args.size(); ++i) ForgetShardChannel(ps, std::string(args[i]));
  }
  auto wait = std::make_shared<AckWait>();
  wait->tag = ctx.Defer(tenancy::ReplyRule::kNone);
  wait->remaining = args.size() - 1 - local.size();
  const int64_t total = ShardTotal(ps);
  for (size_t i : local) {
    std::string ch(args[i]);
    AppendAck(wait->data, ctx.proto(), name, &ch, total);
  }
  if (wait->remaining == 0) {
    ctx.Complete(wait->tag, wait->data);
    return true;
  }
  for (SlotGroup& g : groups) {
    LinkAcks a;
    a.wait = wait;
    a.count = g.args.size();
    a.slot = g.slot;
    a.shard = true;
    a.subscribe = !unsub;
    std::vector<std::string_view> names;
    for (size_t i : g.args) {
      names.push_back(args[i]);
      a.names.emplace_back(args[i]);
    }
    a.bytes = SubRequest(ctx.tenant()->prefix, name, true, names);
    SendPart(ctx, g.link, std::move(a));
  }
  return true;
}

void PingSubscribed(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  SubLink* l = ps.classic != nullptr ? ps.classic
               : ps.links.empty()    ? nullptr
                                     : ps.links.front().get();
  if (l == nullptr) {  // every connection is being restored: Redis's answer, locally
    auto args = ctx.args();
    std::string& out = ctx.BeginPush();
    protocol::AppendArrayHeader(out, 2);
    protocol::AppendBulk(out, "pong");
    protocol::AppendBulk(out, args.size() > 1 ? args[1] : std::string_view());
    ctx.EndReply();
    return;
  }
  l->conn->out().append(Verbatim(ctx));
  l->conn->MarkDirty();
}

void DropSubscriptions(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  for (auto& l : ps.links) {
    l->conn->set_unsolicited(nullptr);
    ctx.Retire(std::move(l->conn));
  }
  ps = PubSubState();
  ctx.state().classic_subs = ctx.state().shard_subs = 0;
}

}  // namespace keyfence::proxy::commands
