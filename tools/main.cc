// vmvault: back up virtual machines into one deduplicating store and show every backup
// as a read-only filesystem. See vmvault(1).
#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "tools/app.h"
#include "tools/cli.h"
#include "tools/logging.h"

int main(int argc, char** argv) {
  using namespace vmvault::tools;
  // A peer that goes away (libvirtd restarting, an NBD server stopping, a closed
  // pipe) must be an error from write(), not a silent death: libvirt requires this.
  std::signal(SIGPIPE, SIG_IGN);
  GlobalOptions global;
  global.repo = DefaultRepoPath();
  std::function<vmvault::Status()> run;
  std::unique_ptr<CLI::App> app = MakeApp(global, run);

  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app->exit(e);
    return e.get_exit_code() == 0 ? 0 : (rc == 0 ? 0 : kExitUsage);
  }

  // Informational lines only on a terminal: under cron only problems are printed.
  vmvault::Status s = ConfigureLogging(global, nullptr);
  if (s.ok()) s = run();
  if (!s.ok()) {
    std::fprintf(stderr, "vmvault: %s\n", s.ToString().c_str());
    return ExitCodeFor(s);
  }
  return 0;
}
