// YAML -> Spec. The only file of keyfence that includes yaml-cpp: its
// exceptions are caught here and become Diagnostics, and its types never leave.
//
// The walk checks what one field can tell on its own: syntax, types, ranges,
// enum values, names, host:port, unknown and duplicate fields, required fields,
// password forms. Checks that need the whole document live in compile.cc.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/spec.h"

namespace keyfence::config {
namespace internal {
namespace {

// Bounds (inclusive) of the numeric fields. 0 means "unlimited" where DESIGN.md says so.
constexpr uint64_t kMaxWorkers = 1024;
constexpr uint64_t kMaxClients = 10'000'000;
constexpr uint64_t kMaxMs = 3'600'000;    // an hour
constexpr uint64_t kMaxDelayMs = 60'000;  // a minute
constexpr uint64_t kMaxConnectionsPerNode = 1024;
constexpr uint64_t kMaxRate = 1'000'000'000'000;   // ops/s, bucket size, bytes/s
constexpr uint64_t kMaxBytes = uint64_t{1} << 40;  // 1 TiB
constexpr size_t kMaxUserName = 128;

Pos PosOf(const YAML::Mark& m) {
  return {m.line < 0 ? 1 : m.line + 1, m.column < 0 ? 1 : m.column + 1};
}

// A value in the document: its node, where to point at it, and its path for messages.
struct Val {
  YAML::Node node;
  Pos pos;
  std::string path;  // "backend.nodes[1]"; empty for the document itself
};

bool Has(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Walks the document, filling a Spec and reporting into Diagnostics.
class Parser {
 public:
  explicit Parser(Diagnostics* diags) : diags_(diags) {}

  void Top(const YAML::Node& root, Spec* spec);

 private:
  using Handler = std::function<void(const Val&)>;
  struct Field {
    std::string_view name;
    Handler handle;
  };

  void Error(const Val& v, const std::string& message) {
    diags_->Add(v.pos, v.path.empty() ? message : v.path + ": " + message);
  }

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

  void Listeners(const Val& v, Spec* spec);
  void AdminSection(const Val& v, Spec* spec);
  void BackendSection(const Val& v, Backend* b);
  void DenyList(const Val& v, std::vector<DenyEntry>* out);
  void LimitsSection(const Val& v, LimitsSpec* l);
  void Tenants(const Val& v, Spec* spec);
  void TenantBody(const Val& v, TenantSpec* t);
  void UserEntry(const Val& v, TenantSpec* t);
  void KeyRuleEntry(const Val& v, TenantSpec* t);

  Diagnostics* diags_;
};

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

void Parser::Top(const YAML::Node& root, Spec* spec) {
  const Val v{root, PosOf(root.Mark()), ""};
  if (!root.IsMap()) {
    Error(v, root.IsNull() ? "the config is empty" : "the config must be a mapping of fields");
    return;
  }
  const auto seen = Map(
      v, {
             {"cluster_name", [&](const Val& f) { Name(f, &spec->cluster_name); }},
             {"workers", UintTo(&spec->workers, 0, kMaxWorkers)},
             {"max_clients", UintTo(&spec->max_clients, 1, kMaxClients)},
             {"shutdown_grace_ms", UintTo(&spec->shutdown_grace_ms, 0, kMaxMs)},
             {"listeners", [&](const Val& f) { Listeners(f, spec); }},
             {"admin", [&](const Val& f) { AdminSection(f, spec); }},
             {"backend", [&](const Val& f) { BackendSection(f, &spec->backend); }},
             {"policy",
              [&](const Val& f) {
                if (f.node.IsNull()) return;
                Map(f, {{"deny_commands", [&](const Val& d) { DenyList(d, &spec->global_deny); }}});
              }},
             {"limits", [&](const Val& f) { LimitsSection(f, &spec->limits); }},
             {"tenants", [&](const Val& f) { Tenants(f, spec); }},
         });
  Require(v, *seen, "cluster_name");
  Require(v, *seen, "listeners");
  Require(v, *seen, "backend");
}

void Parser::Listeners(const Val& v, Spec* spec) {
  const bool list = Seq(v, [&](const Val& e) {
    ListenerSpec l;
    l.path = e.path;
    const auto seen = Map(e, {
                                 {"bind",
                                  [&](const Val& f) {
                                    l.bind_pos = f.pos;
                                    HostPort(f, &l.bind);
                                  }},
                                 {"tenant",
                                  [&](const Val& f) {
                                    l.tenant_pos = f.pos;
                                    if (Str(f, &l.tenant) && l.tenant.empty()) {
                                      Error(f, "must name a tenant (omit it for a gateway)");
                                    }
                                  }},
                             });
    if (!seen) return;
    Require(e, *seen, "bind");
    if (Has(*seen, "bind")) spec->listeners.push_back(std::move(l));
  });
  if (list && v.node.size() == 0) Error(v, "at least one listener is required");
}

void Parser::AdminSection(const Val& v, Spec* spec) {
  if (v.node.IsNull()) return;  // "admin:" with every field commented out
  Map(v, {
             {"bind", [&](const Val& f) { HostPort(f, &spec->admin.bind); }},
             {"token", StrTo(&spec->admin.token)},
         });
}

void Parser::BackendSection(const Val& v, Backend* b) {
  std::optional<Val> nodes;
  const auto seen = Map(
      v, {
             {"mode",
              [&](const Val& f) {
                size_t i = 0;
                if (Choice(f, {"standalone", "cluster"}, &i)) {
                  b->mode = i == 0 ? BackendMode::kStandalone : BackendMode::kCluster;
                }
              }},
             {"nodes",
              [&](const Val& f) {
                nodes = f;
                const bool list = Seq(f, [&](const Val& e) {
                  Endpoint ep;
                  if (HostPort(e, &ep)) b->nodes.push_back(std::move(ep));
                });
                if (list && f.node.size() == 0) Error(f, "at least one node is required");
              }},
             {"username", StrTo(&b->username)},
             {"password", StrTo(&b->password)},
             {"connections_per_node", UintTo(&b->connections_per_node, 1, kMaxConnectionsPerNode)},
             {"connect_timeout_ms", UintTo(&b->connect_timeout_ms, 1, kMaxMs)},
             {"request_timeout_ms", UintTo(&b->request_timeout_ms, 1, kMaxMs)},
             {"read_from",
              [&](const Val& f) {
                size_t i = 0;
                if (Choice(f, {"master", "replica", "prefer_replica"}, &i)) {
                  b->read_from = static_cast<ReadFrom>(i);
                }
              }},
         });
  if (!seen) return;
  Require(v, *seen, "nodes");
  if (nodes && b->mode == BackendMode::kStandalone && nodes->node.IsSequence() &&
      nodes->node.size() > 1) {
    Error(*nodes,
          "standalone mode takes exactly one node, got " + std::to_string(nodes->node.size()));
  }
}

void Parser::DenyList(const Val& v, std::vector<DenyEntry>* out) {
  Seq(v, [&](const Val& e) {
    DenyEntry d;
    if (Str(e, &d.name)) {
      d.path = e.path;
      d.pos = e.pos;
      out->push_back(std::move(d));
    }
  });
}

void Parser::LimitsSection(const Val& v, LimitsSpec* l) {
  if (v.node.IsNull()) return;
  Map(v,
      {
          {"ops_per_sec", UintToOpt(&l->ops_per_sec, 0, kMaxRate)},
          {"burst", UintToOpt(&l->burst, 0, kMaxRate)},
          {"bytes_per_sec", UintToOpt(&l->bytes_per_sec, 0, kMaxRate)},
          {"on_limit",
           [&](const Val& f) {
             size_t i = 0;
             if (Choice(f, {"reject", "delay"}, &i)) {
               l->on_limit = i == 0 ? OnLimit::kReject : OnLimit::kDelay;
             }
           }},
          {"max_delay_ms", UintToOpt(&l->max_delay_ms, 0, kMaxDelayMs)},
          {"max_connections", UintToOpt(&l->max_connections, 0, kMaxClients)},
          {"max_request_bytes", UintToOpt(&l->max_request_bytes, 1, kMaxBytes)},
          {"client_output_buffer_bytes", UintToOpt(&l->client_output_buffer_bytes, 1, kMaxBytes)},
          {"big_value_bytes", UintToOpt(&l->big_value_bytes, 1, kMaxBytes)},
          {"allow_scripts",
           [&](const Val& f) {
             bool b = false;
             if (Bool(f, &b)) l->allow_scripts = b;
           }},
      });
}

void Parser::Tenants(const Val& v, Spec* spec) {
  if (v.node.IsNull()) return;
  if (!v.node.IsMap()) {
    Error(v, "expected a mapping of app name to tenant");
    return;
  }
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const Val k{key, PosOf(key.Mark()), v.path};
    TenantSpec t;
    t.pos = k.pos;
    Name(k, &t.app, "app name ");
    if (!key.IsScalar()) continue;
    const bool dup = std::any_of(spec->tenants.begin(), spec->tenants.end(),
                                 [&](const TenantSpec& o) { return o.app == t.app; });
    if (dup) {
      Error(k, "duplicate tenant " + Quote(t.app));
      continue;
    }
    TenantBody(Val{value, value.IsNull() ? k.pos : PosOf(value.Mark()), v.path + "." + t.app}, &t);
    spec->tenants.push_back(std::move(t));
  }
}

void Parser::TenantBody(const Val& v, TenantSpec* t) {
  if (v.node.IsNull()) return;  // "orders:" alone: a tenant with every default
  Map(v,
      {
          {"users", [&](const Val& f) { Seq(f, [&](const Val& e) { UserEntry(e, t); }); }},
          {"limits", [&](const Val& f) { LimitsSection(f, &t->limits); }},
          {"deny_commands", [&](const Val& f) { DenyList(f, &t->deny); }},
          {"key_rules", [&](const Val& f) { Seq(f, [&](const Val& e) { KeyRuleEntry(e, t); }); }},
      });
}

void Parser::UserEntry(const Val& v, TenantSpec* t) {
  UserSpec u;
  u.path = v.path;
  u.name_pos = v.pos;
  std::optional<Val> password, sha;
  const auto seen =
      Map(v, {
                 {"name",
                  [&](const Val& f) {
                    u.name_pos = f.pos;
                    if (!Str(f, &u.name)) return;
                    const bool bad = std::any_of(u.name.begin(), u.name.end(), [](char c) {
                      return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
                    });
                    if (u.name.empty() || u.name.size() > kMaxUserName || bad) {
                      Error(f, "must be 1-128 characters without spaces, got " + Quote(u.name));
                    }
                  }},
                 {"password", [&](const Val& f) { password = f; }},
                 {"password_sha256", [&](const Val& f) { sha = f; }},
             });
  if (!seen) return;
  Require(v, *seen, "name");
  std::string secret;
  if (password && sha) {
    Error(v, "give either 'password' or 'password_sha256', not both");
  } else if (!password && !sha) {
    Error(v, "missing 'password' or 'password_sha256'");
  } else if (password) {
    if (Str(*password, &secret)) {
      if (secret.empty()) {
        Error(*password, "must not be empty");
      } else {
        u.digest = Sha256(secret);
        u.has_secret = true;
        u.secret_pos = password->pos;
      }
    }
  } else if (Str(*sha, &secret)) {
    if (ParseDigest(secret, &u.digest)) {
      u.has_secret = true;
      u.secret_pos = sha->pos;
    } else {
      Error(*sha, "expected 64 hex characters (a SHA-256 digest)");
    }
  }
  t->users.push_back(std::move(u));
}

void Parser::KeyRuleEntry(const Val& v, TenantSpec* t) {
  KeyRuleSpec r;
  size_t deny_count = 0;
  bool read_only_ok = true;  // false: read_only had a type error, already reported
  const auto seen =
      Map(v, {
                 {"match",
                  [&](const Val& f) {
                    if (Str(f, &r.match) && r.match.empty()) {
                      Error(f, "must not be empty");
                    }
                  }},
                 {"deny_commands",
                  [&](const Val& f) {
                    if (f.node.IsSequence()) deny_count = f.node.size();
                    DenyList(f, &r.deny);
                  }},
                 {"read_only", [&](const Val& f) { read_only_ok = Bool(f, &r.read_only); }},
             });
  if (!seen) return;
  Require(v, *seen, "match");
  if (deny_count == 0 && !r.read_only && read_only_ok) {
    Error(v, "needs 'deny_commands' or 'read_only: true'");
  }
  t->key_rules.push_back(std::move(r));
}

}  // namespace

bool ParseYaml(std::string_view yaml, Spec* spec, Diagnostics* diags) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    diags->Add(PosOf(e.mark), "YAML syntax error: " + e.msg);
    return false;
  }
  try {
    Parser(diags).Top(root, spec);
  } catch (const YAML::Exception& e) {  // not expected: the walk checks types first
    diags->Add(PosOf(e.mark), "cannot read the config: " + e.msg);
    return false;
  }
  return true;
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
