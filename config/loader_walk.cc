// Parser's generic steps (see loader_parser.h): a mapping with its unknown,
// duplicate and (through Require) missing fields, a list, and the scalar types
// every section reads. Each problem becomes a Diagnostic at the value's position.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/loader_parser.h"
#include "config/spec.h"

namespace keyfence::config::internal::loader {

std::optional<std::vector<std::string>> Parser::Map(const Val& v,
                                                    std::initializer_list<Field> fields) {
  if (!v.node.IsMap()) {
    Error(v, "expected a mapping");
    return std::nullopt;
  }
  const std::string in = v.path.empty() ? "" : " in " + v.path;
  std::vector<std::string> seen;
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const Pos key_pos = PosOf(key.Mark());
    if (!key.IsScalar()) {
      diags_->Add(key_pos, "expected a field name" + in);
      continue;
    }
    const std::string& name = key.Scalar();
    const auto field =
        std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.name == name; });
    if (field == fields.end()) {
      diags_->Add(key_pos, "unknown field " + Quote(name) + in);
      continue;
    }
    if (Has(seen, name)) {
      diags_->Add(key_pos, "duplicate field " + Quote(name) + in);
      continue;
    }
    seen.push_back(name);
    const Pos pos = value.IsNull() ? key_pos : PosOf(value.Mark());
    field->handle(Val{value, pos, v.path.empty() ? name : v.path + "." + name});
  }
  return seen;
}

bool Parser::Seq(const Val& v, const Handler& each) {
  if (!v.node.IsSequence()) {
    Error(v, "expected a list");
    return false;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const YAML::Node elem = *it;
    const Pos pos = elem.Mark().is_null() ? v.pos : PosOf(elem.Mark());
    each(Val{elem, pos, v.path + "[" + std::to_string(i) + "]"});
  }
  return true;
}

bool Parser::Str(const Val& v, std::string* out) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a string");
    return false;
  }
  *out = v.node.Scalar();
  return true;
}

bool Parser::Uint(const Val& v, uint64_t lo, uint64_t hi, uint64_t* out) {
  if (!v.node.IsScalar()) {
    Error(v, "expected an integer");
    return false;
  }
  const std::string& s = v.node.Scalar();
  std::string_view digits = s;
  const bool negative = !digits.empty() && digits[0] == '-';
  if (negative || (!digits.empty() && digits[0] == '+')) digits.remove_prefix(1);
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    Error(v, "expected an integer, got " + Quote(s));
    return false;
  }
  uint64_t x = 0;
  bool overflow = false;
  for (char c : digits) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (std::numeric_limits<uint64_t>::max() - d) / 10) overflow = true;
    x = x * 10 + d;
  }
  if (overflow || (negative && x != 0) || x < lo || x > hi) {
    Error(v, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                 Quote(s));
    return false;
  }
  *out = x;
  return true;
}

bool Parser::Bool(const Val& v, bool* out) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
      *out = true;
      return true;
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      *out = false;
      return true;
    }
  }
  Error(v, "expected a boolean (true or false)");
  return false;
}

bool Parser::Choice(const Val& v, std::initializer_list<std::string_view> names, size_t* index) {
  std::string expected;
  size_t i = 0;
  for (std::string_view n : names) {
    if (i > 0) expected += (i + 1 == names.size()) ? " or " : ", ";
    expected.append(n);
    if (v.node.IsScalar() && v.node.Scalar() == n) {
      *index = i;
      return true;
    }
    ++i;
  }
  Error(v, "expected " + expected +
               (v.node.IsScalar() ? ", got " + Quote(v.node.Scalar()) : std::string()));
  return false;
}

bool Parser::HostPort(const Val& v, Endpoint* out) {
  std::string s;
  if (!Str(v, &s)) return false;
  const std::string error = ParseHostPort(s, out);
  if (!error.empty()) Error(v, error);
  return error.empty();
}

// cluster_name and app names.
void Parser::Name(const Val& v, std::string* out, std::string_view what) {
  if (Str(v, out) && !IsValidName(*out)) {
    Error(v, std::string(what) + "must be 1-64 characters of [A-Za-z0-9_.-], got " + Quote(*out));
  }
}

}  // namespace keyfence::config::internal::loader
