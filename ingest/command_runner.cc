#include "ingest/command_runner.h"

#include <spdlog/spdlog.h>

namespace vmvault::ingest {

Result<CommandOutput> RealCommandRunner::Run(const std::vector<std::string>& argv) {
  spdlog::debug("running {}", FormatCommand(argv));
  return RunProcess(argv);
}

std::string FormatCommand(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    const bool plain =
        !arg.empty() &&
        arg.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./,:+@%") ==
            std::string::npos;
    if (plain) {
      out += arg;
      continue;
    }
    out += '\'';
    for (char c : arg) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += '\'';
  }
  return out;
}

}  // namespace vmvault::ingest
