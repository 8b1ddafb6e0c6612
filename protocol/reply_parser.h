// RESP2/RESP3 reply framing and (cold-path) tree parsing.
//
// ReplyFramer finds the end of one complete reply in a backend read buffer,
// incrementally, without allocating per element (a small fixed stack of
// remaining-element counts). Used on the hot path to match backend replies to
// pending requests.
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

struct ReplyLimits {
  size_t max_bulk_len = 1ull << 32;  // largest bulk / verbatim / blob error
  size_t max_depth = 64;             // nesting of aggregates
  size_t max_elements = 1u << 30;    // elements of one aggregate
};

enum class ReplyError : uint8_t {
  kNone,
  kBadType,      // unknown type byte
  kBadLength,    // malformed or out-of-range length / count
  kTooDeep,      // nesting over max_depth
  kMissingCrlf,  // payload not followed by "\r\n"
  kBadValue,     // malformed integer / boolean / double line
};

class ReplyFramer {
 public:
  explicit ReplyFramer(const ReplyLimits& limits = {}) : limits_(limits) {}

  // Frames one reply at data[0..len). Same resume contract as RequestParser:
  // each call for the same reply starts at its first byte.
  // kOk: *consumed = bytes of the whole reply (a leading RESP3 attribute is part
  //      of the reply it annotates); type() is the type of the top-level value
  //      after any attribute; is_push() is true for '>' replies.
  ParseStatus Frame(const char* data, size_t len, size_t* consumed);

  ReplyType type() const { return type_; }
  bool is_push() const { return type_ == ReplyType::kPush; }
  ReplyError error() const { return error_; }
  void Reset();

 private:
  ReplyLimits limits_;
  size_t pos_ = 0;
  static constexpr int kMaxStack = 128;
  int64_t stack_[kMaxStack];  // remaining elements per open aggregate
  int depth_ = 0;
  bool top_seen_ = false;
  ReplyType type_ = ReplyType::kNull;
  ReplyError error_ = ReplyError::kNone;
};

// One node of a flattened reply, in pre-order.
struct ReplyNode {
  ReplyType type;
  bool is_null = false;   // "$-1", "*-1", "_"
  int64_t count = 0;      // aggregates: number of direct children (maps: pairs*2)
  int64_t integer = 0;    // kInteger, kBoolean (0/1)
  std::string_view str;   // payload: bulk/verbatim content (without "txt:"),
                          // simple string / error / double / big number text
  std::string_view raw;   // the node's own bytes (header+payload, not children)
  bool attribute = false;  // this node is an attribute (skipped by most users)
};

// Parses one complete, already framed reply into nodes. Returns false if the
// frame is malformed (cannot happen for a frame accepted by ReplyFramer).
bool ParseReplyTree(std::string_view frame, std::vector<ReplyNode>* out);

}  // namespace keyfence::protocol
