#include "proxy/fanout.h"

#include <charconv>

#include "protocol/reply_parser.h"
#include "protocol/writer.h"
#include "proxy/client_session.h"
#include "proxy/worker.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

using protocol::ReplyNode;
using protocol::ReplyType;

FanOut::FanOut(ClientSession& session, Kind kind, uint64_t seq, size_t parts, size_t keys,
               int proto)
    : session_(session), kind_(kind), seq_(seq), waiting_(parts), proto_(proto) {
  positions_.resize(parts);
  if (kind == Kind::kMget) values_.resize(keys);
}

FanOut::~FanOut() = default;

void FanOut::SetPositions(size_t part, std::vector<size_t> positions) {
  positions_[part] = std::move(positions);
}

void FanOut::OnReply(uint64_t part, std::string_view frame) {
  if (finished_) return;
  if (!frame.empty() && (frame[0] == '-' || frame[0] == '!')) {
    if (error_.empty()) tenancy::AppendErrorStripped(frame, prefix_, error_);
  } else {
    std::vector<ReplyNode> n;
    switch (kind_) {
      case Kind::kMget:
        if (protocol::ParseReplyTree(frame, &n) && !n.empty() && n[0].count >= 0) {
          size_t i = 1;
          for (size_t k = 0; k < positions_[part].size() && i < n.size(); ++k) {
            size_t next = protocol::SkipReplySubtree(n, i);
            const char* b = n[i].raw.data();
            const char* e = n[next - 1].raw.data() + n[next - 1].raw.size();
            values_[positions_[part][k]].assign(b, e);
            i = next;
          }
        }
        break;
      case Kind::kSum:
        if (protocol::ParseReplyTree(frame, &n) && !n.empty()) sum_ += n[0].integer;
        break;
      case Kind::kMset:
        break;
      case Kind::kKeys: {
        std::string stripped;
        tenancy::RewriteReply(tenancy::ReplyRule::kKeyList, frame,
                              {prefix_, pattern_, proto_}, stripped);
        if (protocol::ParseReplyTree(stripped, &n)) {
          for (size_t i = 1; i < n.size(); ++i) values_.emplace_back(n[i].str);
        }
        break;
      }
      case Kind::kScan: {
        // [cursor, names]: names stripped and filtered; the cursor re-encoded.
        if (!protocol::ParseReplyTree(frame, &n) || n.size() < 2) break;
        uint64_t backend = 0;
        std::string_view c = n[1].str;
        std::from_chars(c.data(), c.data() + c.size(), backend);
        uint64_t next = 0;
        if (backend != 0) {
          next = (backend << kScanNodeBits) | scan_node_;
        } else if (scan_node_ + 1 < scan_nodes_) {
          next = scan_node_ + 1;  // backend cursor 0 on the next master
        }
        std::string body;
        tenancy::RewriteReply(tenancy::ReplyRule::kScan, frame, {prefix_, pattern_, proto_},
                              body);
        // Replace the cursor element (the first bulk) of the rewritten reply.
        std::vector<ReplyNode> m;
        if (protocol::ParseReplyTree(body, &m) && m.size() >= 2) {
          std::string cur = std::to_string(next);
          protocol::AppendArrayHeader(scan_reply_, 2);
          protocol::AppendBulk(scan_reply_, cur);
          const char* rest = m[1].raw.data() + m[1].raw.size();
          scan_reply_.append(rest, body.data() + body.size() - rest);
        }
        break;
      }
    }
  }
  if (--waiting_ == 0) Done();
}

void FanOut::Done() {
  finished_ = true;
  std::string out;
  if (!error_.empty()) {
    out = error_;
  } else {
    switch (kind_) {
      case Kind::kMget:
        protocol::AppendArrayHeader(out, values_.size());
        for (const std::string& v : values_) {
          if (v.empty()) {
            protocol::AppendNull(out, proto_);
          } else {
            out.append(v);
          }
        }
        break;
      case Kind::kSum:
        protocol::AppendInteger(out, sum_);
        break;
      case Kind::kMset:
        protocol::AppendSimple(out, "OK");
        break;
      case Kind::kKeys:
        protocol::AppendArrayHeader(out, values_.size());
        for (const std::string& v : values_) protocol::AppendBulk(out, v);
        break;
      case Kind::kScan:
        out = scan_reply_.empty() ? "-ERR keyfence: unexpected SCAN reply\r\n" : scan_reply_;
        break;
    }
  }
  session_.CompleteSlot(seq_, out);
  session_.FanOutDone(this);
}

}  // namespace keyfence::proxy
