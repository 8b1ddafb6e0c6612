// A client's subscriber connections (sub_links.cc), under the subscription
// commands (subscriptions.cc): opening them, sending command parts on them,
// what they receive (acks, messages, redirects), and keeping the client's
// subscriptions whole when a connection is lost or a slot moves to another
// node: the lost channels are subscribed again where they live now, with
// keyfence's own requests whose acks the client never sees. Worker-local.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/reply_parser.h"
#include "proxy/commands/context.h"

namespace keyfence::proxy::commands {

// The subscriber connection to the node serving `slot`, opened if `open`;
// null if no node is known or it cannot connect (then, if `reply`, an error
// reply answers the request).
SubLink* LinkFor(CommandContext& ctx, int slot, bool open, bool reply);
// The link of SUBSCRIBE/PSUBSCRIBE, opened if needed; after a loss the new
// one is given the client's channels and patterns again first.
SubLink* ClassicLink(CommandContext& ctx, bool reply);

// Cluster keyspace notifications: the link to every master (opened if
// needed; a master that cannot be reached: null, and its error answered).
bool KeyspaceLinks(CommandContext& ctx, std::vector<SubLink*>* out);
// Keyspace notifications (sub_notify.cc). Whether a client channel or
// pattern names them; whether the tenant's notify-keyspace-events wants a
// message (false: dropped); a __keyevent@0__ message, whose payload is a key
// of any tenant, delivered stripped only when it is the tenant's (true: it
// was one, delivered or dropped).
bool IsNotificationName(std::string_view name);
bool NotificationWanted(CommandContext& ctx, const std::vector<protocol::ReplyNode>& n);
bool KeyeventMessage(CommandContext& ctx, const std::vector<protocol::ReplyNode>& n);

// Sends a part of a client command on `link`, or keeps it for later while
// earlier parts wait for a connection (order is kept); `link` null: kept.
void SendPart(CommandContext& ctx, SubLink* link, LinkAcks part);

// True while keyfence restores subscriptions (a client command's part then
// waits for a connection instead of failing).
bool Restoring(const PubSubState& ps);

// (S|P)(UN)SUBSCRIBE `cmd` for client names, rewritten to backend names.
std::string SubRequest(std::string_view prefix, std::string_view cmd, bool shard,
                       std::span<const std::string_view> names);
// An ack as Redis sends it: [kind, channel or null, count].
void AppendAck(std::string& out, int proto, std::string_view kind, const std::string* channel,
               int64_t count);

}  // namespace keyfence::proxy::commands
