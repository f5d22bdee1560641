#include "tools/app.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "tools/completion.h"

namespace vmvault::tools {

std::unique_ptr<CLI::App> MakeApp(GlobalOptions& global, std::function<Status()>& run) {
  auto app = std::make_unique<CLI::App>(
      "vmvault: back up virtual machines into one deduplicating store and show every "
      "backup as a read-only filesystem.",
      "vmvault");
  app->set_version_flag("--version", std::string("vmvault ") + VMVAULT_VERSION);
  app->require_subcommand(1);
  for (const Command& cmd : Commands()) {
    CLI::App* sub = app->add_subcommand(cmd.name, cmd.description);
    sub->add_option("--repo", global.repo,
                    "Repository directory (default: $VMVAULT_REPO, else /var/lib/vmvault for "
                    "root, else ~/.local/share/vmvault)");
    sub->add_flag("-q,--quiet", global.quiet, "Print only errors");
    sub->add_flag("-v,--verbose", global.verbose, "Print debugging detail");
    CLI::Option* log_file =
        sub->add_option("--log-file", global.log.file,
                        "Also log to this file (appended to, with the time and process id)")
            ->group("Logging");
    sub->add_flag("--syslog", global.log.syslog, "Also log to syslog")
        ->excludes(log_file)
        ->group("Logging");
    sub->add_option("--log-level", global.log.level,
                    "Level of the log file or syslog: error, warning, info (default) or debug")
        ->check(CLI::IsMember({"error", "warning", "info", "debug"}))
        ->group("Logging");
    auto fn = cmd.setup(*sub, global);
    sub->callback([&run, fn] { run = fn; });
  }

  // Hidden (no group): for packagers and the build, not for users' --help.
  CLI::App* completion =
      app->add_subcommand("completion", "Print the shell completion script for bash or zsh");
  completion->group("");
  auto shell = std::make_shared<std::string>();
  completion->add_option("shell", *shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  CLI::App* root = app.get();
  completion->callback([&run, shell, root] {
    run = [shell, root]() -> Status {
      const std::string script = *shell == "bash" ? BashCompletion(*root) : ZshCompletion(*root);
      std::fwrite(script.data(), 1, script.size(), stdout);
      return std::fflush(stdout) == 0 ? Status::OK()
                                      : Status::IOError("cannot write the completion script");
    };
  });
  return app;
}

}  // namespace vmvault::tools
