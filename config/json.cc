// The JSON views of a Snapshot: GET /config (secrets redacted) and the
// identity form whose SHA-256 is the config hash (secrets redacted as in /config,
// no version or source: the same file gives the same hash on every instance).
#include "config/config.h"

#include <cstdio>
#include <string>
#include <vector>

namespace keyfence::config {

namespace {

constexpr std::string_view kRedacted = "<redacted>";

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
size_t Utf8Len(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  const bool invalid = cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff);
  return overlong || invalid ? 0 : n;
}

// Appends s as a JSON string literal. Control characters become \u00XX and
// bytes that are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8Len(s, i);
      if (n == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

// A minimal JSON object/array writer: handles the commas, the caller the nesting.
class Json {
 public:
  Json& Open(char c) {
    Sep();
    out_.push_back(c);
    first_ = true;
    return *this;
  }
  Json& Close(char c) {
    out_.push_back(c);
    first_ = false;
    return *this;
  }
  Json& Key(std::string_view k) {
    Sep();
    AppendJsonString(&out_, k);
    out_.push_back(':');
    first_ = true;  // the value follows without a comma
    return *this;
  }
  Json& Str(std::string_view v) {
    Sep();
    AppendJsonString(&out_, v);
    return *this;
  }
  Json& Num(uint64_t v) {
    Sep();
    out_.append(std::to_string(v));
    return *this;
  }
  Json& Bool(bool v) {
    Sep();
    out_.append(v ? "true" : "false");
    return *this;
  }
  Json& Null() {
    Sep();
    out_.append("null");
    return *this;
  }
  explicit Json(bool identity = false) : identity_(identity) {}
  // A secret: "" stays "" (tells that none is set), anything else is redacted, in
  // the identity form too: the hash is public (/config, /metrics), and a digest of a
  // secret in it would let a weak token or password be guessed offline. So a changed
  // secret alone does not change the hash.
  Json& Secret(std::string_view v) { return Str(v.empty() ? v : kRedacted); }
  Json& Digest(const std::array<uint8_t, 32>&) { return Str(kRedacted); }
  Json& Names(const CommandSet& s) {
    Open('[');
    for (const std::string& n : DeniedNames(s)) Str(n);
    return Close(']');
  }
  std::string Take() { return std::move(out_); }

 private:
  void Sep() {
    if (!first_) out_.push_back(',');
    first_ = false;
  }
  std::string out_;
  bool first_ = true;
  bool identity_ = false;
};

void WriteLimits(Json& j, const Limits& l) {
  j.Open('{');
  j.Key("ops_per_sec").Num(l.ops_per_sec).Key("burst").Num(l.burst);
  j.Key("bytes_per_sec").Num(l.bytes_per_sec);
  j.Key("on_limit").Str(l.on_limit == OnLimit::kReject ? "reject" : "delay");
  j.Key("max_delay_ms").Num(l.max_delay_ms).Key("max_connections").Num(l.max_connections);
  j.Key("max_request_bytes").Num(l.max_request_bytes);
  j.Key("client_output_buffer_bytes").Num(l.client_output_buffer_bytes);
  j.Key("preauth_timeout_ms").Num(l.preauth_timeout_ms);
  j.Key("max_unauthenticated_per_ip").Num(l.max_unauthenticated_per_ip);
  j.Key("client_output_buffer_soft_bytes").Num(l.client_output_buffer_soft_bytes);
  j.Key("client_output_buffer_soft_seconds").Num(l.client_output_buffer_soft_seconds);
  j.Key("tenant_output_buffer_bytes").Num(l.tenant_output_buffer_bytes);
  j.Key("max_dedicated_connections").Num(l.max_dedicated_connections);
  j.Key("max_script_ms").Num(l.max_script_ms);
  j.Key("big_value_bytes").Num(l.big_value_bytes).Key("allow_scripts").Bool(l.allow_scripts);
  j.Key("memory_quota_bytes").Num(l.memory_quota_bytes).Key("max_keys").Num(l.max_keys);
  j.Key("scope").Str(l.scope == LimitScope::kInstance ? "instance" : "fleet");
  j.Key("fleet_instances").Num(l.fleet_instances);
  j.Close('}');
}

void WriteBackend(Json& j, const Backend& b) {
  static constexpr std::string_view kReadFrom[] = {"master", "replica", "prefer_replica"};
  j.Open('{');
  static constexpr std::string_view kModes[] = {"standalone", "cluster", "sentinel"};
  j.Key("mode").Str(kModes[static_cast<size_t>(b.mode)]);
  j.Key("nodes").Open('[');
  for (const Endpoint& e : b.nodes) j.Str(e.ToString());
  j.Close(']');
  j.Key("username").Str(b.username).Key("password").Secret(b.password);
  j.Key("connections_per_node").Num(b.connections_per_node);
  j.Key("connect_timeout_ms").Num(b.connect_timeout_ms);
  j.Key("request_timeout_ms").Num(b.request_timeout_ms);
  j.Key("retry_budget_ms").Num(b.retry_budget_ms);
  j.Key("subscriber_recovery_ms").Num(b.subscriber_recovery_ms);
  j.Key("acl").Str(b.acl == BackendAcl::kOff ? "off" : "per_tenant");
  j.Key("tenant_connection_idle_ms").Num(b.tenant_connection_idle_ms);
  j.Key("notify_keyspace_events").Str(b.notify_keyspace_events);
  j.Key("read_from").Str(kReadFrom[static_cast<size_t>(b.read_from)]);
  if (b.tls) {
    j.Key("tls").Open('{');
    j.Key("ca").Str(b.tls->ca_path).Key("cert").Str(b.tls->cert_path);
    j.Key("key").Str(b.tls->key_path).Key("server_name").Str(b.tls->server_name);
    j.Key("verify").Bool(b.tls->verify).Key("fingerprint").Str(b.tls->fingerprint);
    j.Close('}');
  }
  if (b.mode == BackendMode::kSentinel) {
    j.Key("sentinel").Open('{');
    j.Key("master").Str(b.sentinel.master).Key("nodes").Open('[');
    for (const Endpoint& e : b.sentinel.nodes) j.Str(e.ToString());
    j.Close(']');
    j.Key("username").Str(b.sentinel.username).Key("password").Secret(b.sentinel.password);
    j.Close('}');
  }
  j.Close('}');
}

void WriteTenant(Json& j, const Tenant& t) {
  j.Open('{');
  j.Key("index").Num(t.index).Key("prefix").Str(t.prefix);
  j.Key("users").Open('[');
  for (const User& u : t.users) {
    j.Open('{').Key("name").Str(u.name).Key("password_sha256").Digest(u.password_sha256).Close('}');
  }
  j.Close(']');
  j.Key("limits");
  WriteLimits(j, t.limits);
  j.Key("deny_commands").Names(t.deny);
  j.Key("cert_names").Open('[');
  for (const std::string& n : t.cert_names) j.Str(n);
  j.Close(']');
  j.Key("key_rules").Open('[');
  for (const KeyRule& r : t.key_rules) {
    j.Open('{').Key("match").Str(r.match).Key("deny_commands").Names(r.deny);
    j.Key("read_only").Bool(r.read_only).Close('}');
  }
  j.Close(']');
  j.Close('}');
}

void WriteSnapshot(Json& j, const Snapshot& s, bool identity) {
  j.Open('{');
  if (!identity) {
    j.Key("version").Num(s.version).Key("source").Str(s.source).Key("hash").Str(s.hash);
  }
  j.Key("cluster_name").Str(s.cluster_name).Key("workers").Num(s.workers);
  j.Key("max_clients").Num(s.max_clients).Key("shutdown_grace_ms").Num(s.shutdown_grace_ms);
  j.Key("listeners").Open('[');
  for (const Listener& l : s.listeners) {
    j.Open('{');
    if (l.is_unix()) {
      j.Key("unix").Str(l.unix_path).Key("mode").Num(l.unix_mode);
    } else {
      j.Key("bind").Str(l.bind.ToString());
    }
    if (l.tls) {
      static constexpr std::string_view kAuth[] = {"none", "optional", "required"};
      j.Key("tls").Open('{').Key("cert").Str(l.tls->cert_path).Key("key").Str(l.tls->key_path);
      j.Key("ca").Str(l.tls->ca_path);
      j.Key("client_auth").Str(kAuth[static_cast<int>(l.tls->client_auth)]);
      j.Key("min_version").Str(l.tls->min_version == 0x0304 ? "1.3" : "1.2");
      j.Key("fingerprint").Str(l.tls->fingerprint).Close('}');
    }
    static constexpr std::string_view kFrom[] = {"auth", "cert_cn", "cert_san_dns", "cert_san_uri"};
    if (l.tenant_from != TenantFrom::kAuth) {
      j.Key("tenant_from").Str(kFrom[static_cast<int>(l.tenant_from)]);
    }
    j.Key("tenant");
    if (l.tenant.empty()) {
      j.Null();
    } else {
      j.Str(l.tenant);
    }
    j.Close('}');
  }
  j.Close(']');
  j.Key("admin").Open('{').Key("bind").Str(s.admin.bind.ToString());
  j.Key("token").Secret(s.admin.token).Close('}');
  j.Key("backend");
  WriteBackend(j, s.backend);
  j.Key("policy").Open('{').Key("deny_commands").Names(s.global_deny).Close('}');
  j.Key("limits");
  WriteLimits(j, s.default_limits);
  j.Key("accounting").Open('{').Key("schedule").Str(s.accounting.schedule);
  j.Key("top_keys").Num(s.accounting.top_keys).Key("state_dir").Str(s.accounting.state_dir);
  j.Key("quota_refresh_ms").Num(s.accounting.quota_refresh_ms).Close('}');
  j.Key("tenants").Open('{');
  for (const Tenant& t : s.tenants) {
    j.Key(t.app);
    WriteTenant(j, t);
  }
  j.Close('}');
  j.Close('}');
}

}  // namespace

std::string ToJson(const Snapshot& s) {
  Json j;
  WriteSnapshot(j, s, false);
  return j.Take();
}

std::string HexDigest(const std::array<uint8_t, 32>& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < d.size(); ++i) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 15];
  }
  return out;
}

std::string IdentityHash(const Snapshot& s) {
  Json j(true);
  WriteSnapshot(j, s, true);
  return HexDigest(Sha256(j.Take()));
}


}  // namespace keyfence::config
