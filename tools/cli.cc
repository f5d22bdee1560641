#include "tools/cli.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/time_format.h"
#include "ingest/config.h"
#include "ingest/config_values.h"
#include "store/repository.h"
#include "store/retention.h"
#include "tools/logging.h"

namespace vmvault::tools {

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      InitCommand(),     IngestCommand(),      ListCommand(),     ShowBackupsCommand(),
      StatusCommand(),   MountCommand(),       RestoreCommand(),  VerifyCommand(),
      PruneCommand(),    GcCommand(),          ScrubCommand(),    ConfigCommand(),
      ScheduleCommand(), ShowQueueCommand(),   ArchiveCommand(),  ActivateCommand()};
  return commands;
}

std::string DefaultRepoPath() {
  if (const char* env = std::getenv("VMVAULT_REPO"); env != nullptr && *env != '\0') return env;
  if (::geteuid() == 0) return "/var/lib/vmvault";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/vmvault";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.local/share/vmvault";
  }
  return "vmvault-repo";
}

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kCorruption: return kExitRepo;  // a damaged repository
    case StatusCode::kBusy: return kExitBusy;
    case StatusCode::kNotFound:
    case StatusCode::kInvalidArgument:
    case StatusCode::kUnsupported: return kExitBadInput;
    case StatusCode::kReadOnly: return kExitReadOnly;
    case StatusCode::kNoSpace: return kExitNoSpace;
    case StatusCode::kNotNow: return kExitNotNow;
    case StatusCode::kBehind: return kExitBehind;
    default: return kExitError;
  }
}


Result<std::unique_ptr<store::Repository>> OpenRepo(const GlobalOptions& global,
                                                    store::RepoMode mode) {
  auto repo = store::Repository::Open(global.repo, mode);
  if (!repo.ok() && repo.status().IsNotFound()) {
    return Status::FailedPrecondition(repo.status().message());
  }
  return repo;
}

Result<int64_t> ParseSince(std::string_view text, int64_t now_us) {
  if (auto t = ParseBackupTime(text)) return *t;
  if (text.size() == 10) {
    if (auto t = ParseBackupTime(std::string(text) + "T000000Z")) return *t;
  }
  if (text.size() >= 2) {
    const char unit = text.back();
    const int64_t per = unit == 'h' ? 3600 : unit == 'd' ? 86400 : unit == 'w' ? 7 * 86400 : 0;
    int64_t n = 0;
    const char* end = text.data() + text.size() - 1;
    auto [ptr, ec] = std::from_chars(text.data(), end, n);
    if (per != 0 && ec == std::errc() && ptr == end && n >= 0 && n < 100 * 365) {
      return now_us - n * per * 1'000'000;
    }
  }
  return Status::InvalidArgument(fmt::format(
      "'{}' is not a time (try 2026-11-01, 2026-11-21T033000Z, 7d or 12h)", text));
}

std::string DescribePolicy(const store::RetentionPolicy& p) {
  if (p.KeepsEverything()) return "keep everything";
  std::vector<std::string> parts;
  const std::pair<const char*, int> keeps[] = {
      {"keep-last", p.keep_last},       {"keep-hourly", p.keep_hourly},
      {"keep-daily", p.keep_daily},     {"keep-weekly", p.keep_weekly},
      {"keep-monthly", p.keep_monthly}, {"keep-yearly", p.keep_yearly}};
  for (const auto& [name, n] : keeps) {
    if (n > 0) parts.push_back(fmt::format("{} {}", name, n));
  }
  if (p.max_count) parts.push_back(fmt::format("max-count {}", *p.max_count));
  if (p.max_age) parts.push_back(fmt::format("max-age {}", ingest::FormatDuration(*p.max_age)));
  return fmt::format("{}", fmt::join(parts, ", "));
}

GlobalOptions WithConfigRepo(const GlobalOptions& global, const CLI::Option* repo_option,
                             const std::string& config_repository) {
  GlobalOptions g = global;
  const char* env = std::getenv("VMVAULT_REPO");
  if (repo_option != nullptr && repo_option->count() == 0 && (env == nullptr || *env == '\0') &&
      !config_repository.empty()) {
    g.repo = config_repository;
  }
  return g;
}

CLI::Option* AddConfigOption(CLI::App& app, std::string* path, std::string_view purpose) {
  const std::string what = purpose.empty() ? "The configuration file"
                                           : fmt::format("{} this configuration file", purpose);
  return app.add_option("--config", *path,
                        what + " (default: $VMVAULT_CONFIG, else /etc/vmvault/config.toml)");
}

Result<NamedConfig> LoadNamedConfig(const GlobalOptions& global, const CLI::Option* repo_option,
                                    const std::string& flag) {
  const ingest::ConfigPath where = ingest::ResolveConfigPath(flag);
  if (where.origin == ingest::ConfigPath::Origin::kDefault) return NamedConfig{{}, global};
  VV_ASSIGN_OR_RETURN(ingest::Config config, ingest::LoadConfig(where.path));
  VV_RETURN_IF_ERROR(ConfigureLogging(global, &config.log));
  GlobalOptions g = WithConfigRepo(global, repo_option, config.repository);
  return NamedConfig{std::move(config), std::move(g)};
}

Result<uint64_t> ParseSize(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr == text.data()) {
    return Status::InvalidArgument(fmt::format("'{}' is not a size (try 1M or 262144)", text));
  }
  std::string_view suffix(ptr, static_cast<size_t>(end - ptr));
  uint64_t mult = 1;
  if (suffix == "" || suffix == "B") mult = 1;
  else if (suffix == "K" || suffix == "KiB" || suffix == "k") mult = 1ull << 10;
  else if (suffix == "M" || suffix == "MiB") mult = 1ull << 20;
  else if (suffix == "G" || suffix == "GiB") mult = 1ull << 30;
  else return Status::InvalidArgument(fmt::format("'{}' has an unknown size suffix", text));
  if (value > UINT64_MAX / mult) {
    return Status::InvalidArgument(fmt::format("'{}' is too large", text));
  }
  return value * mult;
}

}  // namespace vmvault::tools
