// RESP2/RESP3 reply framing and tree parsing; see reply_parser.h.
//
// Both the framer and the tree parser walk the reply one element at a time
// with ReadElement(): an element is one header line plus, for blob types, its
// payload. Aggregates only announce how many elements follow, so both keep a
// stack of remaining counts and never recurse: a reply may nest far deeper
// than the C++ stack could follow.
#include "protocol/digits.h"
#include "protocol/reply_parser.h"
#include "protocol/resp_values.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace keyfence::protocol {
namespace {

enum class Step : uint8_t { kOk, kNeedMore, kError };

// One element as read from the wire. Offsets are relative to the data start.
struct Element {
  ReplyType type = ReplyType::kNull;
  bool is_null = false;
  int64_t count = 0;    // aggregates: elements that follow (2n for maps / attributes)
  int64_t integer = 0;  // kInteger, kBoolean
  size_t str_off = 0;   // payload / line text
  size_t str_len = 0;
  size_t end = 0;  // offset just past the element's own bytes
};

bool IsAggregate(ReplyType t) {
  switch (t) {
    case ReplyType::kArray:
    case ReplyType::kMap:
    case ReplyType::kSet:
    case ReplyType::kAttribute:
    case ReplyType::kPush:
      return true;
    default:
      return false;
  }
}

bool TypeFromByte(char c, ReplyType* t) {
  switch (c) {
    case '+':
      *t = ReplyType::kSimpleString;
      return true;
    case '-':
      *t = ReplyType::kError;
      return true;
    case ':':
      *t = ReplyType::kInteger;
      return true;
    case '$':
      *t = ReplyType::kBulk;
      return true;
    case '*':
      *t = ReplyType::kArray;
      return true;
    case '_':
      *t = ReplyType::kNull;
      return true;
    case ',':
      *t = ReplyType::kDouble;
      return true;
    case '#':
      *t = ReplyType::kBoolean;
      return true;
    case '!':
      *t = ReplyType::kBlobError;
      return true;
    case '=':
      *t = ReplyType::kVerbatim;
      return true;
    case '(':
      *t = ReplyType::kBigNumber;
      return true;
    case '%':
      *t = ReplyType::kMap;
      return true;
    case '~':
      *t = ReplyType::kSet;
      return true;
    case '|':
      *t = ReplyType::kAttribute;
      return true;
    case '>':
      *t = ReplyType::kPush;
      return true;
    default:
      return false;
  }
}

// Validates a one-line element's text p[0..n) and fills e's value fields.
bool ReadLineValue(const char* p, size_t n, Element* e) {
  switch (e->type) {
    case ReplyType::kInteger:
      return ParseInteger(p, n, &e->integer);
    case ReplyType::kNull:
      e->is_null = true;
      return n == 0;
    case ReplyType::kBoolean:
      e->integer = (n == 1 && p[0] == 't') ? 1 : 0;
      return n == 1 && (p[0] == 't' || p[0] == 'f');
    case ReplyType::kDouble:
      return ValidDouble(p, n);
    case ReplyType::kBigNumber:
      return ValidBigNumber(p, n);
    default:  // simple string, error: any text
      return true;
  }
}

// Reads the blob payload of a '$', '!' or '=' element whose header line ends
// at `after` (first payload byte).
Step ReadBlob(const char* data, size_t len, size_t after, int64_t blen, const ReplyLimits& limits,
              Element* e, ReplyError* err, size_t* hint) {
  if (blen < 0) {
    if (blen == -1 && e->type == ReplyType::kBulk) {
      e->is_null = true;
      e->end = after;
      return Step::kOk;
    }
    *err = ReplyError::kBadLength;
    return Step::kError;
  }
  const size_t n = static_cast<size_t>(blen);
  if (n > limits.max_bulk_len) {
    *err = ReplyError::kBadLength;
    return Step::kError;
  }
  if (len - after < n || len - after - n < 2) {
    *hint = (n > std::numeric_limits<size_t>::max() - after - 2) ? 0 : after + n + 2;
    return Step::kNeedMore;
  }
  if (data[after + n] != '\r' || data[after + n + 1] != '\n') {
    *err = ReplyError::kMissingCrlf;
    return Step::kError;
  }
  e->str_off = after;
  e->str_len = n;
  if (e->type == ReplyType::kVerbatim) {
    if (n < 4 || data[after + 3] != ':') {
      *err = ReplyError::kBadValue;
      return Step::kError;
    }
  }
  e->end = after + n + 2;
  return Step::kOk;
}


// Finds the CR that ends the line of the element at data[pos] and checks the
// LF after it. *scan: no CR in data[pos+1 .. *scan), updated on kNeedMore so
// that a byte-at-a-time feed stays linear.
Step FindLine(const char* data, size_t len, size_t pos, size_t* scan, const ReplyLimits& limits,
              size_t* cr_at, ReplyError* err) {
  const size_t from = std::max(*scan, pos + 1);
  const char* cr =
      from < len ? static_cast<const char*>(std::memchr(data + from, '\r', len - from)) : nullptr;
  // A line is too long once more than max_bulk_len bytes after the type byte
  // (at least 64, for headers) wait for their CR; judged the same way once the
  // CR is there, so the verdict does not depend on how the bytes were split.
  auto too_long = [&limits](size_t n) { return n > limits.max_bulk_len && n > 64; };
  if (cr == nullptr) {
    if (too_long(len - pos - 1)) {
      *err = ReplyError::kLineTooLong;
      return Step::kError;
    }
    *scan = std::max(from, len);
    return Step::kNeedMore;
  }
  const size_t r = static_cast<size_t>(cr - data);
  if (too_long(r - pos - 1)) {
    *err = ReplyError::kLineTooLong;
    return Step::kError;
  }
  if (r + 1 >= len) {
    *scan = r;
    return Step::kNeedMore;
  }
  if (data[r + 1] != '\n') {
    *err = ReplyError::kMissingCrlf;
    return Step::kError;
  }
  *cr_at = r;
  return Step::kOk;
}

// Types whose line is a length or count (and ':'), tried on the fast path.
inline bool NumericLine(ReplyType t) {
  return t != ReplyType::kSimpleString && t != ReplyType::kError && t != ReplyType::kNull &&
         t != ReplyType::kDouble && t != ReplyType::kBoolean && t != ReplyType::kBigNumber;
}

// Reads the element starting at data[pos] (see FindLine for *scan).
Step ReadElement(const char* data, size_t len, size_t pos, size_t* scan, const ReplyLimits& limits,
                 Element* e, ReplyError* err, size_t* hint) {
  if (pos >= len) return Step::kNeedMore;
  *e = Element{};
  if (!TypeFromByte(data[pos], &e->type)) {
    *err = ReplyError::kBadType;
    return Step::kError;
  }
  uint64_t fast = 0;
  size_t r = NumericLine(e->type) ? internal::FastLineNumber(data, pos + 1, len, &fast) : 0;
  const bool is_fast = r != 0;
  if (!is_fast) {
    const Step s = FindLine(data, len, pos, scan, limits, &r, err);
    if (s != Step::kOk) return s;
  }
  const char* line = data + pos + 1;
  const size_t n = r - pos - 1;
  const size_t after = r + 2;
  int64_t count = static_cast<int64_t>(fast);
  switch (e->type) {
    case ReplyType::kBulk:
    case ReplyType::kBlobError:
    case ReplyType::kVerbatim: {
      if (!is_fast && !ParseLength(line, n, &count)) {
        *err = ReplyError::kBadLength;
        return Step::kError;
      }
      const Step s = ReadBlob(data, len, after, count, limits, e, err, hint);
      if (s == Step::kNeedMore) *scan = r;
      return s;
    }
    case ReplyType::kArray:
    case ReplyType::kMap:
    case ReplyType::kSet:
    case ReplyType::kAttribute:
    case ReplyType::kPush: {
      if (!is_fast && !ParseLength(line, n, &count)) {
        *err = ReplyError::kBadLength;
        return Step::kError;
      }
      if (count == -1 && e->type == ReplyType::kArray) {
        e->is_null = true;
        count = 0;
      } else if (count < 0 || static_cast<uint64_t>(count) > limits.max_elements) {
        *err = ReplyError::kBadLength;
        return Step::kError;
      }
      if (e->type == ReplyType::kMap || e->type == ReplyType::kAttribute) {
        if (count > std::numeric_limits<int64_t>::max() / 2) {
          *err = ReplyError::kBadLength;
          return Step::kError;
        }
        count *= 2;
      }
      e->count = count;
      e->end = after;
      return Step::kOk;
    }
    default:
      if (is_fast) {  // kInteger
        e->integer = count;
      } else if (!ReadLineValue(line, n, e)) {
        *err = ReplyError::kBadValue;
        return Step::kError;
      }
      e->str_off = pos + 1;
      e->str_len = n;
      e->end = after;
      return Step::kOk;
  }
}

}  // namespace

void ReplyFramer::Reset() {
  pos_ = 0;
  scan_ = 0;
  depth_ = 0;
  if (stack_ != inline_) ReleaseSpill();
  top_seen_ = false;
  type_ = ReplyType::kNull;
  error_ = ReplyError::kNone;
  hint_total_ = 0;
}

[[gnu::noinline, gnu::cold]] void ReplyFramer::Grow() {
  if (stack_ == inline_) spill_.assign(inline_, inline_ + depth_);
  spill_.resize(capacity_ * 2);
  stack_ = spill_.data();
  capacity_ = spill_.size();
}

[[gnu::noinline, gnu::cold]] void ReplyFramer::ReleaseSpill() {
  std::vector<Open>().swap(spill_);
  stack_ = inline_;
  capacity_ = kInlineStack;
}

bool ReplyFramer::CompleteValue(Open* stack) {
  while (depth_ > 0) {
    if (--stack[depth_ - 1].remaining > 0) return false;
    --depth_;
    // A finished attribute is not an element of its parent: the value it
    // annotates comes next and counts instead.
    if (stack[depth_].is_attr) return false;
  }
  return true;
}

ParseStatus ReplyFramer::Frame(const char* data, size_t len, size_t* consumed) {
  *consumed = 0;
  hint_total_ = 0;
  if (error_ != ReplyError::kNone) return ParseStatus::kError;
  // One compare per aggregate covers both the depth limit and a full stack.
  size_t push_limit = std::min(limits_.max_depth, capacity_);
  // pos_ and stack_ in locals: kept in registers across ReadElement (and the
  // stack's count stores could alias pos_).
  size_t pos = pos_;
  Open* stack = stack_;
  for (;;) {
    Element e;
    ReplyError err = ReplyError::kNone;
    size_t hint = 0;
    const Step s = ReadElement(data, len, pos, &scan_, limits_, &e, &err, &hint);
    if (s == Step::kNeedMore) {
      pos_ = pos;
      hint_total_ = hint;
      return ParseStatus::kNeedMore;
    }
    if (s == Step::kError) {
      pos_ = pos;
      error_ = err;
      return ParseStatus::kError;
    }
    if (depth_ == 0 && e.type != ReplyType::kAttribute) {
      type_ = e.type;
      top_seen_ = true;
    }
    pos = e.end;
    scan_ = pos;
    if (IsAggregate(e.type) && !e.is_null) {
      if (depth_ >= push_limit) {
        if (depth_ >= limits_.max_depth || depth_ == UINT32_MAX) {
          pos_ = pos;
          error_ = ReplyError::kTooDeep;
          return ParseStatus::kError;
        }
        Grow();
        stack = stack_;
        push_limit = std::min(limits_.max_depth, capacity_);
      }
      if (e.count > 0) {
        stack[depth_] = Open{e.count, e.type == ReplyType::kAttribute};
        ++depth_;
        continue;
      }
      if (e.type == ReplyType::kAttribute) continue;  // "|0": the value follows
    }
    if (CompleteValue(stack)) {
      *consumed = pos;
      pos_ = 0;
      scan_ = 0;
      top_seen_ = false;
      if (stack != inline_) ReleaseSpill();  // a deep reply's stack is not kept
      return ParseStatus::kOk;
    }
  }
}

bool ParseReplyTree(std::string_view frame, std::vector<ReplyNode>* out) {
  out->clear();
  constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();
  const ReplyLimits limits{kUnlimited, kUnlimited, kUnlimited};
  struct Open {
    int64_t remaining;
    bool is_attr;
  };
  std::vector<Open> stack;
  const char* data = frame.data();
  size_t pos = 0;
  for (;;) {
    Element e;
    ReplyError err = ReplyError::kNone;
    size_t hint = 0;
    size_t scan = pos;
    if (ReadElement(data, frame.size(), pos, &scan, limits, &e, &err, &hint) != Step::kOk) {
      return false;
    }
    ReplyNode node{};
    node.type = e.type;
    node.is_null = e.is_null;
    node.count = e.count;
    node.integer = e.integer;
    node.attribute = e.type == ReplyType::kAttribute;
    node.raw = frame.substr(pos, e.end - pos);
    node.str = frame.substr(e.str_off, e.str_len);
    if (e.type == ReplyType::kVerbatim) {
      node.format = node.str.substr(0, 3);
      node.str.remove_prefix(4);
    }
    out->push_back(node);
    pos = e.end;
    if (IsAggregate(e.type) && !e.is_null) {
      if (e.count > 0) {
        stack.push_back(Open{e.count, e.type == ReplyType::kAttribute});
        continue;
      }
      if (e.type == ReplyType::kAttribute) continue;
    }
    bool done = true;
    while (!stack.empty()) {
      if (--stack.back().remaining > 0) {
        done = false;
        break;
      }
      const bool was_attr = stack.back().is_attr;
      stack.pop_back();
      if (was_attr) {
        done = false;
        break;
      }
    }
    if (done) return pos == frame.size();
  }
}

size_t SkipReplySubtree(const std::vector<ReplyNode>& nodes, size_t i) {
  if (i >= nodes.size()) return i;
  // Nodes still to visit. An attribute below the root does not fill one of
  // its parent's slots (the annotated value does), so it only adds children.
  int64_t pending = 1;
  for (bool root = true; pending > 0 && i < nodes.size(); root = false, ++i) {
    pending += nodes[i].count - ((nodes[i].attribute && !root) ? 0 : 1);
  }
  return i;
}

}  // namespace keyfence::protocol
