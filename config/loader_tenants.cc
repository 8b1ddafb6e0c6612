// The deny lists (policy and tenants), limits, tenants, users and key rules of
// the YAML walk (see loader_parser.h).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/loader_parser.h"
#include "config/spec.h"

namespace keyfence::config::internal::loader {

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
          {"preauth_timeout_ms", UintToOpt(&l->preauth_timeout_ms, 0, kMaxMs)},
          {"max_unauthenticated_per_ip", UintToOpt(&l->max_unauthenticated_per_ip, 0, kMaxClients)},
          {"client_output_buffer_soft_bytes", UintToOpt(&l->client_output_buffer_soft_bytes, 0, kMaxBytes)},
          {"client_output_buffer_soft_seconds", UintToOpt(&l->client_output_buffer_soft_seconds, 0, kMaxMs)},
          {"tenant_output_buffer_bytes", UintToOpt(&l->tenant_output_buffer_bytes, 0, kMaxBytes)},
          {"max_dedicated_connections", UintToOpt(&l->max_dedicated_connections, 0, kMaxClients)},
          {"max_script_ms", UintToOpt(&l->max_script_ms, 0, kMaxMs)},
          {"big_value_bytes", UintToOpt(&l->big_value_bytes, 1, kMaxBytes)},
          {"memory_quota_bytes", UintToOpt(&l->memory_quota_bytes, 0, kMaxQuotaBytes)},
          {"max_keys", UintToOpt(&l->max_keys, 0, kMaxQuotaBytes)},
          {"scope",
           [&](const Val& f) {
             size_t i = 0;
             if (Choice(f, {"instance", "fleet"}, &i)) {
               l->scope = i == 0 ? LimitScope::kInstance : LimitScope::kFleet;
             }
           }},
          {"fleet_instances", UintToOpt(&l->fleet_instances, 0, 100000)},
          {"allow_scripts",
           [&](const Val& f) {
             bool b = false;
             if (Bool(f, &b)) l->allow_scripts = b;
           }},
      });
}

void Parser::LimitsOnly(const YAML::Node& root, const std::string& path, LimitsSpec* l) {
  const Val v{root, PosOf(root.Mark()), path};
  if (!root.IsMap() || root.size() == 0) {
    Error(v, "expected a mapping of limit fields, e.g. {\"ops_per_sec\": 5000}");
    return;
  }
  LimitsSection(v, l);
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
    if (t.app.starts_with("__")) {
      Error(k, "tenant names starting with \"__\" are reserved for keyfence's own data, got " +
                   Quote(t.app));
      continue;
    }
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
          {"cert_names",
           [&](const Val& f) {
             Seq(f, [&](const Val& e) {
               std::string n;
               if (!Str(e, &n)) return;
               if (n.empty()) {
                 Error(e, "must not be empty");
               } else {
                 t->cert_names.emplace_back(std::move(n), e.pos);
               }
             });
           }},
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

}  // namespace keyfence::config::internal::loader
