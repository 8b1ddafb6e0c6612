#include "proxy/commands/scan_job.h"
#include "protocol/error_replies.h"

#include <algorithm>
#include <random>

#include "protocol/glob.h"
#include "protocol/reply_parser.h"
#include "protocol/resp_values.h"
#include "protocol/writer.h"
#include "proxy/net/loop.h"
#include "tenancy/namespace.h"

namespace keyfence::proxy {

namespace {
constexpr uint64_t kTagScan = 0;
constexpr uint64_t kTagUnlink = 1;
constexpr uint64_t kTagPttl = 2;
constexpr uint64_t kTagMemory = 3;
constexpr std::string_view kScanCount = "1000";
}  // namespace

ScanJob::ScanJob(CommandContext& ctx, std::vector<config::Endpoint> nodes,
                 Kind kind, uint64_t seq, std::string prefix, int proto)
    : ctx_(ctx), nodes_(std::move(nodes)), kind_(kind), seq_(seq),
      prefix_(std::move(prefix)), proto_(proto), per_node_(nodes_.size()) {}

ScanJob::~ScanJob() { ctx_.backend().Forget(this); }

BackendConn& ScanJob::conn() { return ctx_.backend().NodeConn(nodes_[node_], proto_, ctx_.own_hint()); }

void ScanJob::Start() { SendScan(); }

void ScanJob::SendScan() {
  if (!conn().Available()) {  // connects it if idle
    if (kind_ == Kind::kKeyspace) return FinishKeyspace(false);
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
  if ((tag & 0xff) == kTagPttl || (tag & 0xff) == kTagMemory) {  // a key gone since: no figure
    --unlinks_in_flight_;
    NodeFigures& f = per_node_[tag >> 8];
    int64_t v = 0;
    if (!frame.empty() && (frame[0] == '-' || frame[0] == '!')) {
      inspect_failed_ = true;  // a connection lost, a node refusing: not a figure to keep
    } else if (frame.size() > 3 && frame[0] == ':' &&
               protocol::ParseInteger(frame.data() + 1, frame.size() - 3, &v)) {
      if ((tag & 0xff) == kTagMemory) {
        f.memory += v;
      } else if (v >= 0) {
        ++f.expires;
        f.ttl_sum_ms += v;
      }
    }
    if (scan_done_ && unlinks_in_flight_ == 0) FinishKeyspace(!inspect_failed_);
    return;
  }
  if (!frame.empty() && (frame[0] == '-' || frame[0] == '!')) {
    if (kind_ == Kind::kKeyspace) return FinishKeyspace(false);
    return Finish(frame);
  }
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
    case Kind::kKeyspace:
      per_node_[node_].keys += static_cast<int64_t>(keys.size());
      Inspect(keys);
      if (scan_done_) {
        if (unlinks_in_flight_ == 0) FinishKeyspace(true);
        return;
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

// PTTL and MEMORY USAGE of the page's keys while fewer than kInspectKeys
// were read (SCAN's order is the hash table's: the first keys are a fair sample).
void ScanJob::Inspect(const std::vector<std::string_view>& keys) {
  // The budget is shared by the masters, so that each is sampled.
  const int64_t budget = std::max<int64_t>(1, kInspectKeys / static_cast<int64_t>(nodes_.size()));
  NodeFigures& f = per_node_[node_];
  if (keys.empty() || f.inspected >= budget) return;
  BackendConn& c = conn();
  std::string& o = c.out();
  const uint64_t node = static_cast<uint64_t>(node_) << 8;
  for (std::string_view k : keys) {
    if (f.inspected >= budget) break;
    ++f.inspected;
    protocol::AppendCommand(o, {"PTTL", k});
    c.Push(this, node | kTagPttl);
    protocol::AppendCommand(o, {"MEMORY", "USAGE", k});
    c.Push(this, node | kTagMemory);
    unlinks_in_flight_ += 2;
  }
  c.MarkDirty();
}

void ScanJob::FinishKeyspace(bool ok) {
  if (finished_) return;
  std::string reply;
  if (ok) {
    KeyspaceFigures f;
    int64_t ttl_sum = 0, sampled_expires = 0;
    for (const NodeFigures& n : per_node_) {  // each master extrapolated from its sample
      const double scale = n.inspected > 0 && n.keys > n.inspected
                               ? static_cast<double>(n.keys) / static_cast<double>(n.inspected)
                               : 1.0;
      f.keys += n.keys;
      f.inspected += n.inspected;
      f.memory += static_cast<int64_t>(static_cast<double>(n.memory) * scale);
      f.expires += static_cast<int64_t>(static_cast<double>(n.expires) * scale);
      ttl_sum += n.ttl_sum_ms;
      sampled_expires += n.expires;
    }
    if (sampled_expires > 0) f.avg_ttl_ms = ttl_sum / sampled_expires;
    f.as_of_ns = Loop::NowNs();
    reply = keyspace_done_(&f);
  } else {
    reply = keyspace_done_(nullptr);
  }
  Finish(reply);
}

}  // namespace keyfence::proxy
