// Keyspace-notification messages on a client's subscriber connections: the
// tenant's own event classes, and keyevent payloads (key names of every
// tenant) filtered and stripped (sub_links.h).
#include "proxy/commands/helpers.h"
#include "proxy/commands/sub_links.h"
#include "tenancy/namespace.h"
#include "tenancy/notify_events.h"

namespace keyfence::proxy::commands {

namespace {
// The node index of a message's channel (message / pmessage), 0 if `n` is no message.
size_t MessageChannel(const std::vector<protocol::ReplyNode>& n) {
  if (n.size() < 4 || n[0].count < 3) return 0;
  const bool pmessage = n[1].str == "pmessage";
  if (!pmessage && n[1].str != "message") return 0;
  const size_t channel = pmessage ? 3 : 2;
  return n.size() > channel + 1 ? channel : 0;
}
}  // namespace

bool IsNotificationName(std::string_view name) {
  return tenancy::IsKeyspaceChannel(name) || tenancy::IsKeyeventChannel(name);
}

bool NotificationWanted(CommandContext& ctx, const std::vector<protocol::ReplyNode>& n) {
  const size_t channel = MessageChannel(n);
  if (channel == 0) return true;
  const std::string_view ch = n[channel].str;
  const bool keyspace = tenancy::IsKeyspaceChannel(ch);
  if (!keyspace && !tenancy::IsKeyeventChannel(ch)) return true;
  const uint32_t flags = TenantNotifyFlags(ctx);
  const std::string_view event =
      keyspace ? n[channel + 1].str : ch.substr(tenancy::kKeyeventChannel.size());
  const uint32_t kind = keyspace ? tenancy::kNotifyKeyspace : tenancy::kNotifyKeyevent;
  return (flags & kind) != 0 && (flags & tenancy::EventClass(event)) != 0;
}

bool KeyeventMessage(CommandContext& ctx, const std::vector<protocol::ReplyNode>& n) {
  const size_t channel = MessageChannel(n);
  if (channel == 0 || !tenancy::IsKeyeventChannel(n[channel].str)) return false;
  const size_t payload = channel + 1;
  std::string key;
  if (!tenancy::AppendClientKey(key, ctx.tenant()->prefix, n[payload].str)) return true;
  std::string& out = ctx.BeginPush();
  out.append(n[0].raw);  // the array or push header as the node sent it
  for (size_t i = 1; i < payload; ++i) protocol::AppendBulk(out, n[i].str);
  protocol::AppendBulk(out, key);
  ctx.EndReply();
  return true;
}

}  // namespace keyfence::proxy::commands
