// Pub/sub commands keyfence handles itself: PUBSUB CHANNELS/SHARDCHANNELS
// (inside the namespace), and the subscription counts of a subscriber
// connection. (P|S)SUBSCRIBE themselves are forwarded on the client's
// dedicated subscriber connection (forward.cc).
#include "protocol/glob.h"
#include "protocol/reply_parser.h"
#include "proxy/base/text.h"
#include "proxy/commands/families.h"
#include "proxy/commands/helpers.h"

namespace keyfence::proxy::commands {

using tenancy::ReplyRule;

bool PubsubChannels(CommandContext& ctx, const protocol::CommandInfo&, const tenancy::Rule&) {
  auto args = ctx.args();
  std::string_view pattern = args.size() > 2 ? args[2] : "";
  std::string bytes;
  protocol::AppendCommand(bytes,
                          {args[0], args[1], protocol::GlobEscape(ctx.tenant()->prefix) + "*"});
  // Shard channels carry the hash-tag rule, like keys.
  ReplyRule rule = EqNoCase(args[1], "shardchannels") ? ReplyRule::kKeyList
                                                      : ReplyRule::kChannelList;
  SendBuilt(ctx, bytes, rule, pattern == "*" ? "" : pattern);
  return true;
}

void TrackSubscriptions(ConnState& st, std::string_view frame) {
  std::vector<protocol::ReplyNode> n;
  if (!protocol::ParseReplyTree(frame, &n) || n.size() < 4) return;
  if (n[0].count != 3) return;
  std::string_view kind = n[1].str;
  const protocol::ReplyNode& cnt = n[3];
  if (cnt.type != protocol::ReplyType::kInteger) return;
  if (kind == "subscribe" || kind == "unsubscribe" || kind == "psubscribe" ||
      kind == "punsubscribe") {
    st.classic_subs = cnt.integer;
  } else if (kind == "ssubscribe" || kind == "sunsubscribe") {
    st.shard_subs = cnt.integer;
  }
}

}  // namespace keyfence::proxy::commands
