// keyfence: a namespace-enforcing Redis proxy. Flag parsing (CLI11: --help on
// stdout, unknown options named, exit 2 on bad usage), logging set-up, --check
// and the exit codes (DESIGN.md "Build and run").
#include <cstdio>
#include <csignal>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "config/config.h"
#include "inject/run.h"
#include "proxy/accounting/cli.h"
#include "proxy/base/logging.h"
#include "proxy/ctl/ctl.h"
#include "proxy/server.h"

namespace {

constexpr const char* kVersion = "keyfence " KEYFENCE_VERSION " (" KEYFENCE_REVISION ")";

}  // namespace

int main(int argc, char** argv) {
  // A write to a peer that has gone must be an error, not the end of the
  // process: OpenSSL writes to client sockets without MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"keyfence: a namespace-enforcing Redis proxy", "keyfence"};
  app.set_version_flag("--version", kVersion);
  std::string config_path;
  std::string log_level = "info";
  std::string log_format = "text";
  bool check = false;
  app.add_option("--config", config_path, "the YAML config file");
  app.add_flag("--check", check, "validate the config and exit (0: OK, 1: FILE:LINE:COL errors)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text|json")->check(CLI::IsMember({"text", "json"}));

  keyfence::proxy::accounting::AnalyzeOptions analyze;
  CLI::App* an = app.add_subcommand(
      "analyze", "per-namespace memory and keys of the backend (over replication, or an RDB file)");
  an->add_option("--config", analyze.config_path, "the YAML config file")
      ->required();
  an->add_option("--rdb", analyze.rdb_path, "read this RDB file instead of the masters");
  an->add_flag("--json", analyze.json, "the report as JSON");
  an->add_option("--top", analyze.top, "big keys per tenant (default: accounting.top_keys)")
      ->check(CLI::Range(size_t{0}, size_t{100000}));

  // keyfence inject: the sidecar injection webhook (inject/run.h, deploy/inject/README.md).
  keyfence::inject::RunOptions inject;
  CLI::App* inj = app.add_subcommand(
      "inject", "Kubernetes mutating admission webhook that adds the keyfence sidecar to pods");
  inj->fallthrough();  // --log-level / --log-format also after the subcommand
  inj->add_option("--listen", inject.listen, "HOST:PORT to serve HTTPS on ([IPv6]:PORT)")
      ->required()
      ->type_name("HOST:PORT")
      ->check(CLI::Validator(keyfence::inject::CheckListen, ""));
  inj->add_option("--tls-cert", inject.cert_path, "PEM certificate chain (reloaded on change)")
      ->required();
  inj->add_option("--tls-key", inject.key_path, "PEM private key (reloaded on change)")
      ->required();
  inj->add_option("--image", inject.inject.image, "the sidecar's image")
      ->type_name("IMAGE")
      ->capture_default_str()
      ->check(CLI::Validator([](const std::string& s) { return s.empty() ? "is empty" : ""; },
                             ""));
  inj->add_option("--admin-port", inject.inject.admin_port, "the sidecar's admin HTTP port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  // keyfence ctl: the admin API from the command line (proxy/ctl/ctl.h).
  keyfence::proxy::ctl::CtlOptions ctl;
  CLI::App* ctl_app = keyfence::proxy::ctl::AddSubcommand(app, &ctl);
  app.footer("exit codes: 0 ok, 1 config errors or an incomplete analysis (ctl: the API "
             "refused), 2 bad usage, 3 (ctl) the admin API cannot be reached");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", app.help().c_str());
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::printf("%s\n", kVersion);
    return 0;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help of a subcommand
    std::fprintf(stderr, "keyfence: %s\nRun with --help for the options.\n", e.what());
    return 2;
  }
  if (an->parsed()) return keyfence::proxy::accounting::RunAnalyze(analyze);
  if (ctl_app->parsed()) return keyfence::proxy::ctl::Run(ctl);
  if (inj->parsed()) {
    if (!keyfence::proxy::SetUpLogging(log_level, log_format)) {
      std::fprintf(stderr, "keyfence: unknown log level '%s' or format '%s'\n",
                   log_level.c_str(), log_format.c_str());
      return 2;
    }
    return keyfence::inject::Run(inject);
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "keyfence: --config is required\nRun with --help for the options.\n");
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
  server.SetBuildInfo(KEYFENCE_VERSION, KEYFENCE_REVISION);
  return server.Run();
}
