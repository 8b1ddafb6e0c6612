#include "protocol/command_table.h"

#include <bit>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace keyfence::protocol {
namespace {

// kKeySpecs, kSubcommands, kCommands, kById and the size constants.
#include "protocol/commands_gen.inc"

// ACL category names in bit order (AclCategory bit i <-> kCategoryNames[i]). The generator
// fails on any category redis-server reports that command_table.h does not know.
constexpr std::string_view kCategoryNames[] = {
    "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
    "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
    "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting",
};
static_assert(std::size(kCategoryNames) == 21);
static_assert(kAclScripting == 1u << 20);

constexpr char ToLowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
}

// Lower-cases `in` into `out` (capacity kMaxFullNameLength). False if `in` is empty or longer
// than any command name, i.e. certainly unknown.
bool LowerName(std::string_view in, char* out) {
  if (in.empty() || in.size() > kMaxFullNameLength) return false;
  for (size_t i = 0; i < in.size(); ++i) out[i] = ToLowerAscii(in[i]);
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLowerAscii(a[i]) != ToLowerAscii(b[i])) return false;
  }
  return true;
}

}  // namespace

// Every full name ("get", "client|kill") -> its entry. Keys view the generated names, which
// live for the whole program.
struct CommandTable::Index {
  absl::flat_hash_map<absl::string_view, const CommandInfo*> by_name;

  const CommandInfo* Lookup(const char* data, size_t size) const {
    auto it = by_name.find(absl::string_view(data, size));
    return it == by_name.end() ? nullptr : it->second;
  }
};

const CommandTable& CommandTable::Get() {
  static const CommandTable table;  // trivially destructible: no exit-time teardown
  return table;
}

CommandTable::CommandTable() : by_id_(kById), size_(kNumCommandsAndSubcommands), index_(nullptr) {
  auto* index = new Index();  // intentionally never freed (lives as long as the process)
  index->by_name.reserve(kNumCommandsAndSubcommands);
  for (const CommandInfo* cmd : kById) {
    index->by_name.emplace(absl::string_view(cmd->name.data(), cmd->name.size()), cmd);
  }
  index_ = index;
}

const CommandInfo* CommandTable::Find(std::string_view name) const {
  char buf[kMaxFullNameLength];
  if (!LowerName(name, buf)) return nullptr;
  const CommandInfo* cmd = index_->Lookup(buf, name.size());
  return cmd != nullptr && cmd->parent == nullptr ? cmd : nullptr;
}

const CommandInfo* CommandTable::FindSub(const CommandInfo& parent, std::string_view sub) const {
  const std::string_view prefix = parent.name;
  if (parent.subcommands.empty() || prefix.size() + 1 >= kMaxFullNameLength) return nullptr;
  char buf[kMaxFullNameLength];
  std::memcpy(buf, prefix.data(), prefix.size());
  buf[prefix.size()] = '|';
  const size_t offset = prefix.size() + 1;
  if (sub.size() > kMaxFullNameLength - offset || !LowerName(sub, buf + offset)) return nullptr;
  const CommandInfo* cmd = index_->Lookup(buf, offset + sub.size());
  return cmd != nullptr && cmd->parent == &parent ? cmd : nullptr;
}

const CommandInfo* CommandTable::FindByFullName(std::string_view full) const {
  char buf[kMaxFullNameLength];
  if (!LowerName(full, buf)) return nullptr;
  return index_->Lookup(buf, full.size());
}

std::span<const CommandInfo> CommandTable::commands() const { return kCommands; }

bool CommandTable::ParseCategory(std::string_view name, uint32_t* bit) {
  if (!name.empty() && name.front() == '@') name.remove_prefix(1);
  for (size_t i = 0; i < std::size(kCategoryNames); ++i) {
    if (EqualsIgnoreCase(name, kCategoryNames[i])) {
      *bit = 1u << i;
      return true;
    }
  }
  return false;
}

std::string_view CommandTable::CategoryName(uint32_t bit) {
  if (!std::has_single_bit(bit)) return {};
  const auto i = static_cast<size_t>(std::countr_zero(bit));
  return i < std::size(kCategoryNames) ? kCategoryNames[i] : std::string_view();
}

std::string_view CommandTable::RedisVersion() { return kGeneratedFromRedisVersion; }

}  // namespace keyfence::protocol
