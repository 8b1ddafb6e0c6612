// The top-level mapping and the listeners, admin and backend sections of the
// YAML walk (see loader_parser.h).
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "config/config.h"
#include "config/loader_parser.h"
#include "config/spec.h"

namespace keyfence::config::internal::loader {

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
             {"accounting", [&](const Val& f) { AccountingSection(f, &spec->accounting); }},
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
                                 {"unix", [&](const Val& f) { UnixPath(f, &l); }},
                                 {"tls",
                                  [&](const Val& f) {
                                    l.tls_pos = f.pos;
                                    l.tls = TlsSection(f);
                                  }},
                                 {"tenant_from",
                                  [&](const Val& f) {
                                    l.tenant_from_pos = f.pos;
                                    size_t i = 0;
                                    if (Choice(f, {"auth", "cert_cn", "cert_san_dns", "cert_san_uri"},
                                               &i)) {
                                      l.tenant_from = static_cast<TenantFrom>(i);
                                    }
                                  }},
                                 {"mode", [&](const Val& f) { FileMode(f, &l.unix_mode); }},
                             });
    if (!seen) return;
    const bool tcp = Has(*seen, "bind"), unix = Has(*seen, "unix");
    if (tcp && unix) {
      Error(e, "a listener has either bind (TCP) or unix (a socket path), not both");
    } else if (!tcp && !unix) {
      Error(e, "missing required field 'bind' (or 'unix' for a Unix socket)");
    } else if (Has(*seen, "mode") && !unix) {
      Error(e, "mode applies to a unix listener only");
    } else if (Has(*seen, "tls") && unix) {
      Error(e, "tls applies to TCP listeners (a Unix socket is reached only from its host)");
    } else if (tcp || !l.unix_path.empty()) {
      spec->listeners.push_back(std::move(l));
    }
  });
  if (list && v.node.size() == 0) Error(v, "at least one listener is required");
}

void Parser::UnixPath(const Val& v, ListenerSpec* l) {
  l->unix_pos = v.pos;
  std::string p;
  if (!Str(v, &p)) return;
  if (p.empty()) {
    Error(v, "must be a socket path");
  } else if (p.size() > kMaxUnixPath) {
    Error(v, "a Unix socket path is at most " + std::to_string(kMaxUnixPath) + " bytes, got " +
                 std::to_string(p.size()));
  } else {
    l->unix_path = std::move(p);
  }
}

void Parser::FileMode(const Val& v, uint32_t* out) {
  std::string s;
  if (!Str(v, &s)) return;
  const bool octal = !s.empty() && s.size() <= 4 &&
                     s.find_first_not_of("01234567") == std::string::npos;
  if (!octal) {
    Error(v, "expected octal permission bits as a string, e.g. \"0660\", got " + Quote(s));
    return;
  }
  *out = static_cast<uint32_t>(std::stoul(s, nullptr, 8));
}

void Parser::AccountingSection(const Val& v, Accounting* a) {
  if (v.node.IsNull()) return;
  Map(v, {
             {"schedule",
              [&](const Val& f) {
                std::string s;
                if (!Str(f, &s)) return;
                if (s.empty()) return;
                int h = -1, m = -1;
                char tail = 0;
                if (std::sscanf(s.c_str(), "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 ||
                    m < 0 || m > 59 || s.size() != 5) {
                  Error(f, "expected a time of day HH:MM (e.g. \"03:30\") or \"\", got " +
                               Quote(s));
                  return;
                }
                a->schedule = s;
                a->schedule_minute = h * 60 + m;
              }},
             {"top_keys", UintTo(&a->top_keys, 0, 1000)},
             {"state_dir", StrTo(&a->state_dir)},
             {"quota_refresh_ms", UintTo(&a->quota_refresh_ms, 100, kMaxMs)},
         });
}

void Parser::AdminSection(const Val& v, Spec* spec) {
  if (v.node.IsNull()) return;  // "admin:" with every field commented out
  Map(v, {
             {"bind", [&](const Val& f) { HostPort(f, &spec->admin.bind); }},
             {"token", StrTo(&spec->admin.token)},
         });
}

void Parser::SentinelSection(const Val& v, Sentinel* s) {
  const auto seen = Map(v, {
                               {"master",
                                [&](const Val& f) {
                                  if (Str(f, &s->master) && s->master.empty()) {
                                    Error(f, "must name the master (SENTINEL MONITOR's name)");
                                  }
                                }},
                               {"nodes",
                                [&](const Val& f) {
                                  const bool list = Seq(f, [&](const Val& e) {
                                    Endpoint ep;
                                    if (HostPort(e, &ep)) s->nodes.push_back(std::move(ep));
                                  });
                                  if (list && f.node.size() == 0) {
                                    Error(f, "at least one sentinel is required");
                                  }
                                }},
                               {"username", StrTo(&s->username)},
                               {"password", StrTo(&s->password)},
                           });
  if (!seen) return;
  Require(v, *seen, "master");
  Require(v, *seen, "nodes");
}

void Parser::BackendSection(const Val& v, Backend* b) {
  std::optional<Val> nodes, sentinel;
  const auto seen = Map(
      v, {
             {"mode",
              [&](const Val& f) {
                size_t i = 0;
                if (Choice(f, {"standalone", "cluster", "sentinel"}, &i)) {
                  b->mode = static_cast<BackendMode>(i);
                }
              }},
             {"nodes",
              [&](const Val& f) {
                nodes.emplace(f);
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
             {"retry_budget_ms", UintTo(&b->retry_budget_ms, 0, kMaxMs)},
             {"subscriber_recovery_ms", UintTo(&b->subscriber_recovery_ms, 0, kMaxMs)},
             {"tenant_connection_idle_ms", UintTo(&b->tenant_connection_idle_ms, 0, kMaxMs)},
             {"notify_keyspace_events",
              [&](const Val& f) {
                if (!Str(f, &b->notify_keyspace_events)) return;
                for (char c : b->notify_keyspace_events) {
                  if (std::string_view("KEg$lshzxetmdnA").find(c) == std::string_view::npos) {
                    Error(f, std::string("unknown notify-keyspace-events flag '") + c +
                                 "' (Redis's: KEg$lshzxetmdnA)");
                    return;
                  }
                }
              }},
             {"acl",
              [&](const Val& f) {
                size_t i = 0;
                if (Choice(f, {"off", "per_tenant"}, &i)) b->acl = static_cast<BackendAcl>(i);
              }},
             {"read_from",
              [&](const Val& f) {
                size_t i = 0;
                if (Choice(f, {"master", "replica", "prefer_replica"}, &i)) {
                  b->read_from = static_cast<ReadFrom>(i);
                }
              }},
             {"tls", [&](const Val& f) { b->tls = BackendTlsSection(f); }},
             {"sentinel",
              [&](const Val& f) {
                sentinel.emplace(f);
                SentinelSection(f, &b->sentinel);
              }},
         });
  if (!seen) return;
  if (b->mode == BackendMode::kSentinel) {
    // The sentinels name the master (and its replicas); nodes would only be stale.
    Require(v, *seen, "sentinel");
    if (nodes) Error(*nodes, "sentinel mode takes no nodes: the sentinels name the master");
    return;
  }
  if (sentinel) Error(*sentinel, "sentinel applies to mode: sentinel only");
  Require(v, *seen, "nodes");
  if (nodes && b->mode == BackendMode::kStandalone && nodes->node.IsSequence() &&
      nodes->node.size() > 1) {
    Error(*nodes,
          "standalone mode takes exactly one node, got " + std::to_string(nodes->node.size()));
  }
}

}  // namespace keyfence::config::internal::loader
