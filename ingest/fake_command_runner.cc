#include "ingest/fake_command_runner.h"

namespace vmvault::ingest {

void FakeCommandRunner::Expect(std::vector<std::string> argv, CommandOutput output) {
  std::lock_guard<std::mutex> lock(mu_);
  outputs_[std::move(argv)] = std::move(output);
}

void FakeCommandRunner::Expect(std::vector<std::string> argv, int exit_code,
                               std::string stdout_text, std::string stderr_text) {
  Expect(std::move(argv), CommandOutput{exit_code, std::move(stdout_text), std::move(stderr_text)});
}

Result<CommandOutput> FakeCommandRunner::Run(const std::vector<std::string>& argv) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.push_back(argv);
  auto it = outputs_.find(argv);
  if (it == outputs_.end()) {
    return Status::NotFound("FakeCommandRunner: unexpected command: " + FormatCommand(argv));
  }
  return it->second;
}

std::vector<std::vector<std::string>> FakeCommandRunner::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

}  // namespace vmvault::ingest
