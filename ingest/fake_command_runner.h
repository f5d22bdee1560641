// FakeCommandRunner: a CommandRunner for unit tests that replays canned output, after
// the FakeCommandRunner in ninja's build_test.cc. Each expected command line (argv,
// exactly) maps to one CommandOutput; a command nobody registered fails the test run
// with NotFound naming it, so unexpected calls are visible. Every call is recorded.
//
// Thread-safe (a mutex), so it can stand in for RealCommandRunner anywhere.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ingest/command_runner.h"

namespace vmvault::ingest {

class FakeCommandRunner final : public CommandRunner {
 public:
  // Registers the output for `argv`; a later call for the same argv replaces it.
  void Expect(std::vector<std::string> argv, CommandOutput output);
  // Shorthand: exit code, stdout, stderr.
  void Expect(std::vector<std::string> argv, int exit_code, std::string stdout_text,
              std::string stderr_text = {});

  Result<CommandOutput> Run(const std::vector<std::string>& argv) override;

  // Every argv Run was called with, in order.
  std::vector<std::vector<std::string>> calls() const;

 private:
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, CommandOutput> outputs_;  // GUARDED_BY(mu_)
  std::vector<std::vector<std::string>> calls_;                // GUARDED_BY(mu_)
};

}  // namespace vmvault::ingest
