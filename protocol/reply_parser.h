// RESP2/RESP3 reply framing and (cold-path) tree parsing.
//
// ReplyFramer finds the end of one complete reply in a backend read buffer,
// incrementally, without allocating per element (a stack of remaining-element
// counts, inline up to kInlineStack levels, on the heap only for deeper
// replies). Used on the hot path to match backend replies to pending requests.
// ParseReplyTree flattens one complete reply into a vector of nodes (views
// into the frame) for the few replies keyfence must rewrite (KEYS, SCAN, pub/sub
// messages, ...). Cold path: it may allocate.
// Thread affinity: one framer per backend connection (worker-local).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "protocol/request_parser.h"  // ParseStatus

namespace keyfence::protocol {

enum class ReplyType : uint8_t {
  kSimpleString,  // '+'
  kError,         // '-'
  kInteger,       // ':'
  kBulk,          // '$' (null bulk "$-1" has is_null)
  kArray,         // '*' (null array "*-1" has is_null)
  kNull,          // '_'
  kDouble,        // ','
  kBoolean,       // '#'
  kBlobError,     // '!'
  kVerbatim,      // '='
  kBigNumber,     // '('
  kMap,           // '%'
  kSet,           // '~'
  kAttribute,     // '|'
  kPush,          // '>'
};

// max_depth counts aggregate levels: a top-level array is depth 1. The default
// admits whatever Redis sends (a Lua table reply nests ~8,000 levels deep before
// Redis stops it, module replies have no limit): a reply from the shared
// backend connection that the framer rejects closes it for every client. Each
// level costs 16 bytes of framer memory for at least 4 bytes of reply.
// max_elements is compared with the count on the wire (pairs for maps and
// attributes). max_bulk_len also bounds a line that has no CR yet (e.g. a huge
// simple string).
struct ReplyLimits {
  size_t max_bulk_len = 1ull << 32;  // largest bulk / verbatim / blob error
  size_t max_depth = 1u << 20;       // nesting of aggregates (at most 2^32 - 1)
  size_t max_elements = 1u << 30;    // elements of one aggregate
};

enum class ReplyError : uint8_t {
  kNone,
  kBadType,      // unknown type byte
  kBadLength,    // malformed or out-of-range length / count
  kTooDeep,      // nesting over max_depth
  kMissingCrlf,  // payload not followed by "\r\n"
  kBadValue,     // malformed integer / boolean / double line
  kLineTooLong,  // a line ('+', '-', headers, ...) with no CR within max_bulk_len
};

class ReplyFramer {
 public:
  explicit ReplyFramer(const ReplyLimits& limits = {}) : limits_(limits) {}
  // Not copyable: stack_ may point into the object itself.
  ReplyFramer(const ReplyFramer&) = delete;
  ReplyFramer& operator=(const ReplyFramer&) = delete;

  // Frames one reply at data[0..len). Same resume contract as RequestParser:
  // each call for the same reply starts at its first byte.
  // kOk: *consumed = bytes of the whole reply (a leading RESP3 attribute is part
  //      of the reply it annotates); type() is the type of the top-level value
  //      after any attribute; is_push() is true for '>' replies.
  ParseStatus Frame(const char* data, size_t len, size_t* consumed);

  // kError is sticky until Reset(): the stream cannot be resynchronised.
  ParseStatus Frame(std::string_view data, size_t* consumed) {
    return Frame(data.data(), data.size(), consumed);
  }

  ReplyType type() const { return type_; }
  bool is_push() const { return type_ == ReplyType::kPush; }
  ReplyError error() const { return error_; }
  // After kNeedMore while waiting for a bulk payload: the total bytes the reply
  // needs so far (0 if unknown), so the caller can reserve once.
  size_t hint_total() const { return hint_total_; }
  void set_limits(const ReplyLimits& limits) { limits_ = limits; }
  const ReplyLimits& limits() const { return limits_; }
  void Reset();

  // Open aggregates kept inside the framer; a deeper reply moves the stack to
  // the heap until it is complete.
  static constexpr size_t kInlineStack = 64;

 private:
  struct Open {
    int64_t remaining;  // elements still to come
    bool is_attr;       // the aggregate is an attribute
  };

  // Accounts for one finished value; true when the whole reply is complete.
  // `stack` is stack_ (passed to stay in a register).
  bool CompleteValue(Open* stack);
  // Doubles the stack's capacity (cold: only replies deeper than kInlineStack).
  void Grow();
  // Back to the inline stack, freeing the heap one.
  void ReleaseSpill();

  ReplyLimits limits_;
  size_t pos_ = 0;   // offset of the next unparsed element
  size_t scan_ = 0;  // the current element's line holds no CR before this
  Open inline_[kInlineStack];
  std::vector<Open> spill_;  // the stack once deeper than kInlineStack
  Open* stack_ = inline_;    // inline_ or spill_.data()
  size_t capacity_ = kInlineStack;
  uint32_t depth_ = 0;  // open aggregates (32 bits: fewer instructions per element)
  bool top_seen_ = false;  // the top-level (non-attribute) value's header was read
  ReplyType type_ = ReplyType::kNull;
  ReplyError error_ = ReplyError::kNone;
  size_t hint_total_ = 0;
};

// One node of a flattened reply, in pre-order.
struct ReplyNode {
  ReplyType type;
  bool is_null = false;     // "$-1", "*-1", "_"
  int64_t count = 0;        // aggregates: number of direct children (maps and
                            // attributes: pairs*2); an attribute inside an
                            // aggregate is not counted, its annotated value is
  int64_t integer = 0;      // kInteger, kBoolean (0/1)
  std::string_view str;     // payload: bulk/verbatim content (without "txt:"),
                            // simple string / error / double / big number text,
                            // integer / boolean line text; empty for aggregates
  std::string_view format;  // kVerbatim only: the 3-byte format, e.g. "txt"
  std::string_view raw;     // the node's own bytes (header+payload, not children)
  bool attribute = false;   // this node is an attribute (skipped by most users)
};

// Parses one complete, already framed reply into nodes (pre-order, which is
// the order of the bytes). Returns false if the frame is malformed, incomplete
// or followed by extra bytes (cannot happen for a frame accepted by
// ReplyFramer). No limits apply beyond memory: the framer enforces them.
// Attributes: the '|' node has attribute=true and count = 2 * pairs; its
// children are ordinary nodes that follow it; the value it annotates follows
// them as the next sibling (at the top level: the node after the attribute's
// subtree). Skip an attribute with SkipReplySubtree().
bool ParseReplyTree(std::string_view frame, std::vector<ReplyNode>* out);

// Index of the node after the subtree rooted at nodes[i] (i itself when
// i >= nodes.size()). Useful to skip whole values; for an attribute node it
// skips the attribute and its children, landing on the annotated value.
size_t SkipReplySubtree(const std::vector<ReplyNode>& nodes, size_t i);

}  // namespace keyfence::protocol
