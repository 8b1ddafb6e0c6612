// ClientSession: reply slots. Every request that produces a reply takes a
// slot in arrival order; replies leave in that order, whichever backend
// connection (or emulation) produced them.
#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "protocol/slot.h"
#include "protocol/writer.h"
#include "proxy/client_session.h"
#include "proxy/session_limits.h"
#include "proxy/worker.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

namespace asio = boost::asio;
using tenancy::ReplyRule;
using namespace session;  // NOLINT: the session's named limits

ClientSession::Slot& ClientSession::NewSlot(ReplyRule rule) {
  if (slots_.empty()) head_seq_ = next_seq_;
  Slot& s = slots_.push_back();
  s.seq = next_seq_++;
  s.ready = false;
  s.discard = discard_this_;
  s.rule = rule;
  s.pattern.clear();
  s.data.clear();
  s.replace = false;
  s.exec_rules.clear();
  s.start_ns = last_cmd_ns_;
  s.cmd_id = cur_cmd_id_;
  return s;
}

void ClientSession::WriteReply(Slot& slot, std::string_view frame, std::string& out) {
  if (slot.discard) return;
  if (slot.replace) {
    protocol::AppendError(out, slot.pattern);
    return;
  }
  if (!frame.empty() && (frame[0] == '-' || frame[0] == '!') && tenant_ != nullptr) {
    tenancy::AppendErrorStripped(frame, tenant_->prefix, out);
    return;
  }
  if (!slot.exec_rules.empty()) {
    tenancy::ReplyContext ctx{tenant_ != nullptr ? std::string_view(tenant_->prefix) : "",
                              "", proto_};
    tenancy::RewriteExec(frame, slot.exec_rules, ctx, out);
    return;
  }
  if (slot.rule == ReplyRule::kNone) {
    out.append(frame);
    return;
  }
  tenancy::ReplyContext ctx{tenant_ != nullptr ? std::string_view(tenant_->prefix) : "",
                            slot.pattern, proto_};
  tenancy::RewriteReply(slot.rule, frame, ctx, out);
}

void ClientSession::OnReply(uint64_t tag, std::string_view frame) {
  if (closed_ || slots_.empty() || tag < head_seq_) return;
  size_t idx = static_cast<size_t>(tag - head_seq_);
  if (idx >= slots_.size()) return;
  Slot& slot = slots_.at(idx);
  uint64_t now = Worker::NowNs();
  if (local_ != nullptr) {
    local_->counters->ObserveLatencyNs(now - slot.start_ns);
    if (!local_->bytes.unlimited()) local_->bytes.Charge(static_cast<double>(frame.size()), now);
    if (frame.size() > tenant_->limits.big_value_bytes) {
      NoteBig(true, frame.size(), protocol::CommandTable::Get().ById(slot.cmd_id).name);
    }
  }
  if (idx == 0) {
    WriteReply(slot, frame, out_);
    slots_.pop_front();
    ++head_seq_;
    DeliverReady();
  } else {
    slot.data.clear();
    WriteReply(slot, frame, slot.data);
    slot.discard = false;  // already applied
    slot.ready = true;
  }
  worker_.MarkDirty(this);
}

void ClientSession::CompleteSlot(uint64_t seq, std::string_view reply) {
  if (closed_ || slots_.empty() || seq < head_seq_) return;
  size_t idx = static_cast<size_t>(seq - head_seq_);
  if (idx >= slots_.size()) return;
  Slot& slot = slots_.at(idx);
  slot.data.assign(slot.discard ? std::string_view() : reply);
  slot.ready = true;
  DeliverReady();
  worker_.MarkDirty(this);
}

void ClientSession::DeliverReady() {
  while (!slots_.empty() && slots_.front().ready) {
    Slot& s = slots_.front();
    if (!s.discard) out_.append(s.data);
    if (s.data.capacity() > kSlotKeep) std::string().swap(s.data);  // after a big reply
    slots_.pop_front();
    ++head_seq_;
  }
  MaybeReleaseDedicated();
  if (slots_.empty() && read_paused_) {
    auto alive = alive_;
    asio::post(worker_.io(), [this, alive] {
      if (*alive) Resume();
    });
  }
}

void ClientSession::MaybeReleaseDedicated() {
  if (mode_ != Mode::kDedicated || !dedicated_ || in_multi_ || watching_) return;
  if (dedicated_->pending() > 0 || !slots_.empty()) return;
  blocking_ = false;
  mode_ = Mode::kNormal;
  worker_.ReturnDedicated(std::move(dedicated_));
}

std::string& ClientSession::LocalReply() {
  if (slots_.empty() && !discard_this_) return out_;
  Slot& s = NewSlot(ReplyRule::kNone);
  s.ready = true;
  return s.data;
}

void ClientSession::FinishLocal() {
  if (!slots_.empty() && slots_.back().ready && slots_.size() == 1) DeliverReady();
  worker_.MarkDirty(this);
}

void ClientSession::ReplyError(std::string_view e) {
  protocol::AppendError(LocalReply(), e);
  FinishLocal();
}
void ClientSession::ReplySimple(std::string_view s) {
  protocol::AppendSimple(LocalReply(), s);
  FinishLocal();
}
void ClientSession::ReplyInteger(int64_t v) {
  protocol::AppendInteger(LocalReply(), v);
  FinishLocal();
}
void ClientSession::ReplyBulk(std::string_view s) {
  protocol::AppendBulk(LocalReply(), s);
  FinishLocal();
}
void ClientSession::ReplyNull() {
  protocol::AppendNull(LocalReply(), proto_);
  FinishLocal();
}

void ClientSession::SendBuilt(BackendConn& conn, std::string_view bytes, ReplyRule rule,
                              std::string_view pattern) {
  conn.out().append(bytes);
  conn.MarkDirty();
  if (in_multi_) {
    multi_rules_.emplace_back(rule, std::string(pattern));
    rule = ReplyRule::kNone;
  }
  Slot& s = NewSlot(rule);
  s.pattern.assign(pattern);
  conn.Push(this, s.seq);
}

}  // namespace keyfence::proxy
