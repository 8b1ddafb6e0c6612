#include "proxy/ctl/ctl.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proxy/ctl/http_client.h"

namespace keyfence::proxy::ctl {

namespace {

constexpr std::chrono::milliseconds kTimeout{10000};
constexpr const char* kDefaultAdmin = "http://127.0.0.1:9121";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string PercentEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "keyfence ctl: %s\nRun 'keyfence ctl --help' for the commands.\n",
               message.c_str());
  return 2;
}

// FIELD=VALUE... -> {"FIELD": VALUE}: digits as numbers, true/false as booleans.
bool LimitsBody(const std::vector<std::string>& pairs, std::string* body, std::string* error) {
  nlohmann::json j = nlohmann::json::object();
  for (const std::string& p : pairs) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
      *error = "expected FIELD=VALUE, got '" + p + "'";
      return false;
    }
    const std::string field = p.substr(0, eq), value = p.substr(eq + 1);
    if (value.find_first_not_of("0123456789") == std::string::npos && value.size() < 20) {
      j[field] = std::stoull(value);
    } else if (value == "true" || value == "false") {
      j[field] = value == "true";
    } else {
      j[field] = value;
    }
  }
  *body = j.dump();
  return true;
}

std::string Cell(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "-";
  return j.dump();
}

// GET /tenants as a table.
void PrintTenants(const std::string& body) {
  const nlohmann::json j = nlohmann::json::parse(body);
  std::printf("%-24s %8s %12s %10s %12s  %s\n", "TENANT", "CONNS", "OPS", "REJECTED",
              "OPS/S LIMIT", "DRIFT FROM THE FILE");
  for (const auto& [name, t] : j.items()) {
    std::string drift;
    if (t.contains("drift")) {
      for (const auto& [field, d] : t["drift"].items()) {
        if (!drift.empty()) drift += ", ";
        drift += field + " " + Cell(d["file"]) + "->" + Cell(d["live"]);
      }
    }
    const nlohmann::json limits = t.value("limits", nlohmann::json::object());
    std::printf("%-24s %8s %12s %10s %12s  %s\n", name.c_str(), Cell(t.value("connections", nlohmann::json())).c_str(),
                Cell(t.value("ops", nlohmann::json())).c_str(),
                Cell(t.value("rejected", nlohmann::json())).c_str(),
                Cell(limits.value("ops_per_sec", nlohmann::json())).c_str(),
                drift.empty() ? "-" : drift.c_str());
  }
}

struct Call {
  std::string method, target, body;
  bool table = false;  // GET /tenants, printed as a table unless --json
};

// The verb and its words -> the request. Returns an exit code > 0 on bad usage.
int Plan(const CtlOptions& o, Call* c) {
  const auto& w = o.words;
  const std::string verb = w.empty() ? "" : w[0];
  const std::string scope = o.fleet ? "?scope=fleet" : "";
  auto want = [&](size_t n, const char* form) {
    return w.size() == n ? 0 : Usage(std::string("usage: keyfence ctl ") + form);
  };
  if (verb == "tenants") {
    *c = {"GET", "/tenants", "", !o.json};
    return want(1, "tenants");
  }
  if (verb == "reload") {
    *c = {"POST", "/reload", ""};
    return want(1, "reload");
  }
  if (verb == "namespaces" || verb == "config") {
    *c = {"GET", "/" + verb, ""};
    return want(1, verb.c_str());
  }
  if (verb == "health" || verb == "ready") {  // container health checks: exit 0 on 200
    *c = {"GET", verb == "health" ? "/healthz" : "/readyz", ""};
    return want(1, verb.c_str());
  }
  if (verb == "analyze") {
    *c = {"POST", "/analyze", ""};
    return want(1, "analyze");
  }
  if (verb == "hotkeys") {
    if (int rc = want(2, "hotkeys TENANT")) return rc;
    *c = {"GET", "/hotkeys?tenant=" + PercentEncode(w[1]), ""};
    return 0;
  }
  if (verb == "limits") {
    const std::string sub = w.size() > 1 ? w[1] : "";
    if (sub == "set" && w.size() >= 4) {
      std::string body, error;
      if (!LimitsBody({w.begin() + 3, w.end()}, &body, &error)) return Usage(error);
      *c = {"PUT", "/tenants/" + PercentEncode(w[2]) + "/limits" + scope, body};
      return 0;
    }
    if (sub == "clear" && w.size() == 3) {
      *c = {"DELETE", "/tenants/" + PercentEncode(w[2]) + "/limits" + scope, ""};
      return 0;
    }
    return Usage("usage: keyfence ctl limits set TENANT FIELD=VALUE... [--fleet] | "
                 "limits clear TENANT [--fleet]");
  }
  return Usage(verb.empty() ? "a command is required"
                            : "unknown command '" + verb + "'");
}

}  // namespace

CLI::App* AddSubcommand(CLI::App& app, CtlOptions* opts) {
  CLI::App* ctl = app.add_subcommand(
      "ctl",
      "the admin API from the command line:\n"
      "  tenants | limits set TENANT FIELD=VALUE... | limits clear TENANT | reload |\n"
      "  hotkeys TENANT | namespaces | config | analyze | health | ready");
  ctl->add_option("--admin", opts->admin,
                  "admin API address (default $KEYFENCE_ADMIN, else http://127.0.0.1:9121)");
  ctl->add_option("--token", opts->token, "admin token (default $KEYFENCE_TOKEN)");
  ctl->add_flag("--json", opts->json, "print the API's JSON as is");
  ctl->add_flag("--fleet", opts->fleet,
                "limits: change every keyfence instance of the fleet (kept in the backend)");
  ctl->add_option("command", opts->words, "the command and its arguments")->expected(-1);
  ctl->positionals_at_end(false);
  return ctl;
}

int Run(const CtlOptions& in) {
  CtlOptions o = in;
  if (o.admin.empty()) o.admin = Env("KEYFENCE_ADMIN");
  if (o.admin.empty()) o.admin = kDefaultAdmin;
  if (o.token.empty()) o.token = Env("KEYFENCE_TOKEN");
  Call c;
  if (int rc = Plan(o, &c)) return rc;
  std::string error;
  auto answer = HttpRequest(o.admin, c.method, c.target, o.token, c.body, kTimeout, &error);
  if (!answer) {
    std::fprintf(stderr, "keyfence ctl: %s\n", error.c_str());
    return 3;
  }
  if (answer->status < 200 || answer->status >= 300) {
    std::fprintf(stderr, "keyfence ctl: %s %s: HTTP %d\n%s", c.method.c_str(), c.target.c_str(),
                 answer->status, answer->body.c_str());
    if (!answer->body.empty() && answer->body.back() != '\n') std::fputc('\n', stderr);
    return 1;
  }
  try {
    if (c.table) {
      PrintTenants(answer->body);
    } else {
      std::printf("%s\n", nlohmann::json::parse(answer->body).dump(2).c_str());
    }
  } catch (const nlohmann::json::exception&) {  // not JSON: as it came
    std::printf("%s", answer->body.c_str());
  }
  return 0;
}

}  // namespace keyfence::proxy::ctl
