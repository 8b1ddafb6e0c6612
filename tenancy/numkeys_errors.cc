#include "tenancy/numkeys_errors.h"

#include <charconv>
#include <cstdint>

#include "protocol/error_replies.h"

namespace keyfence::tenancy {
namespace {

enum class Family : uint8_t { kNone, kEval, kEvalSha, kMpop, kSinterCard, kZsetOp };

struct Spec {
  std::string_view name;
  Family family;
  size_t index;  // of numkeys
};

constexpr Spec kSpecs[] = {
    {"eval", Family::kEval, 2},         {"eval_ro", Family::kEval, 2},
    {"evalsha", Family::kEvalSha, 2},   {"evalsha_ro", Family::kEvalSha, 2},
    {"lmpop", Family::kMpop, 1},        {"zmpop", Family::kMpop, 1},
    {"blmpop", Family::kMpop, 2},       {"bzmpop", Family::kMpop, 2},
    {"sintercard", Family::kSinterCard, 1},   {"zintercard", Family::kZsetOp, 1},
    {"zunion", Family::kZsetOp, 1},     {"zinter", Family::kZsetOp, 1},
    {"zdiff", Family::kZsetOp, 1},      {"zunionstore", Family::kZsetOp, 2},
    {"zinterstore", Family::kZsetOp, 2}, {"zdiffstore", Family::kZsetOp, 2},
};

bool ParseLong(std::string_view s, int64_t* v) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

std::string NumkeysError(const protocol::CommandInfo& cmd, std::span<const std::string_view> args) {
  namespace errors = protocol::errors;
  const Spec* spec = nullptr;
  for (const Spec& s : kSpecs) {
    if (s.name == cmd.name) spec = &s;
  }
  if (spec == nullptr || spec->index >= args.size()) return {};
  if (spec->family == Family::kEvalSha) return std::string(errors::kNoScript);
  int64_t n = 0;
  const bool integer = ParseLong(args[spec->index], &n);
  const int64_t room = static_cast<int64_t>(args.size() - spec->index - 1);
  switch (spec->family) {
    case Family::kEval:
      if (!integer) return std::string(errors::kNotInteger);
      if (n < 0) return std::string(errors::kNumkeysNegative);
      if (n > room) return std::string(errors::kNumkeysTooMany);
      return {};
    case Family::kMpop:
      if (!integer || n <= 0) return std::string(errors::kNumkeysPositive);
      return std::string(errors::kSyntax);
    case Family::kSinterCard:
      if (!integer || n <= 0) return std::string(errors::kNumkeysPositive);
      if (n > room) return std::string(errors::kNumkeysTooMany);
      return {};
    case Family::kZsetOp:
      if (!integer) return std::string(errors::kNotInteger);
      if (n < 1) return errors::AtLeastOneKey(cmd.name);
      return std::string(errors::kSyntax);
    default:
      return {};
  }
}

}  // namespace keyfence::tenancy
