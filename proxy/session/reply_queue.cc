#include "proxy/session/reply_queue.h"

#include "protocol/writer.h"
#include "proxy/session/session_limits.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

using tenancy::ReplyRule;

ReplySlot& ReplyQueue::Push(ReplyRule rule, bool discard, uint64_t start_ns, uint16_t cmd_id) {
  if (slots_.empty()) head_seq_ = next_seq_;
  ReplySlot& s = slots_.push_back();
  s.seq = next_seq_++;
  s.ready = false;
  s.discard = discard;
  s.rule = rule;
  s.pattern.clear();
  s.data.clear();
  s.exec_rules.clear();
  s.start_ns = start_ns;
  s.cmd_id = cmd_id;
  return s;
}

void ReplyQueue::Write(ReplySlot& slot, std::string_view frame, const ReplyView& view,
                       std::string& out) {
  if (slot.discard) return;
  if (!frame.empty() && (frame[0] == '-' || frame[0] == '!') && !view.prefix.empty()) {
    tenancy::AppendErrorStripped(frame, view.prefix, out);
    return;
  }
  if (!slot.exec_rules.empty()) {
    tenancy::RewriteExec(frame, slot.exec_rules, {view.prefix, "", view.proto}, out);
    return;
  }
  if (slot.rule == ReplyRule::kNone) {
    out.append(frame);
    return;
  }
  tenancy::RewriteReply(slot.rule, frame, {view.prefix, slot.pattern, view.proto}, out);
}

void ReplyQueue::Pop() {
  slots_.pop_front();
  ++head_seq_;
}

void ReplyQueue::Deliver(ReplySlot& slot, std::string_view frame, const ReplyView& view) {
  if (slot.seq == head_seq_) {
    Write(slot, frame, view, out_);
    Pop();
    DeliverReady();
    return;
  }
  slot.data.clear();
  Write(slot, frame, view, slot.data);
  slot.discard = false;  // already applied
  slot.ready = true;
}

void ReplyQueue::Complete(ReplySlot& slot, std::string_view reply) {
  slot.data.assign(slot.discard ? std::string_view() : reply);
  slot.ready = true;
  DeliverReady();
}

void ReplyQueue::DeliverReady() {
  while (!slots_.empty() && slots_.front().ready) {
    ReplySlot& s = slots_.front();
    if (!s.discard) out_.append(s.data);
    if (s.data.capacity() > session::kSlotKeep) std::string().swap(s.data);  // after a big reply
    Pop();
  }
}

std::string& ReplyQueue::LocalReply(bool discard, uint64_t start_ns, uint16_t cmd_id) {
  if (slots_.empty() && !discard) return out_;
  ReplySlot& s = Push(ReplyRule::kNone, discard, start_ns, cmd_id);
  s.ready = true;
  return s.data;
}

void ReplyQueue::FinishLocal() {
  if (slots_.size() == 1 && slots_.back().ready) DeliverReady();
}

}  // namespace keyfence::proxy
