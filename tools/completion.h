// Shell completion scripts for bash and zsh, generated from the CLI11 app itself
// (tools/app.h), so every command and option the binary has is completed and none that
// it lacks. `vmvault completion bash|zsh` prints them; the build installs them.
//
// What an option's value completes to is by its name (kValueHints in completion.cc):
// files, directories, VM names (from `vmvault list --json` of the repository on the
// command line), or a fixed list. Options not named there complete nothing.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace vmvault::tools {

std::string BashCompletion(const CLI::App& app);
std::string ZshCompletion(const CLI::App& app);

}  // namespace vmvault::tools
