// Internal to the loader files (loader*.cc): the YAML walk that fills a Spec.
// Includes yaml-cpp, so no other file of keyfence may include this header; the
// yaml-cpp types declared here never leave the loader files (ParseYaml in
// spec.h takes text and returns a Spec and Diagnostics).
//
//   loader_walk.cc      Parser's generic steps: mappings (unknown, duplicate
//                       fields), lists, strings, integers, booleans, enums,
//                       host:port, names
//   loader_sections.cc  the top-level mapping, listeners, admin, backend
//   loader_tenants.cc   deny lists (policy), limits, tenants, users, key rules
//   loader.cc           ParseYaml (catches every yaml-cpp exception), LoadString,
//                       LoadFile
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/spec.h"

namespace keyfence::config::internal::loader {

// Bounds (inclusive) of the numeric fields. 0 means "unlimited" where DESIGN.md says so.
inline constexpr uint64_t kMaxWorkers = 1024;
inline constexpr uint64_t kMaxClients = 10'000'000;
inline constexpr uint64_t kMaxMs = 3'600'000;    // an hour
inline constexpr uint64_t kMaxDelayMs = 60'000;  // a minute
inline constexpr uint64_t kMaxConnectionsPerNode = 1024;
inline constexpr uint64_t kMaxRate = 1'000'000'000'000;   // ops/s, bucket size, bytes/s
inline constexpr uint64_t kMaxBytes = uint64_t{1} << 40;  // 1 TiB
inline constexpr size_t kMaxUnixPath = 107;  // sockaddr_un.sun_path, with its NUL
inline constexpr uint64_t kMaxQuotaBytes = uint64_t{1} << 50;  // memory_quota_bytes, max_keys
inline constexpr size_t kMaxUserName = 128;

inline Pos PosOf(const YAML::Mark& m) {
  return {m.line < 0 ? 1 : m.line + 1, m.column < 0 ? 1 : m.column + 1};
}

// A value in the document: its node, where to point at it, and its path for messages.
struct Val {
  YAML::Node node;
  Pos pos;
  std::string path;  // "backend.nodes[1]"; empty for the document itself
};

inline bool Has(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Walks the document, filling a Spec and reporting into Diagnostics.
class Parser {
 public:
  explicit Parser(Diagnostics* diags) : diags_(diags) {}

  void Top(const YAML::Node& root, Spec* spec);  // loader_sections.cc
  // A limits mapping on its own (a live override), checked as tenants.<t>.limits
  // is; `path` names it in messages (loader_tenants.cc).
  void LimitsOnly(const YAML::Node& root, const std::string& path, LimitsSpec* l);

 private:
  using Handler = std::function<void(const Val&)>;
  struct Field {
    std::string_view name;
    Handler handle;
  };

  void Error(const Val& v, const std::string& message) {
    diags_->Add(v.pos, v.path.empty() ? message : v.path + ": " + message);
  }
  size_t errors() const { return diags_->size(); }

  // loader_walk.cc.
  // Checks that v is a mapping, dispatches each field to its handler, reports
  // unknown and duplicate fields. Returns the names seen, or nullopt if v is
  // not a mapping.
  std::optional<std::vector<std::string>> Map(const Val& v, std::initializer_list<Field> fields);
  // Checks that v is a list and calls each(element) for every element. False if not a list.
  bool Seq(const Val& v, const Handler& each);
  void Require(const Val& v, const std::vector<std::string>& seen, std::string_view name) {
    if (!Has(seen, name)) Error(v, "missing required field '" + std::string(name) + "'");
  }

  bool Str(const Val& v, std::string* out);
  bool Uint(const Val& v, uint64_t lo, uint64_t hi, uint64_t* out);
  bool Bool(const Val& v, bool* out);
  bool Choice(const Val& v, std::initializer_list<std::string_view> names, size_t* index);
  bool HostPort(const Val& v, Endpoint* out);
  void Name(const Val& v, std::string* out, std::string_view what = "");

  template <typename T>
  Handler UintTo(T* out, uint64_t lo, uint64_t hi) {
    return [this, out, lo, hi](const Val& v) {
      uint64_t x = 0;
      if (Uint(v, lo, hi, &x)) *out = static_cast<T>(x);
    };
  }
  template <typename T>
  Handler UintToOpt(std::optional<T>* out, uint64_t lo, uint64_t hi) {
    return [this, out, lo, hi](const Val& v) {
      uint64_t x = 0;
      if (Uint(v, lo, hi, &x)) *out = static_cast<T>(x);
    };
  }
  Handler StrTo(std::string* out) {
    return [this, out](const Val& v) { Str(v, out); };
  }

  // loader_sections.cc.
  void Listeners(const Val& v, Spec* spec);
  void AdminSection(const Val& v, Spec* spec);
  void AccountingSection(const Val& v, Accounting* a);
  void UnixPath(const Val& v, ListenerSpec* l);
  // loader_tls.cc: the tls mapping, its files read and checked; null on errors.
  std::shared_ptr<const ListenerTls> TlsSection(const Val& v);
  // backend.tls (null: off, or errors); `tls:` with no fields is TLS with the
  // system's trust store.
  std::shared_ptr<const BackendTls> BackendTlsSection(const Val& v);
  // A file-path field: its Val kept in *at (for error positions), the string in *path.
  Handler PathTo(std::optional<Val>* at, std::string* path);
  // Reads and checks a certificate/key pair (if cert_path is set: they must
  // match) and a CA bundle (if ca_path is set); false on errors (reported).
  bool PemSet(const Val& cert_v, const Val& key_v, const Val& ca_v, const std::string& cert_path,
              const std::string& key_path, const std::string& ca_path, std::string* cert_pem,
              std::string* key_pem, std::string* ca_pem);
  void SentinelSection(const Val& v, Sentinel* s);
  // A PEM file's contents, or nullopt (reported at v).
  std::optional<std::string> ReadPem(const Val& v, const std::string& path);
  void FileMode(const Val& v, uint32_t* out);
  void BackendSection(const Val& v, Backend* b);

  // loader_tenants.cc.
  void DenyList(const Val& v, std::vector<DenyEntry>* out);
  void LimitsSection(const Val& v, LimitsSpec* l);
  void Tenants(const Val& v, Spec* spec);
  void TenantBody(const Val& v, TenantSpec* t);
  void UserEntry(const Val& v, TenantSpec* t);
  void KeyRuleEntry(const Val& v, TenantSpec* t);

  Diagnostics* diags_;
};

}  // namespace keyfence::config::internal::loader
