// Incremental RESP request framer (multibulk and inline).
//
// Responsibility: turn the bytes a client sent into one command at a time, as
// views into the caller's read buffer. No allocation per request in the
// multibulk case (the argument vector keeps its capacity); inline requests are
// unescaped into an internal scratch string.
// Ownership: the parser owns only its resume state and scratch space.
// Thread affinity: one parser per client connection (worker-local).
//
// Contract: the caller keeps unconsumed bytes, so every call for the same
// request sees the request from its first byte at data[0] (the buffer may have
// moved or grown in between: the parser stores offsets, never pointers).
// After kOk the views returned by arg() are valid until the next Parse() call
// or until the caller consumes/moves the buffer, whichever comes first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keyfence::protocol {

// Named limits, checked before the caller is asked to grow any buffer.
// max_inline_len also bounds a multibulk header line ("*N" / "$len") that has
// no CR yet, like Redis's PROTO_INLINE_MAX_SIZE does for both.
struct RequestLimits {
  size_t max_bulk_len = 512u * 1024 * 1024;  // config: max_request_bytes
  size_t max_args = 1024 * 1024;             // arguments per command
  size_t max_inline_len = 64 * 1024;         // one inline request line
};

enum class ParseStatus : uint8_t { kOk, kNeedMore, kError };

enum class RequestError : uint8_t {
  kNone,
  kInvalidMultibulkLength,  // "*abc", "*+1", "*01", over max_args ("*-5" is an
                            // empty request, as in Redis)
  kInvalidBulkLength,       // "$abc", "$-1" in a request, over max_bulk_len
  kExpectedDollar,          // an element that does not start with '$'
  kTooBigInline,            // inline line longer than max_inline_len
  kUnbalancedQuotes,        // inline request with bad quoting
  kMissingCrlf,             // bulk payload (or a header line's CR) not followed
                            // by "\r\n" / "\n"
  kTooBigMbulkCount,        // "*..." header with no CR within max_inline_len
  kTooBigBulkCount,         // "$..." header with no CR within max_inline_len
};

// Redis string2ll semantics: optional '-', then digits without leading zeros
// ("0" itself is fine; "-0", "+1", "01", " 1", "" are not), must fit int64.
// Useful for numeric arguments (numkeys, counts) that Redis parses the same way.
bool StringToInt64(std::string_view s, int64_t* out);

class RequestParser {
 public:
  explicit RequestParser(const RequestLimits& limits = {}) : limits_(limits) {}

  void set_limits(const RequestLimits& limits) { limits_ = limits; }
  const RequestLimits& limits() const { return limits_; }

  // Frames one request at data[0..len).
  //  kOk:       *consumed = bytes of this request (including empty inline lines
  //             or "*0\r\n" / "*-1\r\n" skipped before it is legal only as a
  //             request with argc()==0, which the caller simply ignores).
  //  kNeedMore: *consumed = 0; hint_total() may tell how many bytes in total
  //             the request needs (0 if unknown) so the caller can reserve once.
  //  kError:    error() says why; the stream cannot be resynchronised.
  ParseStatus Parse(const char* data, size_t len, size_t* consumed);

  size_t argc() const { return argc_; }
  std::string_view arg(size_t i) const;
  bool is_inline() const { return inline_; }
  RequestError error() const { return error_; }
  // Redis-compatible text of the last error, without "-ERR " and CRLF, e.g.
  // "Protocol error: invalid multibulk length" or
  // "Protocol error: expected '$', got 'x'".
  std::string error_text() const;
  size_t hint_total() const { return hint_total_; }

  // Forget any partial request (e.g. after the connection was reset).
  void Reset();

 private:
  struct Span {
    size_t offset;
    size_t len;
  };

  ParseStatus ParseMultibulk(const char* data, size_t len, size_t* consumed);
  ParseStatus ParseCount(const char* data, size_t len, size_t* consumed);
  ParseStatus ParseArgs(const char* data, size_t len, size_t* consumed);
  ParseStatus ParseInline(const char* data, size_t len, size_t* consumed);
  // sdssplitargs() of line[0..n) into inline_buf_ / spans_; false on bad quotes.
  bool SplitInline(const char* line, size_t n);
  ParseStatus Fail(RequestError e);
  void ClearResumeState();

  RequestLimits limits_;
  // Resume state for a partially received request (offsets into data).
  size_t pos_ = 0;              // offset of the next unparsed element
  size_t scan_ = 0;             // the current line holds no CR / LF before this
  int64_t want_args_ = -1;      // from the "*N" header, -1 until read
  int64_t bulk_len_ = -1;       // from the current "$len" header, -1 until read
  std::vector<Span> spans_;     // args: offsets into base_ or inline_buf_
  const char* base_ = nullptr;  // data of the last kOk (multibulk)
  size_t argc_ = 0;
  bool inline_ = false;
  std::string inline_buf_;  // unescaped inline arguments, back to back
  RequestError error_ = RequestError::kNone;
  char bad_byte_ = 0;  // for kExpectedDollar
  size_t hint_total_ = 0;
};

}  // namespace keyfence::protocol
