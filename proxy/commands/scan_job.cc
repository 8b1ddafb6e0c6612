#include "proxy/commands/scan_job.h"
#include "protocol/error_replies.h"

#include <random>

#include "protocol/glob.h"
#include "protocol/reply_parser.h"
#include "protocol/writer.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy {

namespace {
constexpr uint64_t kTagScan = 0;
constexpr uint64_t kTagUnlink = 1;
constexpr std::string_view kScanCount = "1000";
}  // namespace

ScanJob::ScanJob(CommandContext& ctx, std::vector<config::Endpoint> nodes,
                 Kind kind, uint64_t seq, std::string prefix, int proto)
    : ctx_(ctx), nodes_(std::move(nodes)), kind_(kind), seq_(seq),
      prefix_(std::move(prefix)), proto_(proto) {}

ScanJob::~ScanJob() { ctx_.backend().Forget(this); }

BackendConn& ScanJob::conn() { return ctx_.backend().NodeConn(nodes_[node_], proto_, ctx_.own_hint()); }

void ScanJob::Start() { SendScan(); }

void ScanJob::SendScan() {
  if (!conn().Available()) {  // connects it if idle
    std::string e;
    protocol::AppendError(e, conn().down_error());
    return Finish(e);
  }
  std::string pattern = protocol::GlobEscape(prefix_) + "*";
  protocol::AppendCommand(conn().out(), {"SCAN", cursor_, "MATCH", pattern, "COUNT", kScanCount});
  conn().Push(this, kTagScan);
  conn().MarkDirty();
}

void ScanJob::Finish(std::string_view reply) {
  if (finished_) return;
  finished_ = true;
  ctx_.Complete(seq_, reply);
  ctx_.Finished(this);
}

void ScanJob::OnReply(uint64_t tag, std::string_view frame) {
  if (finished_) return;
  if (!frame.empty() && (frame[0] == '-' || frame[0] == '!')) return Finish(frame);
  if (tag == kTagUnlink) {
    --unlinks_in_flight_;
    if (scan_done_ && unlinks_in_flight_ == 0) Finish("+OK\r\n");
    return;
  }
  std::vector<protocol::ReplyNode> n;
  if (!protocol::ParseReplyTree(frame, &n) || n.size() < 3 || n[0].count != 2) {
    return Finish(protocol::errors::Frame(protocol::errors::kBadScanReply));
  }
  cursor_.assign(n[1].str);
  const protocol::ReplyNode& list = n[2];
  std::vector<std::string_view> keys;
  for (int64_t i = 0; i < list.count && static_cast<size_t>(3 + i) < n.size(); ++i) {
    std::string_view k = n[3 + i].str;
    if (k.substr(0, prefix_.size()) == prefix_) keys.push_back(k);
  }
  scan_done_ = cursor_ == "0";
  if (scan_done_ && node_ + 1 < nodes_.size()) {
    // Next master; a FLUSH's UNLINKs on this one are still counted.
    scan_done_ = false;
    next_node_ = true;
  }
  std::string out;
  switch (kind_) {
    case Kind::kDbSize:
      count_ += static_cast<int64_t>(keys.size());
      if (scan_done_) {
        protocol::AppendInteger(out, count_);
        return Finish(out);
      }
      break;
    case Kind::kRandomKey:
      if (!keys.empty()) {
        static thread_local std::minstd_rand rng(std::random_device{}());
        std::string_view k = keys[rng() % keys.size()];
        std::string name;
        tenancy::AppendClientKey(name, prefix_, k);
        protocol::AppendBulk(out, name);
        return Finish(out);
      }
      if (scan_done_) {
        protocol::AppendNull(out, proto_);
        return Finish(out);
      }
      break;
    case Kind::kFlush:
      if (!keys.empty()) {
        BackendConn& c = conn();
        std::string& o = c.out();
        // One key per UNLINK: a page's keys may span slots (a cluster would
        // answer CROSSSLOT), and a pipeline of UNLINKs costs Redis the same.
        for (std::string_view k : keys) {
          protocol::AppendCommand(o, {"UNLINK", k});
          c.Push(this, kTagUnlink);
          ++unlinks_in_flight_;
        }
        c.MarkDirty();
      }
      if (scan_done_) {
        if (unlinks_in_flight_ == 0) Finish("+OK\r\n");
        return;
      }
      break;
  }
  if (next_node_) {
    next_node_ = false;
    ++node_;
    cursor_ = "0";
  }
  SendScan();
}

}  // namespace keyfence::proxy
