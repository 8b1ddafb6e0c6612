// keyfence configuration: the YAML schema of DESIGN.md, validated with
// positions, compiled into an immutable Snapshot that the hot path reads.
//
// Loading never throws: every problem becomes a Diagnostic with FILE:LINE:COL,
// and all of them are collected (not just the first).
// A Snapshot is immutable once built; share it as SnapshotPtr between threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/strings/string_view.h>

namespace keyfence::config {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  // "host:port"; an IPv6 host (stored without brackets) is written "[::1]:port".
  std::string ToString() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

enum class OnLimit : uint8_t { kReject, kDelay };
// limits.scope: each keyfence process enforces the limits on its own (instance), or
// every instance of the same cluster_name shares one budget kept in the backend (fleet).
enum class LimitScope : uint8_t { kInstance, kFleet };

// Every field of Limits (and of tenants.<t>.limits in the file, same names):
// X(name) once each, for the code that walks them all (overrides, diffs).
#define KF_CONFIG_LIMIT_FIELDS(X)                                                             \
  X(ops_per_sec) X(burst) X(bytes_per_sec) X(on_limit) X(max_delay_ms) X(max_connections)     \
  X(max_request_bytes) X(client_output_buffer_bytes) X(preauth_timeout_ms)                    \
  X(max_unauthenticated_per_ip) X(client_output_buffer_soft_bytes)                            \
  X(client_output_buffer_soft_seconds) X(tenant_output_buffer_bytes)                          \
  X(max_dedicated_connections) X(max_script_ms) X(big_value_bytes) X(allow_scripts)           \
  X(memory_quota_bytes) X(max_keys) X(scope) X(fleet_instances)

struct Limits {
  uint64_t ops_per_sec = 0;    // 0 = unlimited
  uint64_t burst = 0;          // 0 = ops_per_sec
  uint64_t bytes_per_sec = 0;  // 0 = unlimited
  OnLimit on_limit = OnLimit::kReject;
  uint32_t max_delay_ms = 100;
  uint32_t max_connections = 0;  // 0 = unlimited
  uint64_t max_request_bytes = 536870912;
  uint64_t client_output_buffer_bytes = 67108864;  // hard output limit
  uint32_t preauth_timeout_ms = 10000;  // gateway connections that do not AUTH in time are closed (0: never)
  uint32_t max_unauthenticated_per_ip = 64;  // unauthenticated connections per client address (0: no cap)
  uint64_t client_output_buffer_soft_bytes = 16777216;  // soft output limit: over it for soft_seconds, closed (0: none)
  uint32_t client_output_buffer_soft_seconds = 10;  // how long a client may stay over the soft limit
  uint64_t tenant_output_buffer_bytes = 268435456;  // unread replies of all the tenant's clients (0: no cap)
  uint32_t max_dedicated_connections = 0;  // per tenant: blocking, subscribed, WATCH/MULTI clients (0: no cap)
  uint32_t max_script_ms = 5000;  // a tenant script running longer is killed (SCRIPT KILL; 0: never)
  uint64_t big_value_bytes = 1048576;
  bool allow_scripts = false;
  uint64_t memory_quota_bytes = 0;  // over it, denyoom commands get -OOM (0: none)
  uint64_t max_keys = 0;            // over it, denyoom commands get -OOM (0: none)
  LimitScope scope = LimitScope::kInstance;  // ops_per_sec / bytes_per_sec per process or fleet
  // scope fleet, backend unreachable: the share is limit / this until a count of live
  // instances was seen (then limit / that count). 0: 1.
  uint32_t fleet_instances = 0;

  bool operator==(const Limits&) const = default;
};

// A set of command ids (protocol::CommandInfo::id), including subcommands.
// Denying a parent command denies all its subcommands.
class CommandSet {
 public:
  CommandSet() = default;
  explicit CommandSet(size_t n) : bits_(n, false) {}
  void Add(uint16_t id) { if (id < bits_.size()) bits_[id] = true; }
  bool Contains(uint16_t id) const { return id < bits_.size() && bits_[id]; }
  bool empty() const;
  std::vector<uint16_t> ids() const;
  void Merge(const CommandSet& o);
  bool operator==(const CommandSet&) const = default;
 private:
  std::vector<bool> bits_;
};

struct User {
  std::string name;
  std::array<uint8_t, 32> password_sha256{};
  bool operator==(const User&) const = default;
};

struct KeyRule {
  std::string match;      // glob on the client's (unprefixed) key
  CommandSet deny;        // commands denied on matching keys
  bool read_only = false; // writes (CommandFlag kCmdWrite) denied on matching keys
  bool operator==(const KeyRule&) const = default;
};

struct Tenant {
  std::string app;     // "orders"
  std::string prefix;  // "shop@orders:"
  uint32_t index = 0;  // position in Snapshot::tenants (stable within a snapshot)
  Limits limits;       // defaults merged with the tenant's overrides
  std::vector<User> users;
  CommandSet deny;     // global policy.deny_commands + the tenant's own
  std::vector<KeyRule> key_rules;
  std::vector<std::string> cert_names;  // client-certificate names that select it (tenant_from)
  bool operator==(const Tenant&) const = default;
};

// listeners[].tls (issue 12). The files are read and checked when the config
// loads (a bad certificate is a config error, the running config stays);
// their contents are kept here, so the TLS context is built from exactly
// what was checked.
enum class ClientAuth : uint8_t { kNone, kOptional, kRequired };
// listeners[].tenant_from: how a connection's tenant is chosen.
enum class TenantFrom : uint8_t { kAuth, kCertCn, kCertSanDns, kCertSanUri };

struct ListenerTls {
  std::string cert_path, key_path, ca_path;
  std::string cert_pem, key_pem, ca_pem;
  ClientAuth client_auth = ClientAuth::kNone;
  int min_version = 0x0303;  // TLS1_2_VERSION; 0x0304 for "1.3"
  std::string fingerprint;   // SHA-256 hex of the contents and settings
};

struct Listener {
  Endpoint bind;       // TCP (unused for a Unix socket listener)
  std::string tenant;  // empty: gateway (AUTH chooses the tenant)
  std::string unix_path;       // a Unix socket listener (sidecars): the socket's path
  uint32_t unix_mode = 0660;   // its permission bits
  std::shared_ptr<const ListenerTls> tls;  // null: plain
  TenantFrom tenant_from = TenantFrom::kAuth;
  bool is_unix() const { return !unix_path.empty(); }
  // "host:port", or "unix:<path>": for logs and messages.
  std::string Name() const { return is_unix() ? "unix:" + unix_path : bind.ToString(); }
};

// accounting: the per-namespace analysis run inside keyfence (issue 11).
struct Accounting {
  int32_t schedule_minute = -1;  // minute of the day (local time) of the daily run; -1: none
  std::string schedule;          // as written ("03:30"), "" when off
  uint32_t top_keys = 10;
  std::string state_dir;         // where the last report and the baseline are kept ("": not on disk)
  // Tenants with a memory_quota_bytes or max_keys have their namespace
  // measured (SCAN + MEMORY USAGE) this often; between measurements the
  // figure grows by what keyfence forwards.
  uint32_t quota_refresh_ms = 10000;
};

struct Admin {
  Endpoint bind{"127.0.0.1", 9121};
  std::string token;
};

enum class BackendMode : uint8_t { kStandalone, kCluster, kSentinel };

// backend.tls: keyfence's connections to Redis over TLS (managed services,
// redis-server --tls-port, --tls-cluster). The files are read and checked at
// load time; `fingerprint` changes with any of them (rotation).
struct BackendTls {
  std::string ca_path, cert_path, key_path;
  std::string ca_pem, cert_pem, key_pem;  // ca "": the system's trust store
  std::string server_name;  // SNI and the name verified; "": each node's own host
  bool verify = true;       // false: any server certificate is accepted
  std::string fingerprint;
};

// backend.sentinel: the master is whatever these sentinels say `master` is.
struct Sentinel {
  std::string master;
  std::vector<Endpoint> nodes;
  std::string username;  // the sentinels' own AUTH (not the data nodes')
  std::string password;
};
// backend.acl: off, or per_tenant (each tenant's traffic as its own backend ACL user).
enum class BackendAcl : uint8_t { kOff, kPerTenant };
enum class ReadFrom : uint8_t { kMaster, kReplica, kPreferReplica };

struct Backend {
  BackendMode mode = BackendMode::kStandalone;
  std::vector<Endpoint> nodes;
  std::string username;
  std::string password;
  uint32_t connections_per_node = 1;
  uint32_t connect_timeout_ms = 1000;
  uint32_t request_timeout_ms = 5000;
  // Cluster: how long a request keeps being retried through TRYAGAIN, ASK and
  // CLUSTERDOWN (a slot migration, a failover) before the client gets an error.
  uint32_t retry_budget_ms = 5000;
  // How long keyfence keeps restoring a client's subscriptions after their
  // subscriber connection was lost (a node down, a failover) before it closes
  // the client with an error.
  uint32_t subscriber_recovery_ms = 30000;
  BackendAcl acl = BackendAcl::kOff;
  // backend.acl: per_tenant: a tenant's shared connection idle this long is closed.
  uint32_t tenant_connection_idle_ms = 60000;
  // CONFIG SET notify-keyspace-events on every node (Redis's flags; "": left
  // as the node has it). Tenants see only their own keys' events.
  std::string notify_keyspace_events;
  ReadFrom read_from = ReadFrom::kMaster;
  std::shared_ptr<const BackendTls> tls;  // null: plain TCP
  Sentinel sentinel;                      // mode: sentinel
};

struct Snapshot {
  uint64_t version = 0;
  std::string source;  // file name the snapshot was loaded from
  // SHA-256 (hex) of the effective config (IdentityHash): equal on every
  // instance that runs the same config, whatever its version number.
  std::string hash;
  std::string cluster_name;
  uint32_t workers = 0;  // 0 = one per core
  uint32_t max_clients = 10000;
  uint32_t shutdown_grace_ms = 5000;
  std::vector<Listener> listeners;
  Admin admin;
  Backend backend;
  CommandSet global_deny;  // policy.deny_commands (already merged into each tenant's deny)
  Limits default_limits;
  std::vector<Tenant> tenants;
  Accounting accounting;

  const Tenant* FindTenant(std::string_view app) const;
  // The tenant whose cert_names has `name`, or nullptr.
  const Tenant* FindTenantByCertName(std::string_view name) const;
  // AUTH user pass: the user's tenant if the password matches (constant-time
  // comparison of SHA-256 digests), else nullptr.
  const Tenant* Authenticate(std::string_view user, std::string_view pass) const;
  // AUTH pass (no user name): the tenant of the unique user with this password.
  const Tenant* AuthenticatePasswordOnly(std::string_view pass) const;

  // Built by Compile(): user name -> (tenant index, user index).
  absl::flat_hash_map<std::string, std::pair<uint32_t, uint32_t>> users_by_name;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string message;
  std::string ToString() const;  // "FILE:LINE:COL: message"
};

struct LoadResult {
  SnapshotPtr snapshot;  // null if errors is not empty
  std::vector<Diagnostic> errors;
  bool ok() const { return snapshot != nullptr; }
};

// Parses, validates and compiles. `name` is used as FILE in diagnostics.
LoadResult LoadString(std::string_view yaml, const std::string& name, uint64_t version);
LoadResult LoadFile(const std::string& path, uint64_t version);

// The running config as JSON (for GET /config), passwords and tokens redacted.
std::string ToJson(const Snapshot& s);

// SHA-256 of `data` (OpenSSL). Used for user passwords.
std::array<uint8_t, 32> Sha256(std::string_view data);
std::string HexDigest(const std::array<uint8_t, 32>& digest);
// The config hash: SHA-256 of the snapshot's canonical JSON without version and
// source, secrets left out (json.cc).
std::string IdentityHash(const Snapshot& s);

// The names (protocol::CommandInfo::name, lower case, "parent|sub" for a
// subcommand) of every command in `s`, in id order.
std::vector<std::string> DeniedNames(const CommandSet& s);

// True if `name` is a valid cluster_name or app name: 1-64 characters of [A-Za-z0-9_.-].
bool IsValidName(std::string_view name);

}  // namespace keyfence::config
