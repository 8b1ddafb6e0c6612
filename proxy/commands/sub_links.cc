// Subscriber connections: see sub_links.h.
//
// What the client is subscribed to is kept as client names: its classic
// channels and patterns (PubSubState), and per link the shard channels that
// node serves (SubLink::shard). Two events take subscriptions away without
// the client asking, and both are repaired here:
// - a slot moved (a reshard): Redis 7 tells the old owner's subscribers with
//   an unasked `sunsubscribe <channel>`; the channel is subscribed again on
//   the slot's node now (a MOVED on the way is followed);
// - a connection was lost (a node down, a failover): its shard channels
//   become orphans, its classic set is marked lost, and the command parts it
//   still owed acks for are parked; all are sent again on new connections,
//   retried with backoff (20 ms doubling to 1 s) for
//   backend.subscriber_recovery_ms, after which the client is closed with an
//   error (as a direct Redis connection would be). Messages published while
//   a connection is down are lost, as with Redis pub/sub itself.
// keyfence's own resubscribe requests are parts with no reply slot: their
// acks update the counts and go no further.
#include "proxy/commands/sub_links.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "protocol/reply_parser.h"
#include "protocol/slot.h"
#include "proxy/commands/families.h"
#include "proxy/net/loop.h"
#include "tenancy/namespace.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy::commands {

namespace {

constexpr int kMaxResends = 5;  // MOVED hops for one part
constexpr uint32_t kRetryFirstMs = 20;
constexpr uint32_t kRetryMaxMs = 1000;

void OnLinkFrame(CommandContext& ctx, SubLink& link, std::string_view frame);
void LinkLost(CommandContext& ctx, SubLink& link);
void ScheduleRestore(CommandContext& ctx);
void Restore(CommandContext& ctx);

// Routes a subscriber connection's frames back with the link they came on.
class LinkSink final : public UnsolicitedSink {
 public:
  LinkSink(CommandContext& ctx, SubLink& link) : ctx_(ctx), link_(link) {}
  void OnUnsolicited(std::string_view frame) override { OnLinkFrame(ctx_, link_, frame); }
  // Deletes the link and this sink: nothing may follow the call.
  void OnBackendClosed() override { LinkLost(ctx_, link_); }

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

SubLink* OpenLink(CommandContext& ctx, const config::Endpoint& ep, bool reply) {
  if (!ctx.ClaimDedicated()) {
    if (reply) ctx.ReplyError(protocol::errors::kTooManyDedicated);
    return nullptr;
  }
  auto link = std::make_unique<SubLink>();
  link->conn = ctx.backend().DedicatedTo(ep, ctx.proto(), ctx.own_hint().user);
  if (!link->conn || !link->conn->Available()) {  // Available() connects it
    if (reply) {
      ctx.ReplyError(link->conn ? link->conn->down_error() : protocol::errors::kTopologyUnknown);
    }
    if (link->conn) ctx.Retire(std::move(link->conn));
    return nullptr;
  }
  link->sink = std::make_unique<LinkSink>(ctx, *link);
  link->conn->set_unsolicited(link->sink.get());
  PubSubState& ps = ctx.pubsub();
  ps.links.push_back(std::move(link));
  return ps.links.back().get();
}

// Writes a part on its connection; it owes acks there from now on.
void Transmit(SubLink& link, LinkAcks part) {
  if (part.shard) {
    for (const std::string& n : part.names) {
      if (part.subscribe) {
        link.shard.insert(n);
      } else {
        link.shard.erase(n);
      }
    }
  }
  link.conn->out().append(part.bytes);
  link.conn->MarkDirty();
  if (part.count > 0) link.acks.push_back(std::move(part));
}

// keyfence's own SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE of `names` on `link`.
void SendSilent(CommandContext& ctx, SubLink& link, std::string_view cmd, bool shard, int slot,
                std::vector<std::string> names) {
  if (names.empty()) return;
  LinkAcks a;
  a.count = names.size();
  a.slot = slot;
  a.shard = shard;
  a.subscribe = true;
  std::vector<std::string_view> v(names.begin(), names.end());
  a.bytes = SubRequest(ctx.tenant()->prefix, cmd, shard, v);
  a.names = std::move(names);
  Transmit(link, std::move(a));
}

void Park(CommandContext& ctx, LinkAcks part) {
  ctx.pubsub().parked.push_back(std::move(part));
  ScheduleRestore(ctx);
}

// `n` backend acks of a client command are in (or stand failed).
void Acked(CommandContext& ctx, AckWait& wait, size_t n) {
  wait.remaining -= std::min(wait.remaining, n);
  if (wait.remaining == 0) ctx.Complete(wait.tag, wait.error.empty() ? wait.data : wait.error);
}

// One backend ack: counted against the part it answers (the client's acks
// were made with the command; keyfence's own requests have none).
void AddAck(CommandContext& ctx, SubLink& link) {
  LinkAcks& a = link.acks.front();
  std::shared_ptr<AckWait> wait = a.wait;
  if (--a.count == 0) link.acks.pop_front();
  if (wait != nullptr) Acked(ctx, *wait, 1);
}

// Recovery is over once nothing waits and every resubscribe was acked.
void MaybeRecovered(PubSubState& ps) {
  if (ps.lost_since_ns == 0 || ps.classic_lost || ps.keyspace_lost || !ps.orphans.empty() ||
      !ps.parked.empty()) {
    return;
  }
  for (const auto& l : ps.links) {
    for (const LinkAcks& a : l->acks) {
      if (a.wait == nullptr) return;
    }
  }
  ps.lost_since_ns = 0;
  ps.retry_ms = 0;
}

// Nothing subscribed and no ack owed: the connections go.
void MaybeDrop(CommandContext& ctx) {
  const PubSubState& ps = ctx.pubsub();
  if (ps.wants()) return;
  for (const auto& l : ps.links) {
    if (!l->acks.empty()) return;
  }
  DropSubscriptions(ctx);
}

void AppendStripped(CommandContext& ctx, std::string_view frame, std::string& out) {
  tenancy::AppendErrorStripped(frame, ctx.tenant()->prefix, out);
}

// Errors a node gives while a slot moves or a failover runs: try again later.
bool RetryLater(std::string_view e) {
  return e.starts_with("ASK ") || e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") ||
         e.starts_with("LOADING") || e.starts_with("MASTERDOWN");
}

// A command on this link failed: a MOVED is followed (the part is sent again
// where the slot lives now), a transient error retried later; another error
// stands for the client's acks.
void OnLinkError(CommandContext& ctx, SubLink& link, std::string_view frame) {
  std::string e;
  if (link.acks.empty()) {
    AppendStripped(ctx, frame, e);
    ctx.BeginPush().append(e);
    ctx.EndReply();
    return;
  }
  LinkAcks a = std::move(link.acks.front());
  link.acks.pop_front();
  if (a.shard && a.subscribe) {
    for (const std::string& n : a.names) link.shard.erase(n);
  }
  const std::string_view code = frame.substr(1);
  const bool moved = code.starts_with("MOVED ") && ctx.backend().NoteRedirect(frame);
  if (moved && a.resends < kMaxResends) {
    ++a.resends;
    return SendPart(ctx, LinkFor(ctx, a.slot, true, false), std::move(a));
  }
  if (RetryLater(code) || (moved && a.wait == nullptr)) {
    if (code.starts_with("ASK ")) ctx.backend().NoteRedirect(frame);  // refreshes the topology
    a.resends = 0;
    return Park(ctx, std::move(a));
  }
  if (a.wait == nullptr) {  // keyfence's resubscribe refused: the client would miss messages
    spdlog::warn("client {}: resubscribing failed: {}", ctx.info().id,
                 frame.substr(1, frame.find('\r') - 1));
    ctx.CloseWithError(protocol::errors::kSubscriberLost);
    return;
  }
  if (a.wait->error.empty()) {
    if (moved) {
      protocol::AppendError(a.wait->error, protocol::errors::kTooManyRedirects);
    } else {
      AppendStripped(ctx, frame, a.wait->error);
    }
  }
  Acked(ctx, *a.wait, a.count);
}

void OnLinkFrame(CommandContext& ctx, SubLink& link, std::string_view frame) {
  if (frame.empty()) return;
  if (frame[0] == '-' || frame[0] == '!') return OnLinkError(ctx, link, frame);
  PubSubState& ps = ctx.pubsub();
  std::vector<protocol::ReplyNode> n;
  const bool ack = protocol::ParseReplyTree(frame, &n) && n.size() >= 4 && n[0].count == 3 &&
                   n[3].type == protocol::ReplyType::kInteger &&
                   n[1].str.find("subscribe") != std::string_view::npos;
  if (!ack) {  // message / pmessage / smessage / pong
    if (!NotificationWanted(ctx, n)) return;
    if (KeyeventMessage(ctx, n)) return;
    tenancy::ReplyContext rc{ctx.tenant()->prefix, "", ctx.proto()};
    tenancy::RewriteReply(tenancy::ReplyRule::kPubSub, frame, rc, ctx.BeginPush());
    ctx.EndReply();
    return;
  }
  std::string channel;
  if (n[1].str == "sunsubscribe" && !n[2].is_null &&
      tenancy::AppendClientKey(channel, ctx.tenant()->prefix, n[2].str) &&
      link.shard.erase(channel) > 0) {
    // Unasked: the node no longer serves the channel's slot (it moved).
    ps.orphans.insert(std::move(channel));
    Restore(ctx);
    return;
  }
  if (link.acks.empty()) {  // unasked, and nothing to restore: the client never asked
    spdlog::debug("client {}: unasked ack dropped", ctx.info().id);
    return;
  }
  AddAck(ctx, link);
  MaybeRecovered(ps);
  MaybeDrop(ctx);
}

// A subscriber connection died: what it carried is restored elsewhere.
void LinkLost(CommandContext& ctx, SubLink& link) {
  PubSubState& ps = ctx.pubsub();
  spdlog::info("client {}: subscriber connection to {} lost; restoring its subscriptions",
               ctx.info().id, link.conn->endpoint().ToString());
  for (const std::string& ch : link.shard) ps.orphans.insert(ch);
  for (LinkAcks& a : link.acks) {
    if (a.wait != nullptr) ps.parked.push_back(std::move(a));  // ours: in the sets again
  }
  const bool was_classic = &link == ps.classic;
  if (was_classic) {
    ps.classic = nullptr;
    ps.classic_lost = !ps.channels.empty() || !ps.patterns.empty();
  }
  // A cluster master's keyspace subscriptions go to the master serving its
  // slots now (a failover: the promoted replica).
  if (link.keyspace || (was_classic && ctx.backend().Masters().size() > 1)) {
    ps.keyspace_lost = std::any_of(ps.channels.begin(), ps.channels.end(), IsNotificationName) ||
                       std::any_of(ps.patterns.begin(), ps.patterns.end(), IsNotificationName);
  }
  auto it = std::find_if(ps.links.begin(), ps.links.end(),
                         [&](const auto& l) { return l.get() == &link; });
  std::unique_ptr<SubLink> gone = std::move(*it);
  ps.links.erase(it);
  gone->conn->set_unsolicited(nullptr);
  ctx.Retire(std::move(gone->conn));
  if (!ps.active()) {
    DropSubscriptions(ctx);
    return;
  }
  ScheduleRestore(ctx);
}

void WakeRestore(CommandContext& ctx) {
  ctx.pubsub().wake_armed = false;
  Restore(ctx);
}

// Retries later, with backoff, unless the recovery budget is spent.
void ScheduleRestore(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  const uint64_t now = Loop::NowNs();
  if (ps.lost_since_ns == 0) ps.lost_since_ns = now;
  const uint64_t budget_ns = uint64_t{ctx.snapshot().backend.subscriber_recovery_ms} * 1000000;
  if (now - ps.lost_since_ns > budget_ns) {
    spdlog::warn("client {}: subscriptions not restored within {} ms; closing", ctx.info().id,
                 ctx.snapshot().backend.subscriber_recovery_ms);
    // The commands still waiting are answered first: the close follows the replies owed.
    std::deque<LinkAcks> parked = std::move(ps.parked);
    ps.parked.clear();
    for (LinkAcks& a : parked) {
      if (a.wait == nullptr) continue;
      if (a.wait->error.empty()) protocol::AppendError(a.wait->error, protocol::errors::kSubscriberLost);
      Acked(ctx, *a.wait, a.count);
    }
    ctx.CloseWithError(protocol::errors::kSubscriberLost);
    return;
  }
  if (ps.wake_armed) return;
  ps.retry_ms = ps.retry_ms == 0 ? kRetryFirstMs : std::min(ps.retry_ms * 2, kRetryMaxMs);
  ps.wake_armed = true;
  ctx.WakeAfter(ps.retry_ms, &WakeRestore);
}

// Orphaned shard channels, one SSUBSCRIBE per slot, where the slots live now.
void RestoreOrphans(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  std::map<int, std::vector<std::string>> by_slot;
  for (const std::string& ch : ps.orphans) {
    by_slot[tenancy::BackendKeySlot(ctx.prefix_crc(), ch)].push_back(ch);
  }
  for (auto& [slot, names] : by_slot) {
    SubLink* l = LinkFor(ctx, slot, true, false);
    if (l == nullptr) continue;
    for (const std::string& ch : names) ps.orphans.erase(ch);
    SendSilent(ctx, *l, "SSUBSCRIBE", true, slot, std::move(names));
  }
}

// Cluster: every master gets the client's keyspace channels and patterns again.
void RestoreKeyspace(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  std::vector<std::string> channels, patterns;
  for (const std::string& c : ps.channels) {
    if (IsNotificationName(c)) channels.push_back(c);
  }
  for (const std::string& p : ps.patterns) {
    if (IsNotificationName(p)) patterns.push_back(p);
  }
  // Every slot's master, so that a failover still in progress (a slot with
  // no master yet) is waited for, not taken as done.
  bool all = true;
  std::vector<config::Endpoint> nodes;
  for (int slot = 0; slot < protocol::kNumSlots; ++slot) {
    config::Endpoint ep;
    if (!ctx.backend().NodeFor(slot, &ep)) {
      all = false;
      continue;
    }
    if (std::none_of(nodes.begin(), nodes.end(), [&](const config::Endpoint& e) {
          return e.host == ep.host && e.port == ep.port;
        })) {
      nodes.push_back(ep);
    }
  }
  for (const config::Endpoint& ep : nodes) {
    SubLink* l = FindLink(ps, ep);
    if (l == nullptr) l = OpenLink(ctx, ep, false);
    if (l == nullptr) {
      all = false;
      continue;
    }
    if (l->keyspace) continue;
    l->keyspace = true;
    SendSilent(ctx, *l, "SUBSCRIBE", false, kAnySlot, channels);
    SendSilent(ctx, *l, "PSUBSCRIBE", false, kAnySlot, patterns);
  }
  ps.keyspace_lost = !all;
}

void Restore(CommandContext& ctx) {
  PubSubState& ps = ctx.pubsub();
  if (ps.classic_lost) ClassicLink(ctx, false);
  if (ps.keyspace_lost && !ps.classic_lost) RestoreKeyspace(ctx);
  RestoreOrphans(ctx);
  std::deque<LinkAcks> parked = std::move(ps.parked);
  ps.parked.clear();
  for (LinkAcks& a : parked) {
    SubLink* l = a.shard ? LinkFor(ctx, a.slot, true, false) : ClassicLink(ctx, false);
    if (l == nullptr) {
      ps.parked.push_back(std::move(a));
    } else {
      Transmit(*l, std::move(a));
    }
  }
  if (ps.classic_lost || ps.keyspace_lost || !ps.orphans.empty() || !ps.parked.empty()) {
    ScheduleRestore(ctx);
  }
}

}  // namespace

bool KeyspaceLinks(CommandContext& ctx, std::vector<SubLink*>* out) {
  PubSubState& ps = ctx.pubsub();
  for (const config::Endpoint& ep : ctx.backend().Masters()) {
    SubLink* l = FindLink(ps, ep);
    if (l == nullptr) l = OpenLink(ctx, ep, true);
    if (l == nullptr) return false;  // answered
    out->push_back(l);
  }
  return true;
}

SubLink* LinkFor(CommandContext& ctx, int slot, bool open, bool reply) {
  config::Endpoint ep;
  if (!ctx.backend().NodeFor(slot, &ep)) {
    if (open && reply) ctx.ReplyError(protocol::errors::kTopologyUnknown);
    return nullptr;
  }
  if (SubLink* l = FindLink(ctx.pubsub(), ep)) return l;
  return open ? OpenLink(ctx, ep, reply) : nullptr;
}

SubLink* ClassicLink(CommandContext& ctx, bool reply) {
  PubSubState& ps = ctx.pubsub();
  if (ps.classic != nullptr) return ps.classic;
  SubLink* l = nullptr;
  if (!ps.classic_lost) {
    l = LinkFor(ctx, kAnySlot, true, reply);
  } else if (const auto& masters = ctx.backend().Masters(); !masters.empty()) {
    // Any node serves classic channels: spread the attempts over them (the
    // lost node may still be listed until the topology catches up).
    const config::Endpoint ep = masters[ps.classic_tries++ % masters.size()];
    l = FindLink(ps, ep);
    if (l == nullptr) l = OpenLink(ctx, ep, reply);
  }
  if (l == nullptr) return nullptr;
  ps.classic = l;
  if (ps.classic_lost) {
    ps.classic_lost = false;
    SendSilent(ctx, *l, "SUBSCRIBE", false, kAnySlot,
               std::vector<std::string>(ps.channels.begin(), ps.channels.end()));
    SendSilent(ctx, *l, "PSUBSCRIBE", false, kAnySlot,
               std::vector<std::string>(ps.patterns.begin(), ps.patterns.end()));
  }
  return l;
}

void SendPart(CommandContext& ctx, SubLink* link, LinkAcks part) {
  if (link == nullptr || !ctx.pubsub().parked.empty()) return Park(ctx, std::move(part));
  Transmit(*link, std::move(part));
}

bool Restoring(const PubSubState& ps) { return ps.lost_since_ns != 0; }

std::string SubRequest(std::string_view prefix, std::string_view cmd, bool shard,
                       std::span<const std::string_view> names) {
  std::string b;
  protocol::AppendArrayHeader(b, names.size() + 1);
  protocol::AppendBulk(b, cmd);
  for (std::string_view n : names) {
    if (shard) {
      protocol::AppendBulkHeader(b, tenancy::BackendKeyLength(prefix, n));
      tenancy::AppendBackendKey(b, prefix, n);
    } else {
      protocol::AppendBulkHeader(b, tenancy::BackendChannelLength(prefix, n));
      tenancy::AppendBackendChannel(b, prefix, n);
    }
    b.append("\r\n");
  }
  return b;
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

}  // namespace keyfence::proxy::commands
