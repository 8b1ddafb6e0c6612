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
#include <algorithm>

#include "protocol/error_replies.h"
#include "proxy/commands/families.h"
#include "proxy/commands/helpers.h"
#include "proxy/commands/sub_links.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy::commands {

namespace {

// The command's reply slot, filled once `backend_acks` acks are in.
std::shared_ptr<AckWait> Wait(CommandContext& ctx, std::string acks, size_t backend_acks) {
  auto wait = std::make_shared<AckWait>();
  wait->tag = ctx.Defer(tenancy::ReplyRule::kNone);
  wait->remaining = backend_acks;
  wait->data = std::move(acks);
  if (backend_acks == 0) ctx.Complete(wait->tag, wait->data);
  return wait;
}

// Applies (un)subscribing `names` to `set`, with Redis's acks (the count
// after each) appended to `acks`. Without names, unsubscribes every member.
void Apply(CommandContext& ctx, std::string_view cmd, bool unsub, bool shard,
           std::span<const std::string_view> names, std::string& acks) {
  PubSubState& ps = ctx.pubsub();
  auto& set = shard ? ps.shards : cmd[0] == 'p' ? ps.patterns : ps.channels;
  auto count = [&] { return shard ? ps.shard_count() : ps.classic_count(); };
  if (names.empty()) {  // UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE of everything
    std::vector<std::string> all(set.begin(), set.end());
    if (all.empty()) AppendAck(acks, ctx.proto(), cmd, nullptr, count());
    for (const std::string& n : all) {
      set.erase(n);
      AppendAck(acks, ctx.proto(), cmd, &n, count());
    }
    return;
  }
  for (std::string_view v : names) {
    std::string n(v);
    if (unsub) {
      set.erase(n);
    } else {
      set.insert(n);
    }
    AppendAck(acks, ctx.proto(), cmd, &n, count());
  }
}

// Cluster, with keyspace-notification names: the classic link takes the
// whole command, every other master's link its notification names; the
// client's acks complete once every node has acked.
bool SubscribeEverywhere(CommandContext& ctx, std::string_view name, bool unsub,
                         const std::vector<std::string_view>& names) {
  PubSubState& ps = ctx.pubsub();
  SubLink* classic = ClassicLink(ctx, !Restoring(ps));
  if (classic == nullptr && !Restoring(ps)) return true;  // the error was sent
  std::vector<SubLink*> masters;
  if (unsub) {  // where they are held (a master never subscribed owes no acks)
    for (auto& l : ps.links) {
      if (l->keyspace) masters.push_back(l.get());
    }
  } else if (!KeyspaceLinks(ctx, &masters)) {
    return true;  // the error was sent
  }
  const auto& set = name[0] == 'p' ? ps.patterns : ps.channels;
  std::vector<std::string_view> notif;
  for (std::string_view n : names) {
    if (IsNotificationName(n)) notif.push_back(n);
  }
  const size_t in_set = static_cast<size_t>(std::count_if(set.begin(), set.end(), IsNotificationName));
  // Without names, a node acks each member it drops (or once, null).
  const size_t classic_count = names.empty() ? std::max<size_t>(1, set.size()) : names.size();
  const size_t other_count = names.empty() ? std::max<size_t>(1, in_set) : notif.size();
  std::vector<SubLink*> others;
  for (SubLink* l : masters) {
    if (l != classic) others.push_back(l);
    if (!unsub) l->keyspace = true;
  }
  std::string acks;
  Apply(ctx, name, unsub, false, names, acks);
  auto wait = Wait(ctx, std::move(acks), classic_count + other_count * others.size());
  LinkAcks a;
  a.bytes = SubRequest(ctx.tenant()->prefix, name, false, names);
  a.count = classic_count;
  a.wait = wait;
  SendPart(ctx, classic, std::move(a));
  for (SubLink* l : others) {
    LinkAcks o;
    o.bytes = SubRequest(ctx.tenant()->prefix, name, false, names.empty() ? names : notif);
    o.count = other_count;
    o.wait = wait;
    SendPart(ctx, l, std::move(o));
  }
  return true;
}

// SUBSCRIBE / PSUBSCRIBE / UNSUBSCRIBE / PUNSUBSCRIBE on the classic link.
bool SubscribeClassic(CommandContext& ctx, std::string_view name, bool unsub) {
  PubSubState& ps = ctx.pubsub();
  auto args = ctx.args();
  std::vector<std::string_view> names(args.begin() + 1, args.end());
  // A cluster emits a key's notifications on the key's node only: those
  // channels and patterns go to every master.
  if (ctx.backend().Masters().size() > 1) {
    const auto& set = name[0] == 'p' ? ps.patterns : ps.channels;
    const bool some = names.empty()
                          ? unsub && std::any_of(set.begin(), set.end(), IsNotificationName)
                          : std::any_of(names.begin(), names.end(), IsNotificationName);
    if (some) return SubscribeEverywhere(ctx, name, unsub, names);
  }
  if (unsub && ps.classic == nullptr && !ps.classic_lost) {  // nothing classic subscribed
    std::string acks;
    Apply(ctx, name, true, false, names, acks);
    ctx.BeginPush().append(acks);
    ctx.EndReply();
    return true;
  }
  SubLink* link = ClassicLink(ctx, !Restoring(ps));
  if (link == nullptr && !Restoring(ps)) return true;  // the error was sent
  const auto& set = name[0] == 'p' ? ps.patterns : ps.channels;
  LinkAcks a;
  a.bytes = SubRequest(ctx.tenant()->prefix, name, false, names);
  // Without names, the node acks each member it drops (or once, null).
  a.count = names.empty() ? std::max<size_t>(1, set.size()) : names.size();
  std::string acks;
  Apply(ctx, name, unsub, false, names, acks);
  a.wait = Wait(ctx, std::move(acks), a.count);
  SendPart(ctx, link, std::move(a));
  return true;
}

// SUNSUBSCRIBE without channels: on every link that holds shard channels.
bool UnsubscribeAllShards(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  if (!ps.parked.empty()) return false;  // after the commands still waiting to be sent
  std::string acks;
  Apply(ctx, "sunsubscribe", true, true, {}, acks);
  ps.orphans.clear();
  size_t backend_acks = 0;
  for (const auto& l : ps.links) backend_acks += l->shard.size();
  auto wait = Wait(ctx, std::move(acks), backend_acks);
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

// The link a shard channel is subscribed on (null: none).
SubLink* Holder(PubSubState& ps, std::string_view ch) {
  const std::string key(ch);
  for (auto& l : ps.links) {
    if (l->shard.contains(key)) return l.get();
  }
  return nullptr;
}

struct SlotGroup {
  int slot;
  SubLink* link;  // null: waiting for a connection (restoring)
  std::vector<std::string_view> names;
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
  // otherwise), even on the same node. Unsubscribing where no connection is
  // has nothing to ask a node.
  std::vector<SlotGroup> groups;
  for (size_t i = 1; i < args.size(); ++i) {
    const int slot = tenancy::BackendKeySlot(ctx.prefix_crc(), args[i]);
    size_t g = 0;
    while (g < groups.size() && groups[g].slot != slot) ++g;
    if (g == groups.size()) {
      SubLink* l = unsub ? Holder(ps, args[i]) : nullptr;
      if (l == nullptr) l = LinkFor(ctx, slot, !unsub, !unsub && !restoring);
      if (l == nullptr && !unsub && !restoring) return true;  // the error was sent
      groups.push_back({slot, l, {}});
    }
    groups[g].names.push_back(args[i]);
  }
  std::string acks;
  Apply(ctx, name, unsub, true, args.subspan(1), acks);
  size_t backend_acks = 0;
  for (const SlotGroup& g : groups) {
    if (g.link != nullptr || !unsub) backend_acks += g.names.size();
  }
  auto wait = Wait(ctx, std::move(acks), backend_acks);
  for (SlotGroup& g : groups) {
    if (unsub) {
      for (std::string_view n : g.names) {  // wherever keyfence holds it
        std::string ch(n);
        ps.orphans.erase(ch);
        for (auto& l : ps.links) l->shard.erase(ch);
      }
      if (g.link == nullptr) continue;
    }
    LinkAcks a;
    a.wait = wait;
    a.count = g.names.size();
    a.slot = g.slot;
    a.shard = true;
    a.subscribe = !unsub;
    a.names.assign(g.names.begin(), g.names.end());
    a.bytes = SubRequest(ctx.tenant()->prefix, name, true, g.names);
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
}

}  // namespace keyfence::proxy::commands
