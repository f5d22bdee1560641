// CommandRunner: how ingest runs external programs that finish (qemu-img), after
// ninja's CommandRunner. RealCommandRunner runs them for real (through subprocess.h);
// FakeCommandRunner (fake_command_runner.h) replays recorded output in unit tests.
//
// Run() reports a program that ran and failed as an OK Result with a non-zero
// exit_code; only a program that could not be run at all is an error (NotFound when it
// is not on PATH). Implementations say whether they are thread-safe; RealCommandRunner
// is.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "ingest/subprocess.h"

namespace vmvault::ingest {

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Runs argv[0] with arguments argv[1..] and waits for it. REQUIRES: !argv.empty().
  virtual Result<CommandOutput> Run(const std::vector<std::string>& argv) = 0;
};

class RealCommandRunner final : public CommandRunner {
 public:
  Result<CommandOutput> Run(const std::vector<std::string>& argv) override;
};

// "qemu-img info --output=json '/a b'": argv joined for logs and error messages, with
// arguments that need it in single quotes.
std::string FormatCommand(const std::vector<std::string>& argv);

}  // namespace vmvault::ingest
