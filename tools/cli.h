// The command-line layer: one table of subcommands (after ninja's kTools[]), each a
// name, a one-line description, a function that declares its options on a CLI11
// subcommand, and a function that runs it. main.cc is thin: it parses, dispatches and
// turns the returned Status into a message and an exit code.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/status.h"
#include "ingest/config.h"

namespace CLI {
class App;
class Option;
}

namespace vmvault::tools {

// Where log lines go besides stderr (tools/logging.h); empty: as [log] says.
struct LogOptions {
  std::string file;     // --log-file PATH
  bool syslog = false;  // --syslog
  std::string level;    // --log-level error|warning|info|debug
};

// Options every subcommand has.
struct GlobalOptions {
  std::string repo;  // --repo, or VMVAULT_REPO, or the default below
  bool quiet = false;
  bool verbose = false;
  LogOptions log;
};

// A subcommand. `setup` declares its options on `app` and returns the function that
// runs it once they are parsed.
struct Command {
  const char* name;
  const char* description;
  std::function<std::function<Status()>(CLI::App& app, GlobalOptions& global)> setup;
};

// The table, in the order `vmvault --help` lists them.
const std::vector<Command>& Commands();

Command InitCommand();
Command IngestCommand();
Command ListCommand();
Command ShowBackupsCommand();
Command StatusCommand();
Command MountCommand();
Command RestoreCommand();
Command VerifyCommand();
Command PruneCommand();
Command ScrubCommand();
Command ConfigCommand();
Command GcCommand();
Command ScheduleCommand();
Command ShowQueueCommand();
Command ArchiveCommand();
Command ActivateCommand();

// The repository path: --repo, else VMVAULT_REPO, else /var/lib/vmvault for root and
// $XDG_DATA_HOME/vmvault (~/.local/share/vmvault) for others.
std::string DefaultRepoPath();

// Exit codes, documented in vmvault(1).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,       // any other failure
  kExitUsage = 2,       // bad command line
  kExitRepo = 3,        // no repository there, the wrong format version, or a damaged one
  kExitBusy = 4,        // another writer holds the repository
  kExitBadInput = 5,    // a bad image, name or value
  kExitReadOnly = 6,    // the repository is read-only
  kExitNoSpace = 7,     // the filesystem is full
  kExitNotNow = 8,      // schedule: outside the backup window
  kExitBehind = 9,      // status: a VM is behind its schedule, or a job seems stuck
};

int ExitCodeFor(const Status& s);

}  // namespace vmvault::tools

namespace vmvault::store {
class Repository;
enum class RepoMode;
struct RetentionPolicy;
}  // namespace vmvault::store

namespace vmvault::tools {

// Opens the repository at global.repo. A missing repository becomes
// FailedPrecondition (exit code kExitRepo) with a hint to run `vmvault init`.
Result<std::unique_ptr<store::Repository>> OpenRepo(const GlobalOptions& global,
                                                    store::RepoMode mode);

// A retention policy as its options name it: "keep-last 3, keep-daily 7, max-age 90d";
// "keep everything" when it removes nothing.
std::string DescribePolicy(const store::RetentionPolicy& p);

// The repository of a command that reads the configuration file: --repo (repo_option
// given), else $VMVAULT_REPO, else the file's `repository` when set, else global.repo.
GlobalOptions WithConfigRepo(const GlobalOptions& global, const CLI::Option* repo_option,
                             const std::string& config_repository);

// Declares --config PATH on `app`, into *path; `purpose` ("" or e.g. "Take the policy
// from") starts the help text.
CLI::Option* AddConfigOption(CLI::App& app, std::string* path, std::string_view purpose = "");

// The configuration file of a command that also runs without one (ingest, restore):
// read when --config (`flag`) or $VMVAULT_CONFIG names it, and then it must load;
// nullopt otherwise (the default file is not read). A loaded file's [log] applies
// (ConfigureLogging), and its repository (WithConfigRepo).
struct NamedConfig {
  std::optional<ingest::Config> config;
  GlobalOptions global;  // the options to run with
};
Result<NamedConfig> LoadNamedConfig(const GlobalOptions& global, const CLI::Option* repo_option,
                                    const std::string& flag);

// "4M", "256K", "65536" -> bytes. InvalidArgument on anything else.
Result<uint64_t> ParseSize(std::string_view text);
// A point in time for --since: "2026-11-01" (midnight UTC), "2026-11-21T033000Z", or an
// age before `now_us`: "7d", "12h", "2w".
Result<int64_t> ParseSince(std::string_view text, int64_t now_us);

}  // namespace vmvault::tools
