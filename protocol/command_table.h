// The Redis command table, generated from a real redis-server 7.0's
// COMMAND INFO / COMMAND DOCS by tools/gen_command_table.py into
// protocol/commands_gen.inc (committed; tests/unit fail if it is stale).
//
// Every command and every subcommand has a dense id in [0, size()), so policy
// code can keep per-command bitsets and counters as flat arrays.
// Immutable after static initialisation; safe to read from every thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace keyfence::protocol {

// COMMAND INFO flags.
enum CommandFlag : uint32_t {
  kCmdWrite = 1u << 0,
  kCmdReadonly = 1u << 1,
  kCmdDenyOom = 1u << 2,
  kCmdModule = 1u << 3,
  kCmdAdmin = 1u << 4,
  kCmdPubsub = 1u << 5,
  kCmdNoscript = 1u << 6,
  kCmdBlocking = 1u << 7,
  kCmdLoading = 1u << 8,
  kCmdStale = 1u << 9,
  kCmdSkipMonitor = 1u << 10,
  kCmdSkipSlowlog = 1u << 11,
  kCmdAsking = 1u << 12,
  kCmdFast = 1u << 13,
  kCmdNoAuth = 1u << 14,
  kCmdMayReplicate = 1u << 15,
  kCmdSentinel = 1u << 16,
  kCmdOnlySentinel = 1u << 17,
  kCmdNoMandatoryKeys = 1u << 18,
  kCmdProtected = 1u << 19,
  kCmdModuleGetKeys = 1u << 20,
  kCmdModuleNoCluster = 1u << 21,
  kCmdNoMulti = 1u << 22,
  kCmdMovableKeys = 1u << 23,
  kCmdAllowBusy = 1u << 24,
  kCmdModuleGetChannels = 1u << 25,
  kCmdNoAsyncLoading = 1u << 26,
};

// Redis ACL categories (COMMAND INFO "@..." entries), as bits.
enum AclCategory : uint32_t {
  kAclKeyspace = 1u << 0,
  kAclRead = 1u << 1,
  kAclWrite = 1u << 2,
  kAclSet = 1u << 3,
  kAclSortedSet = 1u << 4,
  kAclList = 1u << 5,
  kAclHash = 1u << 6,
  kAclString = 1u << 7,
  kAclBitmap = 1u << 8,
  kAclHyperLogLog = 1u << 9,
  kAclGeo = 1u << 10,
  kAclStream = 1u << 11,
  kAclPubSub = 1u << 12,
  kAclAdmin = 1u << 13,
  kAclFast = 1u << 14,
  kAclSlow = 1u << 15,
  kAclBlocking = 1u << 16,
  kAclDangerous = 1u << 17,
  kAclConnection = 1u << 18,
  kAclTransaction = 1u << 19,
  kAclScripting = 1u << 20,
};

// Key spec flags (COMMAND INFO key specification "flags").
enum KeySpecFlag : uint32_t {
  kKsRO = 1u << 0,
  kKsRW = 1u << 1,
  kKsOW = 1u << 2,
  kKsRM = 1u << 3,
  kKsAccess = 1u << 4,
  kKsUpdate = 1u << 5,
  kKsInsert = 1u << 6,
  kKsDelete = 1u << 7,
  kKsNotKey = 1u << 8,
  kKsIncomplete = 1u << 9,
  kKsVariableFlags = 1u << 10,
};

struct KeySpec {
  enum class Begin : uint8_t { kUnknown, kIndex, kKeyword };
  enum class Find : uint8_t { kUnknown, kRange, kKeynum };
  uint32_t flags;
  Begin begin;
  int32_t index;             // Begin::kIndex
  std::string_view keyword;  // Begin::kKeyword (upper case as Redis reports it)
  int32_t startfrom;         // Begin::kKeyword (negative: search backwards from the end)
  Find find;
  int32_t lastkey, keystep, limit;    // Find::kRange
  int32_t keynumidx, firstkey, step;  // Find::kKeynum
};

struct CommandInfo {
  std::string_view name;       // lower case; subcommands "parent|sub"
  uint16_t id;                 // dense id over commands and subcommands
  int16_t arity;               // Redis arity (negative: at least -arity)
  uint32_t flags;              // CommandFlag bits
  uint32_t acl_categories;     // AclCategory bits
  std::span<const KeySpec> key_specs;
  std::span<const CommandInfo> subcommands;
  const CommandInfo* parent;   // null for top-level commands
};

class CommandTable {
 public:
  static const CommandTable& Get();

  // Top-level command by name, case-insensitive. nullptr if unknown.
  const CommandInfo* Find(std::string_view name) const;
  // Subcommand of a command that has subcommands, case-insensitive. nullptr if unknown.
  const CommandInfo* FindSub(const CommandInfo& parent, std::string_view sub) const;
  // "get", "CLIENT|KILL", "client|kill": command or subcommand by full name.
  const CommandInfo* FindByFullName(std::string_view full) const;
  // Command or subcommand by dense id.
  const CommandInfo& ById(uint16_t id) const { return *by_id_[id]; }
  size_t size() const { return size_; }
  std::span<const CommandInfo> commands() const;  // top-level, sorted by name

  // "@dangerous" / "dangerous" -> bit; false if unknown.
  static bool ParseCategory(std::string_view name, uint32_t* bit);
  static std::string_view CategoryName(uint32_t bit);

  // Version of the redis-server the table was generated from, e.g. "7.0.15".
  static std::string_view RedisVersion();

 private:
  struct Index;  // name -> command lookup, built once by the constructor
  CommandTable();
  const CommandInfo* const* by_id_;
  size_t size_;
  const Index* index_;
};

}  // namespace keyfence::protocol
