#include "proxy/commands/fanout.h"
#include "protocol/error_replies.h"

#include <charconv>

#include "protocol/reply_parser.h"
#include "protocol/writer.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

using protocol::ReplyNode;
using protocol::ReplyType;

FanOut::FanOut(CommandContext& ctx, Kind kind, uint64_t seq, size_t parts, size_t keys,
               int proto)
    : ctx_(ctx), kind_(kind), seq_(seq), waiting_(parts), proto_(proto) {
  positions_.resize(parts);
  if (kind == Kind::kMget) values_.resize(keys);
}

FanOut::~FanOut() { ctx_.backend().Forget(this); }

void FanOut::SetPositions(size_t part, std::vector<size_t> positions) {
  positions_[part] = std::move(positions);
}

void FanOut::StartScan(Backend& backend, std::vector<config::Endpoint> nodes, size_t node,
                       uint64_t cursor, std::vector<std::string> args, size_t want) {
  backend_ = &backend;
  scan_nodes_ = std::move(nodes);
  scan_node_ = node;
  scan_cursor_ = cursor;
  scan_args_ = std::move(args);
  scan_want_ = want;
  for (size_t i = 0; i + 1 < scan_args_.size(); ++i) {
    if (scan_args_[i] == "COUNT") scan_count_arg_ = i + 1;
  }
  SendScan();
}

void FanOut::SendScan() {
  if (scan_count_arg_ != 0) {
    uint64_t n = 0;
    const std::string& v = scan_args_[scan_count_arg_];
    std::from_chars(v.data(), v.data() + v.size(), n);
    scan_work_ += n;
  }
  BackendConn& c = backend_->NodeConn(scan_nodes_[scan_node_], proto_, ctx_.own_hint());
  if (!c.Available()) {
    std::string e;
    protocol::AppendError(e, c.down_error());
    OnReply(0, e);
    return;
  }
  std::string& o = c.out();
  protocol::AppendArrayHeader(o, scan_args_.size() + 2);
  protocol::AppendBulk(o, "SCAN");
  protocol::AppendBulk(o, std::to_string(scan_cursor_));
  for (const auto& a : scan_args_) protocol::AppendBulk(o, a);
  c.Push(this, 0);
  c.MarkDirty();
}

void FanOut::GrowScanCount() {
  if (scan_count_arg_ == 0) return;
  std::string& v = scan_args_[scan_count_arg_];
  uint64_t n = 0;
  if (std::from_chars(v.data(), v.data() + v.size(), n).ec != std::errc() || n == 0) return;
  v = std::to_string(std::min(n * 2, std::max(n, kMaxBackendScanCount)));
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
        // [cursor, names]: names stripped and filtered, then the walk goes on.
        if (!protocol::ParseReplyTree(frame, &n) || n.size() < 2) {
          error_ = protocol::errors::Frame(protocol::errors::kBadScanReply);
          break;
        }
        uint64_t backend = 0;
        std::string_view c = n[1].str;
        std::from_chars(c.data(), c.data() + c.size(), backend);
        std::string body;
        tenancy::RewriteReply(tenancy::ReplyRule::kScan, frame, {prefix_, pattern_, proto_},
                              body);
        std::vector<ReplyNode> m;
        if (protocol::ParseReplyTree(body, &m)) {
          for (size_t i = 3; i < m.size(); ++i) values_.emplace_back(m[i].str);
        }
        scan_cursor_ = backend;
        if (backend == 0) {
          if (scan_node_ + 1 < scan_nodes_.size()) {
            ++scan_node_;  // next master, from its beginning
          } else {
            scan_done_ = true;
          }
        }
        if (!scan_done_ && values_.size() < scan_want_ && ++scan_rounds_ < kMaxScanRounds &&
            scan_work_ < kMaxScanWork) {
          GrowScanCount();
          SendScan();
          return;  // still waiting
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
      case Kind::kScan: {
        uint64_t next = 0;
        if (!scan_done_) {
          next = scan_nodes_.size() > 1 ? (scan_cursor_ << kScanNodeBits) | scan_node_
                                        : scan_cursor_;
        }
        protocol::AppendArrayHeader(out, 2);
        protocol::AppendBulk(out, std::to_string(next));
        protocol::AppendArrayHeader(out, values_.size());
        for (const std::string& v : values_) protocol::AppendBulk(out, v);
        break;
      }
    }
  }
  ctx_.Complete(seq_, out);
  ctx_.Finished(this);
}

}  // namespace keyfence::proxy
