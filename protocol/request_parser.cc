// Incremental RESP request framer; see request_parser.h for the contract.
//
// Semantics follow Redis networking.c (processMultibulkBuffer,
// processInlineBuffer) and sds.c (sdssplitargs), with two deliberate
// tightenings, both documented in protocol/README.md:
//  - a header line's CR must be followed by LF (Redis skips the byte blindly);
//  - a complete inline line longer than max_inline_len is rejected too (Redis
//    only rejects it while the LF is still missing, so the outcome depended on
//    how the bytes were split into reads).
#include "protocol/digits.h"
#include "protocol/request_parser.h"

#include "protocol/error_replies.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

namespace keyfence::protocol {
namespace {

// Capacity kept for the argument vector of the next request. A request with
// more arguments grows it; a later small request gives the memory back.
constexpr size_t kKeptArgCapacity = 4096;
// Arguments reserved from the "*N" header alone (the count is untrusted).
constexpr size_t kMaxPreallocArgs = 1024;

// Redis string2ll on p[0..n). Up to 18 digits cannot overflow, so the common
// short lengths take an unchecked loop.
bool ParseLL(const char* p, size_t n, int64_t* out) {
  if (n == 0 || n > 20) return false;
  const bool negative = p[0] == '-';
  size_t i = negative ? 1 : 0;
  if (i == n) return false;
  if (p[i] < '1' || p[i] > '9') {
    if (n == 1 && p[0] == '0') {
      *out = 0;
      return true;
    }
    return false;  // leading zero, "-0", sign or junk
  }
  uint64_t v = 0;
  if (n - i <= 18) {
    for (; i < n; ++i) {
      const unsigned d = static_cast<unsigned char>(p[i]) - unsigned{'0'};
      if (d > 9) return false;
      v = v * 10 + d;
    }
    *out = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }
  for (; i < n; ++i) {
    const unsigned d = static_cast<unsigned char>(p[i]) - unsigned{'0'};
    if (d > 9) return false;
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > kMax + 1) return false;
    *out = static_cast<int64_t>(0 - v);  // modular conversion: well defined in C++20
  } else {
    if (v > kMax) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

// A bulk length: ParseLL semantics and non-negative, with a fast path for the
// usual few digits.
inline bool ParseBulkLen(const char* p, size_t n, uint64_t* out) {
  if (n == 0 || n > 18) {
    int64_t v = 0;
    if (!ParseLL(p, n, &v) || v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  if (p[0] == '0') {
    *out = 0;
    return n == 1;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned d = static_cast<unsigned char>(p[i]) - unsigned{'0'};
    if (d > 9) return false;  // also rejects a sign
    v = v * 10 + d;
  }
  *out = v;
  return true;
}


// isspace() in the C locale.
inline bool IsSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

inline bool IsHex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// memchr over data[from..len), tolerating from > len (a caller that broke the
// resume contract gets kNeedMore rather than undefined behaviour). Header
// lines are a few bytes long, so a short inline scan comes first and saves the
// call for them.
inline const char* Find(const char* data, size_t from, size_t len, char c) {
  if (from >= len) return nullptr;
  const size_t quick_end = len - from > 16 ? from + 16 : len;
  for (size_t i = from; i < quick_end; ++i) {
    if (data[i] == c) return data + i;
  }
  if (quick_end == len) return nullptr;
  return static_cast<const char*>(std::memchr(data + quick_end, c, len - quick_end));
}

// The byte a "\\c" escape inside double quotes stands for.
inline char Unescape(unsigned char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return static_cast<char>(c);
  }
}

// The token loop of sdssplitargs(): reads one token of line[0..n) starting at
// the non-blank byte line[*i], appends its unescaped bytes to *out and leaves
// *i past it. False on unbalanced quotes (or a closing quote followed by
// something other than a blank).
bool ReadInlineToken(const char* line, size_t n, size_t* pos, std::string* out) {
  auto at = [line, n](size_t k) -> unsigned char {
    return k < n ? static_cast<unsigned char>(line[k]) : 0;
  };
  size_t i = *pos;
  bool in_dq = false;
  bool in_sq = false;
  bool done = false;
  while (!done) {
    const unsigned char c = at(i);
    if (in_dq) {
      if (c == '\\' && at(i + 1) == 'x' && IsHex(at(i + 2)) && IsHex(at(i + 3))) {
        out->push_back(static_cast<char>(HexValue(at(i + 2)) * 16 + HexValue(at(i + 3))));
        i += 3;
      } else if (c == '\\' && at(i + 1) != 0) {
        ++i;
        out->push_back(Unescape(at(i)));
      } else if (c == '"') {
        // The closing quote must be followed by a space or nothing at all.
        if (at(i + 1) != 0 && !IsSpace(at(i + 1))) return false;
        done = true;
      } else if (c == 0) {
        return false;  // unterminated quotes
      } else {
        out->push_back(static_cast<char>(c));
      }
    } else if (in_sq) {
      if (c == '\\' && at(i + 1) == '\'') {
        ++i;
        out->push_back('\'');
      } else if (c == '\'') {
        if (at(i + 1) != 0 && !IsSpace(at(i + 1))) return false;
        done = true;
      } else if (c == 0) {
        return false;
      } else {
        out->push_back(static_cast<char>(c));
      }
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == 0) {
      done = true;
    } else if (c == '"') {
      in_dq = true;
    } else if (c == '\'') {
      in_sq = true;
    } else {
      out->push_back(static_cast<char>(c));
    }
    if (at(i) != 0) ++i;
  }
  *pos = i;
  return true;
}

}  // namespace

bool StringToInt64(std::string_view s, int64_t* out) { return ParseLL(s.data(), s.size(), out); }

std::string_view RequestParser::arg(size_t i) const {
  if (i >= argc_) return {};
  const Span& s = spans_[i];
  if (inline_) return std::string_view(inline_buf_.data() + s.offset, s.len);
  return std::string_view(base_ + s.offset, s.len);
}

void RequestParser::ClearResumeState() {
  pos_ = 0;
  scan_ = 0;
  want_args_ = -1;
  bulk_len_ = -1;
}

void RequestParser::Reset() {
  ClearResumeState();
  spans_.clear();
  base_ = nullptr;
  argc_ = 0;
  inline_ = false;
  error_ = RequestError::kNone;
  bad_byte_ = 0;
  hint_total_ = 0;
}

ParseStatus RequestParser::Fail(RequestError e) {
  error_ = e;
  argc_ = 0;
  hint_total_ = 0;
  return ParseStatus::kError;
}

ParseStatus RequestParser::Parse(const char* data, size_t len, size_t* consumed) {
  *consumed = 0;
  argc_ = 0;
  hint_total_ = 0;
  if (error_ != RequestError::kNone) return ParseStatus::kError;  // sticky until Reset()
  if (len == 0) return ParseStatus::kNeedMore;
  if (data[0] == '*') return ParseMultibulk(data, len, consumed);
  return ParseInline(data, len, consumed);
}

ParseStatus RequestParser::ParseMultibulk(const char* data, size_t len, size_t* consumed) {
  if (want_args_ < 0) {
    const ParseStatus st = ParseCount(data, len, consumed);
    if (want_args_ < 0) return st;  // need more, error, or an empty request
  }
  return ParseArgs(data, len, consumed);
}

// Reads the "*N\r\n" header. On success either sets want_args_ / pos_ for
// ParseArgs(), or, for N <= 0, completes an empty request.
ParseStatus RequestParser::ParseCount(const char* data, size_t len, size_t* consumed) {
  uint64_t fast = 0;
  size_t r = internal::FastLineNumber(data, 1, len, &fast);
  int64_t n = static_cast<int64_t>(fast);
  if (r == 0) {
    const char* cr = Find(data, std::max<size_t>(scan_, 1), len, '\r');
    if (cr == nullptr) {
      if (len > limits_.max_inline_len) return Fail(RequestError::kTooBigMbulkCount);
      scan_ = len;
      return ParseStatus::kNeedMore;
    }
    r = static_cast<size_t>(cr - data);
    // Same verdict as when the bytes before the CR arrived on their own.
    if (r > limits_.max_inline_len) return Fail(RequestError::kTooBigMbulkCount);
    if (r + 1 >= len) {
      scan_ = r;
      return ParseStatus::kNeedMore;
    }
    if (data[r + 1] != '\n') return Fail(RequestError::kMissingCrlf);
    if (!ParseLL(data + 1, r - 1, &n)) return Fail(RequestError::kInvalidMultibulkLength);
  } else if (r > limits_.max_inline_len) {
    return Fail(RequestError::kTooBigMbulkCount);
  }
  if (n > 0 && static_cast<uint64_t>(n) > limits_.max_args) {
    return Fail(RequestError::kInvalidMultibulkLength);
  }
  if (n <= 0) {  // "*0", "*-1": an empty request the caller skips
    ClearResumeState();
    inline_ = false;
    *consumed = r + 2;
    return ParseStatus::kOk;
  }
  want_args_ = n;
  pos_ = r + 2;
  scan_ = pos_;
  if (spans_.capacity() > kKeptArgCapacity) std::vector<Span>().swap(spans_);
  spans_.clear();
  spans_.reserve(std::min<size_t>(static_cast<size_t>(n), kMaxPreallocArgs));
  return ParseStatus::kOk;
}

// Reads the N x "$len\r\n<payload>\r\n" elements, resuming at pos_. The
// resume state lives in locals on the hot path and is stored back only when
// more bytes are needed.
ParseStatus RequestParser::ParseArgs(const char* data, size_t len, size_t* consumed) {
  const size_t want = static_cast<size_t>(want_args_);
  const size_t max_line = limits_.max_inline_len;
  const size_t max_bulk = limits_.max_bulk_len;
  size_t pos = pos_;
  size_t scan = scan_;
  int64_t bulk = bulk_len_;
  size_t have = spans_.size();
  while (have < want) {
    if (bulk < 0) {
      if (pos >= len) break;
      if (data[pos] != '$') {
        bad_byte_ = data[pos];
        return Fail(RequestError::kExpectedDollar);
      }
      uint64_t n = 0;
      size_t r = internal::FastLineNumber(data, pos + 1, len, &n);
      if (r == 0) {
        const char* cr = Find(data, std::max(scan, pos + 1), len, '\r');
        if (cr == nullptr) {
          if (len - pos > max_line) return Fail(RequestError::kTooBigBulkCount);
          scan = len;
          break;
        }
        r = static_cast<size_t>(cr - data);
        if (r - pos > max_line) return Fail(RequestError::kTooBigBulkCount);
        if (r + 1 >= len) {
          scan = r;
          break;
        }
        if (data[r + 1] != '\n') return Fail(RequestError::kMissingCrlf);
        if (!ParseBulkLen(data + pos + 1, r - pos - 1, &n)) {
          return Fail(RequestError::kInvalidBulkLength);
        }
      } else if (r - pos > max_line) {
        return Fail(RequestError::kTooBigBulkCount);
      }
      if (n > max_bulk) return Fail(RequestError::kInvalidBulkLength);
      bulk = static_cast<int64_t>(n);
      pos = r + 2;
      scan = pos;
    }
    const size_t blen = static_cast<size_t>(bulk);
    // pos <= len always holds here unless the caller broke the contract.
    if (pos > len || len - pos < blen || len - pos - blen < 2) {
      hint_total_ = pos + blen + 2;
      break;
    }
    const size_t end = pos + blen;
    if (data[end] != '\r' || data[end + 1] != '\n') return Fail(RequestError::kMissingCrlf);
    spans_.push_back(Span{pos, blen});
    ++have;
    pos = end + 2;
    scan = pos;
    bulk = -1;
  }
  if (have < want) {
    pos_ = pos;
    scan_ = scan;
    bulk_len_ = bulk;
    return ParseStatus::kNeedMore;
  }
  *consumed = pos;
  argc_ = want;
  base_ = data;
  inline_ = false;
  ClearResumeState();
  return ParseStatus::kOk;
}

// Reads one "...\n" line and splits it like sdssplitargs().
ParseStatus RequestParser::ParseInline(const char* data, size_t len, size_t* consumed) {
  const char* nl = Find(data, scan_, len, '\n');
  if (nl == nullptr) {
    if (len > limits_.max_inline_len) return Fail(RequestError::kTooBigInline);
    scan_ = len;
    return ParseStatus::kNeedMore;
  }
  const size_t n = static_cast<size_t>(nl - data);
  // Judge the line as if the LF had not arrived yet, so that the verdict does
  // not depend on how the bytes were split into reads.
  if (n > limits_.max_inline_len) return Fail(RequestError::kTooBigInline);
  size_t line_len = n;
  if (line_len > 0 && data[line_len - 1] == '\r') --line_len;
  if (!SplitInline(data, line_len)) return Fail(RequestError::kUnbalancedQuotes);
  ClearResumeState();
  inline_ = true;
  argc_ = spans_.size();
  *consumed = n + 1;
  return ParseStatus::kOk;
}

// Mirrors sds.c sdssplitargs() byte for byte, including its C-string view of
// the line: a NUL byte ends the line (bytes after it are ignored), and every
// "look at the next byte" sees NUL at the end.
bool RequestParser::SplitInline(const char* line, size_t n) {
  if (const void* nul = std::memchr(line, '\0', n)) {
    n = static_cast<size_t>(static_cast<const char*>(nul) - line);
  }
  if (spans_.capacity() > kKeptArgCapacity) std::vector<Span>().swap(spans_);
  spans_.clear();
  inline_buf_.clear();
  inline_buf_.reserve(n);
  size_t i = 0;
  for (;;) {
    while (i < n && IsSpace(static_cast<unsigned char>(line[i]))) ++i;
    if (i >= n) return true;
    const size_t start = inline_buf_.size();
    if (!ReadInlineToken(line, n, &i, &inline_buf_)) return false;
    spans_.push_back(Span{start, inline_buf_.size() - start});
  }
}

std::string RequestParser::error_text() const {
  switch (error_) {
    case RequestError::kNone:
      return {};
    case RequestError::kInvalidMultibulkLength:
      return std::string(errors::kProtoMultibulkLength);
    case RequestError::kInvalidBulkLength:
      return std::string(errors::kProtoBulkLength);
    case RequestError::kExpectedDollar: {
      // Redis's addReplyErrorFormat turns CR / LF into spaces.
      const char c = (bad_byte_ == '\r' || bad_byte_ == '\n') ? ' ' : bad_byte_;
      return errors::ProtoExpectedDollar(c);
    }
    case RequestError::kTooBigInline:
      return std::string(errors::kProtoTooBigInline);
    case RequestError::kUnbalancedQuotes:
      return std::string(errors::kProtoUnbalancedQuotes);
    case RequestError::kMissingCrlf:
      return std::string(errors::kProtoExpectedCrlf);
    case RequestError::kTooBigMbulkCount:
      return std::string(errors::kProtoTooBigMbulkCount);
    case RequestError::kTooBigBulkCount:
      return std::string(errors::kProtoTooBigBulkCount);
  }
  return std::string(errors::kProto);
}

}  // namespace keyfence::protocol
