// YAML -> Spec, and the public LoadString / LoadFile. With loader_walk.cc,
// loader_sections.cc and loader_tenants.cc (declared in loader_parser.h), the
// only files of keyfence that include yaml-cpp: its exceptions are caught here
// and become Diagnostics, and its types never leave the loader files.
//
// The walk checks what one field can tell on its own: syntax, types, ranges,
// enum values, names, host:port, unknown and duplicate fields, required fields,
// password forms. Checks that need the whole document live in compile.cc.
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"
#include "config/loader_parser.h"
#include "config/spec.h"

namespace keyfence::config {
namespace internal {

bool ParseYaml(std::string_view yaml, Spec* spec, Diagnostics* diags) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    diags->Add(loader::PosOf(e.mark), "YAML syntax error: " + e.msg);
    return false;
  }
  try {
    loader::Parser(diags).Top(root, spec);
  } catch (const YAML::Exception& e) {  // not expected: the walk checks types first
    diags->Add(loader::PosOf(e.mark), "cannot read the config: " + e.msg);
    return false;
  }
  return true;
}

bool ParseLimitsYaml(std::string_view text, const std::string& path, LimitsSpec* l,
                     Diagnostics* diags) {
  const size_t before = diags->size();
  try {
    loader::Parser(diags).LimitsOnly(YAML::Load(std::string(text)), path, l);
  } catch (const YAML::Exception& e) {
    diags->Add(loader::PosOf(e.mark), "syntax error: " + e.msg);
  }
  return diags->size() == before;
}

}  // namespace internal

LoadResult LoadString(std::string_view yaml, const std::string& name, uint64_t version) {
  internal::Diagnostics diags(name);
  internal::Spec spec;
  LoadResult result;
  if (internal::ParseYaml(yaml, &spec, &diags)) {
    result.snapshot = internal::Compile(spec, name, version, &diags);
  }
  result.errors = diags.Take();
  if (!result.errors.empty()) result.snapshot = nullptr;
  return result;
}

LoadResult LoadFile(const std::string& path, uint64_t version) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return {nullptr, {{path, 1, 1, "cannot read file: it is a directory"}}};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return {nullptr, {{path, 1, 1, std::string("cannot read file: ") + std::strerror(errno)}}};
  }
  std::string text;
  char buf[16384];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return {nullptr, {{path, 1, 1, "cannot read file: read error"}}};
  return LoadString(text, path, version);
}

}  // namespace keyfence::config
