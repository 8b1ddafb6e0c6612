// Internal to kf_config: the YAML document as plain structs (no yaml-cpp
// types), each value that a later check can complain about carrying its
// position. The loader files (loader*.cc) fill a Spec from YAML (types, ranges,
// unknown fields, field-local rules); compile.cc checks what needs the whole
// document (duplicates, references, command names) and builds the Snapshot.
//
// Not part of the module's public API: include config/config.h instead.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace keyfence::config::internal {

// 1-based position in the source document.
struct Pos {
  int line = 1;
  int column = 1;
};

// Collects diagnostics for one document.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  void Add(Pos pos, std::string message) {
    errors_.push_back({file_, pos.line, pos.column, std::move(message)});
  }
  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  // All diagnostics, sorted by position (stable: same position keeps the order of Add).
  std::vector<Diagnostic> Take();

 private:
  std::string file_;
  std::vector<Diagnostic> errors_;
};

// One deny_commands entry: "GET", "client|kill" or "@dangerous".
struct DenyEntry {
  std::string name;
  std::string path;  // "tenants.orders.deny_commands[0]", for messages
  Pos pos;
};

// Each field is set only if the YAML had it (tenant overrides merge field by field).
struct LimitsSpec {
  std::optional<uint64_t> ops_per_sec;
  std::optional<uint64_t> burst;
  std::optional<uint64_t> bytes_per_sec;
  std::optional<OnLimit> on_limit;
  std::optional<uint32_t> max_delay_ms;
  std::optional<uint32_t> max_connections;
  std::optional<uint64_t> max_request_bytes;
  std::optional<uint64_t> client_output_buffer_bytes;
  std::optional<uint32_t> preauth_timeout_ms;
  std::optional<uint32_t> max_unauthenticated_per_ip;
  std::optional<uint64_t> client_output_buffer_soft_bytes;
  std::optional<uint32_t> client_output_buffer_soft_seconds;
  std::optional<uint64_t> tenant_output_buffer_bytes;
  std::optional<uint32_t> max_dedicated_connections;
  std::optional<uint32_t> max_script_ms;
  std::optional<uint64_t> big_value_bytes;
  std::optional<bool> allow_scripts;
  std::optional<uint64_t> memory_quota_bytes;
  std::optional<uint64_t> max_keys;
  std::optional<LimitScope> scope;
  std::optional<uint32_t> fleet_instances;

  // `base` with every field this spec sets replaced.
  Limits ApplyTo(Limits base) const;
};

struct ListenerSpec {
  std::string path;  // "listeners[0]"
  Endpoint bind;
  Pos bind_pos;
  std::string unix_path;  // unix: (instead of bind)
  uint32_t unix_mode = 0660;
  Pos unix_pos;
  std::shared_ptr<const ListenerTls> tls;
  Pos tls_pos;
  TenantFrom tenant_from = TenantFrom::kAuth;
  Pos tenant_from_pos;
  std::string tenant;  // empty: gateway
  Pos tenant_pos;
};

struct UserSpec {
  std::string path;  // "tenants.orders.users[0]"
  std::string name;
  Pos name_pos;
  std::array<uint8_t, 32> digest{};  // SHA-256 of the password
  Pos secret_pos;                    // the password / password_sha256 value
  bool has_secret = false;           // false if the user entry was invalid
};

struct KeyRuleSpec {
  std::string match;
  std::vector<DenyEntry> deny;
  bool read_only = false;
};

struct TenantSpec {
  std::string app;
  Pos pos;  // the app name (map key)
  std::vector<std::pair<std::string, Pos>> cert_names;
  std::vector<UserSpec> users;
  LimitsSpec limits;
  std::vector<DenyEntry> deny;
  std::vector<KeyRuleSpec> key_rules;
};

struct Spec {
  std::string cluster_name;
  uint32_t workers = 0;
  uint32_t max_clients = 10000;
  uint32_t shutdown_grace_ms = 5000;
  std::vector<ListenerSpec> listeners;
  Admin admin;
  Backend backend;
  std::vector<DenyEntry> global_deny;
  LimitsSpec limits;
  std::vector<TenantSpec> tenants;  // document order
  Accounting accounting;
};

// text.cc: a scalar quoted for a message: at most 64 bytes, control characters as '?'.
std::string Quote(std::string_view s);
// text.cc: "host:port" or "[v6]:port" -> *out (an IPv6 host without its brackets).
// Returns an error message, or "" on success.
std::string ParseHostPort(std::string_view s, Endpoint* out);
// text.cc: 64 hex digits (either case) -> *out.
bool ParseDigest(std::string_view hex, std::array<uint8_t, 32>* out);

// loader.cc: parses YAML into *spec, reporting syntax, type, range, unknown-field
// and field-local errors. Never throws. False if the text is not YAML at all
// (a syntax error), in which case *spec is meaningless.
bool ParseYaml(std::string_view yaml, Spec* spec, Diagnostics* diags);

// loader.cc: a limits mapping alone (JSON is YAML), as a live override sends it.
// False on any error (reported into *diags).
bool ParseLimitsYaml(std::string_view text, const std::string& path, LimitsSpec* l,
                     Diagnostics* diags);

// compile.cc: document-wide checks (duplicate binds and users, unknown listener
// tenants, ambiguous passwords, unknown commands and categories), then the
// Snapshot. Returns null if it (or anything earlier in *diags) found errors.
SnapshotPtr Compile(const Spec& spec, const std::string& source, uint64_t version,
                    Diagnostics* diags);

}  // namespace keyfence::config::internal
