// Helpers shared by the config unit tests.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace keyfence::config::testing {

// Loads `yaml` as "t.yaml" and returns its diagnostics (empty if it loaded).
inline std::vector<Diagnostic> Errors(std::string_view yaml) {
  return LoadString(yaml, "t.yaml", 1).errors;
}

inline std::string Dump(const std::vector<Diagnostic>& errors) {
  std::string out;
  for (const Diagnostic& d : errors) out += d.ToString() + "\n";
  return out;
}

// Loads `yaml`, which must succeed.
inline SnapshotPtr MustLoad(std::string_view yaml, uint64_t version = 1) {
  LoadResult r = LoadString(yaml, "t.yaml", version);
  INFO(Dump(r.errors));
  REQUIRE(r.ok());
  REQUIRE(r.errors.empty());
  return r.snapshot;
}

// Requires that `yaml` fails with exactly one diagnostic, at line:col, with that message.
inline void ExpectError(std::string_view yaml, int line, int col, const std::string& message) {
  const std::vector<Diagnostic> errors = Errors(yaml);
  INFO(Dump(errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].file == "t.yaml");
  CHECK(errors[0].line == line);
  CHECK(errors[0].column == col);
  CHECK(errors[0].message == message);
}

// The smallest valid config; tests append sections to it (it is 5 lines long).
constexpr std::string_view kBase =
    "cluster_name: shop\n"
    "listeners:\n"
    "  - bind: 127.0.0.1:6380\n"
    "backend:\n"
    "  nodes: [127.0.0.1:6379]\n";

inline std::string WithBase(std::string_view rest) {
  return std::string(kBase) + std::string(rest);
}

}  // namespace keyfence::config::testing
