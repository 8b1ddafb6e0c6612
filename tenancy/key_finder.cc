#include "tenancy/key_finder.h"

#include <algorithm>
#include <charconv>

#include <absl/strings/match.h>

namespace keyfence::tenancy {
namespace {

using protocol::KeySpec;

bool ParseInt(std::string_view s, int64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(absl::string_view(a.data(), a.size()),
                                absl::string_view(b.data(), b.size()));
}

// Where a key spec's search begins; 0 if its keyword is absent.
int64_t BeginOf(const KeySpec& ks, std::span<const std::string_view> args) {
  const int64_t argc = static_cast<int64_t>(args.size());
  if (ks.begin == KeySpec::Begin::kIndex) return ks.index;
  int64_t start = ks.startfrom > 0 ? ks.startfrom : argc + ks.startfrom;
  int64_t end = ks.startfrom > 0 ? argc - 1 : 1;
  // As Redis: the end index itself is not examined (a keyword there has no keys).
  for (int64_t i = start; i != end; i = start <= end ? i + 1 : i - 1) {
    if (i >= argc || i < 1) break;
    if (EqualsNoCase(args[i], ks.keyword)) return i + 1;
  }
  return 0;
}

// One key spec, Redis getKeysUsingKeySpecs semantics, starting at `first`.
FindStatus AddSpecKeysFrom(const KeySpec& ks, std::span<const std::string_view> args,
                           int64_t first, NameRefs* out);

// One key spec. Redis looks only at the first occurrence of a spec's keyword,
// but commands such as GEORADIUS ... STORE a STORE b write to the LAST one:
// for keyword specs that name a fixed number of keys, every occurrence of the
// keyword is treated as introducing keys, so no occurrence escapes the
// namespace.
FindStatus AddSpecKeys(const KeySpec& ks, std::span<const std::string_view> args, NameRefs* out) {
  int64_t first = BeginOf(ks, args);
  if (first == 0) return FindStatus::kOk;
  FindStatus st = AddSpecKeysFrom(ks, args, first, out);
  if (st != FindStatus::kOk || ks.begin != KeySpec::Begin::kKeyword ||
      ks.find != KeySpec::Find::kRange || ks.lastkey < 0) {
    return st;
  }
  const int64_t argc = static_cast<int64_t>(args.size());
  bool forward = ks.startfrom > 0;
  for (int64_t i = forward ? first : first - 2; i >= 1 && i < argc; i += forward ? 1 : -1) {
    if (!EqualsNoCase(args[i], ks.keyword)) continue;
    st = AddSpecKeysFrom(ks, args, i + 1, out);
    if (st != FindStatus::kOk) return st;
  }
  return FindStatus::kOk;
}

FindStatus AddSpecKeysFrom(const KeySpec& ks, std::span<const std::string_view> args,
                           int64_t first, NameRefs* out) {
  const int64_t argc = static_cast<int64_t>(args.size());
  int64_t last, step;
  if (ks.find == KeySpec::Find::kRange) {
    step = ks.keystep;
    if (ks.lastkey >= 0) {
      last = first + ks.lastkey;
    } else if (ks.limit == 0) {
      last = argc + ks.lastkey;
    } else {
      last = first + ((argc - first) / ks.limit + ks.lastkey);
    }
  } else {
    if (first + ks.keynumidx >= argc) return FindStatus::kSyntaxError;
    int64_t numkeys;
    if (!ParseInt(args[first + ks.keynumidx], &numkeys) || numkeys < 0) {
      return FindStatus::kSyntaxError;
    }
    step = ks.step > 0 ? ks.step : 1;
    first += ks.firstkey;
    if (numkeys == 0) return FindStatus::kOk;
    last = first + (numkeys - 1) * step;
  }
  if (step <= 0) return FindStatus::kSyntaxError;
  if (first >= argc && last < first) return FindStatus::kOk;  // e.g. nothing after a keyword
  if (last >= argc || first >= argc) return FindStatus::kSyntaxError;
  for (int64_t i = first; i <= last; i += step) {
    out->push_back({static_cast<uint32_t>(i), RefKind::kKey, ks.flags});
  }
  return FindStatus::kOk;
}

// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
// [ALPHA] [STORE destination] (sort.c sortCommandGeneric).
FindStatus AddSortNames(std::span<const std::string_view> args, NameRefs* out) {
  const size_t argc = args.size();
  if (argc < 2) return FindStatus::kSyntaxError;
  out->push_back({1, RefKind::kKey, protocol::kKsRO});
  for (size_t j = 2; j < argc; ++j) {
    std::string_view a = args[j];
    size_t left = argc - j - 1;
    if (EqualsNoCase(a, "asc") || EqualsNoCase(a, "desc") || EqualsNoCase(a, "alpha")) continue;
    if (EqualsNoCase(a, "limit") && left >= 2) {
      j += 2;
    } else if (EqualsNoCase(a, "store") && left >= 1) {
      out->push_back({static_cast<uint32_t>(j + 1), RefKind::kKey, protocol::kKsOW});
      j += 1;
    } else if (EqualsNoCase(a, "by") && left >= 1) {
      out->push_back({static_cast<uint32_t>(j + 1), RefKind::kKeyPattern, 0});
      j += 1;
    } else if (EqualsNoCase(a, "get") && left >= 1) {
      if (args[j + 1] != "#") {
        out->push_back({static_cast<uint32_t>(j + 1), RefKind::kKeyPattern, 0});
      }
      j += 1;
    } else {
      return FindStatus::kSyntaxError;
    }
  }
  return FindStatus::kOk;
}

void AddAll(size_t from, size_t argc, RefKind kind, NameRefs* out) {
  for (size_t i = from; i < argc; ++i) out->push_back({static_cast<uint32_t>(i), kind, 0});
}

}  // namespace

FindStatus FindNames(const Rule& rule, const protocol::CommandInfo& cmd,
                     std::span<const std::string_view> args, NameRefs* out) {
  out->clear();
  const size_t argc = args.size();
  switch (rule.args) {
    case ArgRule::kNone:
      return FindStatus::kOk;
    case ArgRule::kKeySpecs:
      for (const KeySpec& ks : cmd.key_specs) {
        if (AddSpecKeys(ks, args, out) != FindStatus::kOk) return FindStatus::kSyntaxError;
      }
      break;
    case ArgRule::kSort:
      if (AddSortNames(args, out) != FindStatus::kOk) return FindStatus::kSyntaxError;
      break;
    case ArgRule::kChannels:
      AddAll(1, argc, RefKind::kChannel, out);
      return FindStatus::kOk;
    case ArgRule::kPatterns:
      AddAll(1, argc, RefKind::kChannelPattern, out);
      return FindStatus::kOk;
    case ArgRule::kShardChannels:
      AddAll(1, argc, RefKind::kShardChannel, out);
      return FindStatus::kOk;
    case ArgRule::kFirstChannel:
      if (argc > 1) out->push_back({1, RefKind::kChannel, 0});
      return FindStatus::kOk;
    case ArgRule::kFirstShardChannel:
      if (argc > 1) out->push_back({1, RefKind::kShardChannel, 0});
      return FindStatus::kOk;
    case ArgRule::kNumsub:
      AddAll(2, argc, RefKind::kChannel, out);
      return FindStatus::kOk;
    case ArgRule::kShardNumsub:
      AddAll(2, argc, RefKind::kShardChannel, out);
      return FindStatus::kOk;
  }
  if (out->size() > 1) {
    std::sort(out->begin(), out->end(),
              [](const NameRef& a, const NameRef& b) { return a.pos < b.pos; });
    out->erase(std::unique(out->begin(), out->end(),
                           [](const NameRef& a, const NameRef& b) { return a.pos == b.pos; }),
               out->end());
  }
  return FindStatus::kOk;
}

}  // namespace keyfence::tenancy
