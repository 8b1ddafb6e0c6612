// ReplyFramer + ParseReplyTree + every RewriteReply rule on arbitrary bytes:
// no crash, and a rewritten reply is itself one complete, well-formed reply.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/reply_parser.h"
#include "tenancy/rewriter.h"

using keyfence::protocol::ParseStatus;
using keyfence::protocol::ReplyFramer;
using keyfence::protocol::ReplyNode;
using keyfence::tenancy::ReplyRule;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  ReplyFramer framer;
  size_t consumed = 0;
  if (framer.Frame(in.data(), in.size(), &consumed) != ParseStatus::kOk) return 0;
  std::string_view frame(in.data(), consumed);
  std::vector<ReplyNode> nodes;
  if (!keyfence::protocol::ParseReplyTree(frame, &nodes)) __builtin_trap();
  const ReplyRule rules[] = {ReplyRule::kKeyList,   ReplyRule::kScan,      ReplyRule::kFirstIsKey,
                             ReplyRule::kStreams,   ReplyRule::kChannelList, ReplyRule::kNumsub,
                             ReplyRule::kShardNumsub, ReplyRule::kPubSub,  ReplyRule::kSingleKey,
                             ReplyRule::kConfigGet};
  for (ReplyRule r : rules) {
    for (int proto : {2, 3}) {
      std::string out;
      keyfence::tenancy::RewriteReply(r, frame, {"shop@orders:", "*a*", proto}, out);
      ReplyFramer f2;
      size_t c2 = 0;
      if (f2.Frame(out.data(), out.size(), &c2) != ParseStatus::kOk || c2 != out.size()) {
        __builtin_trap();  // the client would get a broken stream
      }
    }
  }
  return 0;
}
