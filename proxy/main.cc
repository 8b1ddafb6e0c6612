// keyfence: a namespace-enforcing Redis proxy. Flag parsing, logging set-up,
// --check and the exit codes (DESIGN.md "Build and run").
#include <cstdio>
#include <csignal>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "config/config.h"
#include "proxy/accounting/cli.h"
#include "proxy/base/logging.h"
#include "proxy/server.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: keyfence --config FILE [--check] [--log-level trace|debug|info|warn|error]\n"
               "                [--log-format text|json]\n"
               "       keyfence analyze --config FILE [--rdb FILE] [--json] [--top N]\n"
               "       keyfence --version\n");
}

}  // namespace

int main(int argc, char** argv) {
  // A write to a peer that has gone must be an error, not the end of the
  // process: OpenSSL writes to client sockets without MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  if (argc > 1 && std::strcmp(argv[1], "analyze") == 0) {
    return keyfence::proxy::accounting::RunAnalyze(argc, argv);
  }
  std::string config_path;
  std::string log_level = "info";
  std::string log_format = "text";
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--version") {
      std::printf("keyfence %s\n", KEYFENCE_VERSION);
      return 0;
    } else if (a == "--check") {
      check = true;
    } else if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--log-level" && i + 1 < argc) {
      log_level = argv[++i];
    } else if (a == "--log-format" && i + 1 < argc) {
      log_format = argv[++i];
    } else {
      Usage();
      return 2;
    }
  }
  if (config_path.empty()) {
    Usage();
    return 2;
  }
  if (!keyfence::proxy::SetUpLogging(log_level, log_format)) {
    std::fprintf(stderr, "keyfence: unknown log level '%s' or format '%s'\n", log_level.c_str(),
                 log_format.c_str());
    return 2;
  }

  keyfence::config::LoadResult r = keyfence::config::LoadFile(config_path, 1);
  if (!r.ok()) {
    for (const auto& d : r.errors) std::fprintf(stderr, "%s\n", d.ToString().c_str());
    return 1;
  }
  // Scripts without the ACL backstop run with keyfence's rights: the config
  // is valid, but the operator should know it trusts those tenants.
  for (const keyfence::config::Tenant& t : r.snapshot->tenants) {
    if (t.limits.allow_scripts && r.snapshot->backend.acl == keyfence::config::BackendAcl::kOff) {
      std::fprintf(stderr,
                   "%s: warning: tenant '%s' has allow_scripts without backend.acl: per_tenant: "
                   "its scripts can reach every tenant's keys (the tenant is trusted)\n",
                   config_path.c_str(), t.app.c_str());
    }
  }
  if (check) {
    std::printf("%s: OK\n", config_path.c_str());
    return 0;
  }
  keyfence::proxy::Server server(config_path, r.snapshot);
  return server.Run();
}
