// The client's replies in request order. Every request that produces a reply
// takes a slot, in arrival order; a reply for the head slot is written
// straight to the output buffer, a reply for a later slot waits in its slot,
// whichever backend connection (or emulation) produced it. The ring never
// shrinks, so steady state allocates nothing. Worker-local.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/base/ring.h"
#include "proxy/commands/state.h"
#include "tenancy/command_rules.h"

namespace keyfence::proxy {

struct ReplySlot {
  uint64_t seq = 0;
  bool ready = false;
  bool discard = false;  // CLIENT REPLY OFF/SKIP
  tenancy::ReplyRule rule = tenancy::ReplyRule::kNone;
  std::string pattern;   // KEYS/SCAN/PUBSUB CHANNELS client pattern
  std::string data;      // the finished reply when it is not at the head
  ExecRules exec_rules;  // EXEC: the rules of the queued commands
  uint64_t start_ns = 0;
  uint16_t cmd_id = 0;   // for the big-reply log line
  // The request's first key, to name the key of a big reply: set by the
  // dispatcher only while the tenant has big values (BigKeys::capturing), valid
  // only when key_seq == seq (slots are reused as they are, so an older
  // request's key may still be here). Short keys are copied into key_short (a
  // plain memcpy, ~20 instructions), longer ones into key_long (its capacity
  // reused).
  static constexpr size_t kKeyInline = 40;
  uint64_t key_seq = 0;
  uint32_t key_len = 0;
  char key_short[kKeyInline];
  std::string key_long;
  void SetKey(std::string_view k, uint64_t for_seq) {
    key_seq = for_seq;
    key_len = static_cast<uint32_t>(k.size());
    if (k.size() <= kKeyInline) {
      std::memcpy(key_short, k.data(), k.size());
    } else {
      key_long.assign(k);
    }
  }
  // The key of this slot's request, if it was captured.
  std::optional<std::string_view> key() const {
    if (key_seq != seq) return std::nullopt;
    return key_len <= kKeyInline ? std::string_view(key_short, key_len)
                                 : std::string_view(key_long);
  }
};

// How a backend reply is rewritten for this client.
struct ReplyView {
  std::string_view prefix;  // the tenant prefix ("" before AUTH)
  int proto = 2;
};

class ReplyQueue {
 public:
  explicit ReplyQueue(std::string& out) : out_(out) {}

  bool empty() const { return slots_.empty(); }
  size_t size() const { return slots_.size(); }
  // The seq the next Push() takes.
  uint64_t next_seq() const { return next_seq_; }

  ReplySlot& Push(tenancy::ReplyRule rule, bool discard, uint64_t start_ns, uint16_t cmd_id);
  // The waiting slot `seq`, or null.
  ReplySlot* Find(uint64_t seq) {
    if (seq < head_seq_) return nullptr;
    size_t idx = static_cast<size_t>(seq - head_seq_);
    return idx < slots_.size() ? &slots_.at(idx) : nullptr;
  }
  // A backend reply for `slot`, rewritten by its rule.
  void Deliver(ReplySlot& slot, std::string_view frame, const ReplyView& view);
  // A finished reply (emulations) for `slot`.
  void Complete(ReplySlot& slot, std::string_view reply);
  // The buffer for one reply produced now: the output itself when nothing is
  // waiting, else a new ready slot. Then FinishLocal().
  std::string& LocalReply(bool discard, uint64_t start_ns, uint16_t cmd_id);
  void FinishLocal();
  // `frame` rewritten by the slot's rule (errors stripped of the prefix) onto `out`.
  static void Write(ReplySlot& slot, std::string_view frame, const ReplyView& view,
                    std::string& out);

 private:
  void Pop();
  void DeliverReady();

  std::string& out_;
  Ring<ReplySlot> slots_;
  uint64_t next_seq_ = 1;
  uint64_t head_seq_ = 1;  // the seq of slots_.front() when not empty
};

}  // namespace keyfence::proxy
