// The whole vmvault command line as one CLI11 app: every command of the table
// (tools/cli.h) with the options all of them share, plus the hidden `completion`
// command that prints shell completion built from this same app (tools/completion.h).
// main.cc parses with it; tests inspect it. Not thread-safe.
#pragma once

#include <functional>
#include <memory>

#include "base/status.h"
#include "tools/cli.h"

namespace CLI {
class App;
}

namespace vmvault::tools {

// `global` and `run` must outlive the app; after a successful parse `run` is the chosen
// command's function.
std::unique_ptr<CLI::App> MakeApp(GlobalOptions& global, std::function<Status()>& run);

}  // namespace vmvault::tools
