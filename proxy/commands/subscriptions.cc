// A client's subscriptions over any backend: one subscriber connection per
// node it needs (Redis Cluster serves a shard channel only on the node of its
// slot), so a client may (S)SUBSCRIBE to channels of any slots on one
// connection. Classic channels and patterns live on the first connection.
//
// Order: a (un)subscribe command with channels takes a reply slot that fills
// with its acks, whichever connections they come from; messages and other
// pushes go out after every reply owed when they arrive. Shard acks carry the
// client's total shard count (the sum over its connections). A MOVED reply to
// a subscribe (a stale slot table) is followed here and never forwarded.
// Worker-local.
#include "protocol/error_replies.h"
#include "protocol/reply_parser.h"
#include "proxy/commands/families.h"
#include "proxy/commands/helpers.h"
#include "tenancy/namespace.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy::commands {

namespace {

constexpr int kMaxResends = 5;

// SSUBSCRIBE / SUNSUBSCRIBE (and their acks), as opposed to (P)(UN)SUBSCRIBE.
bool IsShard(std::string_view name) { return name == "ssubscribe" || name == "sunsubscribe"; }

void OnLinkFrame(CommandContext& ctx, SubLink& link, std::string_view frame);

// Routes a subscriber connection's frames back with the link they came on.
class LinkSink final : public UnsolicitedSink {
 public:
  LinkSink(CommandContext& ctx, SubLink& link) : ctx_(ctx), link_(link) {}
  void OnUnsolicited(std::string_view frame) override { OnLinkFrame(ctx_, link_, frame); }
  void OnBackendClosed() override { ctx_.CloseWithError(protocol::errors::kSubscriberLost); }

 private:
  CommandContext& ctx_;
  SubLink& link_;
};

SubLink* FindLink(PubSubState& ps, const config::Endpoint& ep) {
  for (auto& l : ps.links) {
    const config::Endpoint& e = l->conn->endpoint();
    if (e.host == ep.host && e.port == ep.port) return l.get();
  }
  return nullptr;
}

// The subscriber connection to the node serving `slot`, opened if needed;
// null (and an error reply) if no node is known for it.
SubLink* LinkFor(CommandContext& ctx, int slot, bool open) {
  config::Endpoint ep;
  if (!ctx.backend().NodeFor(slot, &ep)) {
    if (open) ctx.ReplyError(protocol::errors::kTopologyUnknown);
    return nullptr;
  }
  PubSubState& ps = ctx.pubsub();
  if (SubLink* l = FindLink(ps, ep)) return l;
  if (!open) return nullptr;
  auto link = std::make_unique<SubLink>();
  link->conn = ctx.backend().DedicatedTo(ep, ctx.proto());
  if (!link->conn) {
    ctx.ReplyError(protocol::errors::kTopologyUnknown);
    return nullptr;
  }
  if (!link->conn->Available()) {  // connects it
    ctx.ReplyError(link->conn->down_error());
    return nullptr;
  }
  link->sink = std::make_unique<LinkSink>(ctx, *link);
  link->conn->set_unsolicited(link->sink.get());
  ps.links.push_back(std::move(link));
  return ps.links.back().get();
}

void Send(SubLink& link, LinkAcks acks) {
  link.conn->out().append(acks.bytes);
  link.conn->MarkDirty();
  if (acks.count > 0) link.acks.push_back(std::move(acks));
}

// One ack into its command's reply slot (completed when all are in).
void AddAck(CommandContext& ctx, SubLink& link, std::string_view client_frame) {
  LinkAcks& a = link.acks.front();
  std::shared_ptr<AckWait> wait = a.wait;
  wait->data.append(client_frame);
  if (--a.count == 0) link.acks.pop_front();
  if (--wait->remaining == 0) ctx.Complete(wait->tag, wait->data);
}

void AppendAck(std::string& out, int proto, std::string_view kind, const std::string* channel,
               int64_t count) {
  if (proto == 3) {
    out.append(">3\r\n");
  } else {
    protocol::AppendArrayHeader(out, 3);
  }
  protocol::AppendBulk(out, kind);
  if (channel != nullptr) {
    protocol::AppendBulk(out, *channel);
  } else {
    protocol::AppendNull(out, proto);
  }
  protocol::AppendInteger(out, count);
}

int64_t ShardTotal(const PubSubState& ps) {
  int64_t n = 0;
  for (const auto& l : ps.links) n += l->shard_subs;
  return n;
}

// Nothing subscribed and no ack owed: the connections go.
void MaybeDrop(CommandContext& ctx) {
  const ConnState& st = ctx.state();
  if (st.classic_subs != 0 || st.shard_subs != 0) return;
  for (const auto& l : ctx.pubsub().links) {
    if (!l->acks.empty()) return;
  }
  DropSubscriptions(ctx);
}

// A command on this link failed: a redirect is followed (the part is sent
// again where the slot lives now); another error stands for its acks.
void OnLinkError(CommandContext& ctx, SubLink& link, std::string_view frame) {
  std::string e;
  if (link.acks.empty()) {
    tenancy::AppendErrorStripped(frame, ctx.tenant()->prefix, e);
    ctx.BeginPush().append(e);
    ctx.EndReply();
    return;
  }
  LinkAcks a = std::move(link.acks.front());
  link.acks.pop_front();
  if (ctx.backend().NoteRedirect(frame) && a.resends < kMaxResends) {
    ++a.resends;
    if (SubLink* to = LinkFor(ctx, a.slot, true)) return Send(*to, std::move(a));
    protocol::AppendError(e, protocol::errors::kTopologyUnknown);
  } else if (frame.starts_with("-MOVED") || frame.starts_with("-ASK")) {
    protocol::AppendError(e, protocol::errors::kTooManyRedirects);
  } else {
    tenancy::AppendErrorStripped(frame, ctx.tenant()->prefix, e);
  }
  a.wait->data.append(e);
  a.wait->remaining -= std::min(a.wait->remaining, a.count);
  if (a.wait->remaining == 0) ctx.Complete(a.wait->tag, a.wait->data);
}

void OnLinkFrame(CommandContext& ctx, SubLink& link, std::string_view frame) {
  if (frame.empty()) return;
  if (frame[0] == '-' || frame[0] == '!') return OnLinkError(ctx, link, frame);
  ConnState& st = ctx.state();
  PubSubState& ps = ctx.pubsub();
  std::vector<protocol::ReplyNode> n;
  const bool ack = protocol::ParseReplyTree(frame, &n) && n.size() >= 4 && n[0].count == 3 &&
                   n[3].type == protocol::ReplyType::kInteger &&
                   n[1].str.find("subscribe") != std::string_view::npos;
  if (!ack) {  // message / pmessage / smessage / pong
    tenancy::ReplyContext rc{ctx.tenant()->prefix, "", st.proto};
    tenancy::RewriteReply(tenancy::ReplyRule::kPubSub, frame, rc, ctx.BeginPush());
    ctx.EndReply();
    return;
  }
  const std::string_view kind = n[1].str;
  const bool shard = IsShard(kind);
  if (shard) {
    link.shard_subs = n[3].integer;
    st.shard_subs = ShardTotal(ps);
  } else {
    link.classic_subs = n[3].integer;
    st.classic_subs = n[3].integer;
  }
  std::string channel;
  bool named = !n[2].is_null;
  if (named) {
    named = shard ? tenancy::AppendClientKey(channel, ctx.tenant()->prefix, n[2].str)
                  : tenancy::AppendClientChannel(channel, ctx.tenant()->prefix, n[2].str);
  }
  std::string out;
  AppendAck(out, st.proto, kind, named ? &channel : nullptr,
            shard ? st.shard_subs : st.classic_subs);
  if (!link.acks.empty()) {
    AddAck(ctx, link, out);
  } else {  // unasked (a server-side sunsubscribe, UNSUBSCRIBE of everything)
    ctx.BeginPush().append(out);
    ctx.EndReply();
  }
  MaybeDrop(ctx);
}

// A request with the rewritten names of args[from..] of `args`.
std::string Request(CommandContext& ctx, std::string_view name, bool shard,
                    const std::vector<size_t>& positions) {
  auto args = ctx.args();
  const std::string& prefix = ctx.tenant()->prefix;
  std::string b;
  protocol::AppendArrayHeader(b, positions.size() + 1);
  protocol::AppendBulk(b, name);
  for (size_t p : positions) {
    if (shard) {
      protocol::AppendBulkHeader(b, tenancy::BackendKeyLength(prefix, args[p]));
      tenancy::AppendBackendKey(b, prefix, args[p]);
    } else {
      protocol::AppendBulkHeader(b, tenancy::BackendChannelLength(prefix, args[p]));
      tenancy::AppendBackendChannel(b, prefix, args[p]);
    }
    b.append("\r\n");
  }
  return b;
}

// SUBSCRIBE / PSUBSCRIBE / UNSUBSCRIBE / PUNSUBSCRIBE on the classic link.
bool SubscribeClassic(CommandContext& ctx, std::string_view name, bool unsub) {
  PubSubState& ps = ctx.pubsub();
  auto args = ctx.args();
  if (ps.classic == nullptr) {
    if (unsub) {  // nothing subscribed: Redis's acks, locally
      std::string out;
      if (args.size() == 1) AppendAck(out, ctx.proto(), name, nullptr, 0);
      for (size_t i = 1; i < args.size(); ++i) {
        std::string ch(args[i]);
        AppendAck(out, ctx.proto(), name, &ch, 0);
      }
      ctx.BeginPush().append(out);
      ctx.EndReply();
      return true;
    }
    ps.classic = LinkFor(ctx, kAnySlot, true);
    if (ps.classic == nullptr) return true;
  }
  std::vector<size_t> pos;
  for (size_t i = 1; i < args.size(); ++i) pos.push_back(i);
  LinkAcks a;
  a.bytes = Request(ctx, name, false, pos);
  if (!pos.empty()) {  // with channels: the acks fill a reply slot, in order
    a.wait = std::make_shared<AckWait>();
    a.wait->tag = ctx.Defer(tenancy::ReplyRule::kNone);
    a.wait->remaining = a.count = pos.size();
  }
  Send(*ps.classic, std::move(a));
  return true;
}

// SUNSUBSCRIBE without channels: every link with shard channels.
bool UnsubscribeAllShards(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  auto wait = std::make_shared<AckWait>();
  for (auto& l : ps.links) wait->remaining += static_cast<size_t>(l->shard_subs);
  if (wait->remaining == 0) {
    AppendAck(ctx.BeginPush(), ctx.proto(), "sunsubscribe", nullptr, 0);
    ctx.EndReply();
    return true;
  }
  wait->tag = ctx.Defer(tenancy::ReplyRule::kNone);
  for (auto& l : ps.links) {
    if (l->shard_subs == 0) continue;
    LinkAcks a;
    a.wait = wait;
    a.count = static_cast<size_t>(l->shard_subs);
    protocol::AppendCommand(a.bytes, {"SUNSUBSCRIBE"});
    Send(*l, std::move(a));
  }
  return true;
}

}  // namespace

bool Subscribe(CommandContext& ctx, const protocol::CommandInfo& cmd) {
  std::string name(cmd.name);
  const bool unsub = name.find("unsub") != std::string::npos;
  if (!IsShard(name)) return SubscribeClassic(ctx, name, unsub);
  auto args = ctx.args();
  if (args.size() == 1) return UnsubscribeAllShards(ctx);
  // Shard channels: grouped by slot, on the connection to the slot's node.
  std::vector<std::pair<SubLink*, std::vector<size_t>>> groups;
  std::vector<int> slots;
  std::string local;  // acks of unsubscribes where nothing is subscribed
  size_t local_acks = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    const int slot = tenancy::BackendKeySlot(ctx.prefix_crc(), args[i]);
    SubLink* l = LinkFor(ctx, slot, !unsub);
    if (l == nullptr) {
      if (!unsub) return true;  // the error was sent
      std::string ch(args[i]);
      AppendAck(local, ctx.proto(), name, &ch, ShardTotal(ctx.pubsub()));
      ++local_acks;
      continue;
    }
    // One request per slot: Redis Cluster takes shard channels of one slot
    // per SSUBSCRIBE (CROSSSLOT otherwise), even on the same node.
    size_t g = 0;
    while (g < groups.size() && slots[g] != slot) ++g;
    if (g == groups.size()) {
      groups.push_back({l, {}});
      slots.push_back(slot);
    }
    groups[g].second.push_back(i);
  }
  auto wait = std::make_shared<AckWait>();
  wait->tag = ctx.Defer(tenancy::ReplyRule::kNone);
  wait->remaining = args.size() - 1 - local_acks;
  wait->data = std::move(local);
  if (wait->remaining == 0) {
    ctx.Complete(wait->tag, wait->data);
    return true;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    LinkAcks a;
    a.wait = wait;
    a.count = groups[g].second.size();
    a.slot = slots[g];
    a.bytes = Request(ctx, name, true, groups[g].second);
    Send(*groups[g].first, std::move(a));
  }
  return true;
}

void PingSubscribed(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  SubLink* l = ps.classic != nullptr ? ps.classic : ps.links.front().get();
  l->conn->out().append(Verbatim(ctx));
  l->conn->MarkDirty();
}

void DropSubscriptions(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  for (auto& l : ps.links) {
    l->conn->set_unsolicited(nullptr);
    ctx.Retire(std::move(l->conn));
  }
  ps.links.clear();
  ps.classic = nullptr;
  ctx.state().classic_subs = ctx.state().shard_subs = 0;
}

}  // namespace keyfence::proxy::commands
