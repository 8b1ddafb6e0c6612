// An incremental RDB parser (the format Redis 7.0 writes, RDB version <= 10,
// and the older encodings a 7.0 server still loads; 11/12 types of 7.2 too):
// bytes go in by Feed() as they arrive (from a file or a replication stream),
// and each key comes out through RdbSink::OnKey with its type, encoding,
// element count, sizes, TTL and LRU/LFU hints. Values are not kept: memory is
// bounded by one record (a key and its value) at a time, and by the named
// limits below against a corrupt or hostile stream. The checksum (CRC64) at
// EOF is checked when the stream carries one. Pure: no I/O, no globals.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace keyfence::rdb {

enum class Type : uint8_t { kString, kList, kSet, kZset, kHash, kStream, kModule };
std::string_view TypeName(Type t);  // as TYPE answers: string, list, ... ("module" for modules)

struct KeyInfo {
  uint64_t db = 0;
  std::string_view key;
  Type type = Type::kString;
  uint8_t rdb_type = 0;        // the RDB object type byte (encoding)
  uint64_t elements = 0;       // strings 1; list/set/zset/hash members; stream entries
  uint64_t payload_bytes = 0;  // the value's bytes as stored (uncompressed)
  uint64_t record_bytes = 0;   // the record's size in the RDB (key, value, TTL, hints)
  uint64_t memory = 0;         // estimated MEMORY USAGE (rdb/memory.h): key, entry and value
  int64_t expire_ms = -1;      // absolute Unix ms; -1: no TTL
  int64_t idle_s = -1;         // LRU idle time; -1: not in the RDB
  int freq = -1;               // LFU counter; -1: not in the RDB
};

class RdbSink {
 public:
  virtual ~RdbSink() = default;
  virtual void OnKey(const KeyInfo& k) = 0;
  virtual void OnAux(std::string_view name, std::string_view value) {
    (void)name;
    (void)value;
  }
  virtual void OnFunction(std::string_view code) { (void)code; }
};

struct Limits {
  uint64_t max_record_bytes = 1ull << 30;  // one key + value, buffered (corrupt lengths stop here)
  uint64_t max_elements = 1ull << 32;      // per collection
};

class RdbParser {
 public:
  explicit RdbParser(RdbSink& sink, Limits limits = {});

  // Feeds the next bytes; false once the stream is malformed (error() says
  // how, and at which offset). Bytes after EOF (+ checksum) are ignored.
  bool Feed(std::string_view data);
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  const std::string& error() const { return error_; }
  int version() const { return version_; }
  uint64_t offset() const { return consumed_; }  // bytes consumed so far
  uint64_t keys() const { return keys_; }
  uint64_t modules_skipped() const { return modules_; }

 private:
  enum class State : uint8_t { kHeader, kBody, kChecksum, kDone, kFailed };
  enum class Step : uint8_t { kOk, kNeedMore, kBad };
  Step ParseOne();  // one record from buf_[pos_..]
  void Fail(std::string why);

  RdbSink& sink_;
  Limits limits_;
  State state_ = State::kHeader;
  std::string buf_;   // bytes not yet consumed (at most one record plus a read's worth)
  size_t need_ = 0;   // do not try again before buf_ holds this many bytes
  uint64_t consumed_ = 0;
  uint64_t crc_ = 0;  // over every consumed byte
  int version_ = 0;
  std::string error_;
  // State carried between records.
  uint64_t db_ = 0;
  int64_t expire_ms_ = -1;
  int64_t idle_s_ = -1;
  int freq_ = -1;
  uint64_t keys_ = 0;
  uint64_t modules_ = 0;
  friend class Cursor;
};

}  // namespace keyfence::rdb
