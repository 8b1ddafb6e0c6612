// keyfence ctl: the admin API for people (issue 13). A thin HTTP client of the
// admin endpoints (DESIGN.md "Admin HTTP"):
//   tenants                                  GET /tenants (a table; --json: as is)
//   limits set TENANT FIELD=VALUE... [--fleet]  PUT /tenants/TENANT/limits
//   limits clear TENANT [--fleet]            DELETE /tenants/TENANT/limits
//   reload                                   POST /reload
//   hotkeys TENANT                           GET /hotkeys?tenant=TENANT
//   namespaces                               GET /namespaces
//   config                                   GET /config
//   analyze                                  POST /analyze
//   health | ready                           GET /healthz | /readyz (exit 0 on 200: a
//                                            container health check without a shell)
// The admin address comes from --admin or $KEYFENCE_ADMIN (default
// http://127.0.0.1:9121), the token from --token or $KEYFENCE_TOKEN (so that
// it need not show in `ps`).
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace keyfence::proxy::ctl {

struct CtlOptions {
  std::string admin;  // http://host:port
  std::string token;
  bool json = false;
  bool fleet = false;
  std::vector<std::string> words;  // the verb and its arguments
};

// Adds the `ctl` subcommand (its options fill *opts) to `app`.
CLI::App* AddSubcommand(CLI::App& app, CtlOptions* opts);

// Exit codes: 0 done, 1 the admin API refused (its answer on stderr), 2 bad
// usage, 3 the admin API could not be reached.
int Run(const CtlOptions& opts);

}  // namespace keyfence::proxy::ctl
