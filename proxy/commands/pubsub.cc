// PUBSUB CHANNELS/SHARDCHANNELS inside the namespace. The subscriptions
// themselves are in subscriptions.cc.
#include "protocol/glob.h"
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

}  // namespace keyfence::proxy::commands
