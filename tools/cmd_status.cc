// vmvault status: one look for monitoring. The repository (format, chunk size, size on
// disk, what gc would free), and per VM its tier, schedule state (store/vm_state.h),
// last backup and its age, whether it is behind its tier's interval plus the alert
// tolerance ([tiers], [alerts] of the configuration file, else their defaults), the
// verifications `vmvault verify` recorded, and its sizes (store/sizes.h).
//
// The exit code says what needs a person: kExitRepo when a verification found damage
// (or a referenced chunk is missing), else kExitBehind when a VM is behind its schedule
// or a backup has run for longer than [alerts] stuck_after, else 0.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/clock.h"
#include "base/names.h"
#include "base/progress.h"
#include "base/time_format.h"
#include "ingest/config.h"
#include "store/gc.h"
#include "store/repository.h"
#include "store/vm_state.h"
#include "tools/cli.h"
#include "tools/inventory.h"
#include "tools/output.h"

namespace vmvault::tools {
namespace {

using nlohmann::json;

struct StatusArgs {
  std::string config;
  OutputOptions output;
  CLI::Option* repo_option = nullptr;
};

// The configuration: --config or $VMVAULT_CONFIG must load; the default file is used
// when it exists, else the built-in defaults. `path` is "" for the defaults.
Result<ingest::Config> LoadOptionalConfig(const std::string& flag, std::string* path) {
  const ingest::ConfigPath where = ingest::ResolveConfigPath(flag);
  Result<ingest::Config> config = ingest::LoadConfig(where.path);
  if (config.ok()) {
    *path = where.path;
    return config;
  }
  if (config.status().IsNotFound() && where.origin == ingest::ConfigPath::Origin::kDefault) {
    path->clear();
    return ingest::Config();
  }
  return config.status();
}

std::string Age(int64_t micros) {
  const int64_t minutes = std::max<int64_t>(micros, 0) / 60'000'000;
  return minutes == 0 ? "<1m" : ingest::FormatDuration(ingest::Seconds(minutes * 60));
}

// One VM as status sees it.
struct VmStatus {
  std::string name;
  std::string tier;
  store::VmState state = store::VmState::kNew;
  std::optional<store::VmStateRecord> record;  // nullopt: the schedule never saw it
  bool pid_alive = false;
  size_t backups = 0;
  std::optional<int64_t> last_backup_us;
  int64_t age_us = 0;     // of the last backup, else of the state record
  bool measured = false;  // age_us means something
  ingest::Seconds interval{0};
  bool behind = false;
  bool stuck = false;
  std::optional<int64_t> last_verify_us;
  std::vector<std::string> damaged;  // backups whose last verification failed
  size_t unverified = 0;
  const store::UsageSizes* sizes = nullptr;
};

std::vector<VmStatus> Judge(const Inventory& inv, store::Repository& repo,
                            const ingest::Config& config, int64_t now,
                            std::vector<std::string>* problems) {
  auto states = store::ListVmStates(repo.kv());
  if (!states.ok()) {
    problems->push_back("the schedule's states do not read: " + states.status().ToString());
  }
  std::map<std::string, VmStatus, std::less<>> out;
  for (const VmEntry& e : inv.vms) {
    VmStatus& s = out[e.vm.name];
    s.name = e.vm.name;
    s.tier = e.vm.tier;
    s.backups = e.backups.size();
    s.sizes = e.sizes;
    s.state = store::VmState::kClean;
    if (!e.backups.empty()) s.last_backup_us = e.backups.back().backup.time_us;
    for (const BackupEntry& b : e.backups) {
      if (!b.verified.ok()) {
        problems->push_back(fmt::format("{}/{}: {}", Printable(s.name), b.backup.name(),
                                        b.verified.status().ToString()));
        continue;
      }
      const std::optional<store::VerifyRecord>& v = *b.verified;
      if (!v) {
        ++s.unverified;
        continue;
      }
      s.last_verify_us = std::max(s.last_verify_us.value_or(v->time_us), v->time_us);
      if (!v->ok) s.damaged.push_back(b.backup.name());
    }
  }
  if (states.ok()) {
    for (const auto& [name, rec] : *states) {
      VmStatus& s = out[name];
      s.name = name;
      s.record = rec;
      s.state = rec.state;
      if (rec.state == store::VmState::kBackupInProgress) {
        s.pid_alive = store::ProcessAlive(rec.pid, rec.pid_start);
      }
    }
  }
  std::vector<VmStatus> list;
  for (auto& [name, s] : out) {
    if (s.tier.empty()) s.tier = "warm";
    if (config.tiers.count(s.tier) != 0) s.interval = config.Tier(s.tier).interval;
    if (s.last_backup_us) {
      s.age_us = now - *s.last_backup_us;
      s.measured = true;
    } else if (s.record && s.record->since_us != 0) {
      s.age_us = now - s.record->since_us;
      s.measured = true;
    }
    const bool scheduled = s.state != store::VmState::kArchived && s.interval.count() > 0;
    const ingest::Seconds allowed = s.interval + config.alerts.behind_tolerance;
    if (scheduled && s.measured && s.age_us > allowed.count() * 1'000'000) {
      s.behind = true;
      problems->push_back(fmt::format(
          "{} is behind its schedule: {} {} ago, the {} tier's interval is {} (+ {} tolerance)",
          Printable(name), s.last_backup_us ? "last backup" : "scheduled since", Age(s.age_us),
          s.tier, ingest::FormatDuration(s.interval),
          ingest::FormatDuration(config.alerts.behind_tolerance)));
    }
    if (s.state == store::VmState::kBackupInProgress && s.record &&
        now - s.record->since_us > config.alerts.stuck_after.count() * 1'000'000) {
      s.stuck = true;
      problems->push_back(fmt::format("the backup of {} has run for {} (pid {}{})", Printable(name),
                                      Age(now - s.record->since_us), s.record->pid,
                                      s.pid_alive ? "" : ", gone"));
    }
    if (!s.damaged.empty()) {
      problems->push_back(fmt::format(
          "{}: {} backup{} found damaged by vmvault verify: {}", Printable(name), s.damaged.size(),
          s.damaged.size() == 1 ? "" : "s", fmt::join(s.damaged, ", ")));
    }
    list.push_back(std::move(s));
  }
  return list;
}

json VmStatusJson(const VmStatus& s) {
  json j = {
      {"name", s.name},
      {"tier", s.tier},
      {"state", std::string(store::VmStateName(s.state))},
      {"state_since", s.record ? json(FormatIsoTime(s.record->since_us)) : json(nullptr)},
      {"state_note", s.record ? json(s.record->note) : json(nullptr)},
      {"pid", s.state == store::VmState::kBackupInProgress && s.record ? json(s.record->pid)
                                                                       : json(nullptr)},
      {"pid_alive",
       s.state == store::VmState::kBackupInProgress ? json(s.pid_alive) : json(nullptr)},
      {"backups", s.backups},
      {"last_backup", s.last_backup_us ? json(FormatIsoTime(*s.last_backup_us)) : json(nullptr)},
      {"age_s", s.measured ? json(s.age_us / 1'000'000) : json(nullptr)},
      {"interval_s", s.interval.count()},
      {"behind", s.behind},
      {"stuck", s.stuck},
      {"last_verify", s.last_verify_us ? json(FormatIsoTime(*s.last_verify_us)) : json(nullptr)},
      {"verify_ok", s.damaged.empty()},
      {"damaged_backups", s.damaged},
      {"unverified_backups", s.unverified}};
  j.update(SizesJson(s.sizes));
  return j;
}

std::string ScheduleText(const VmStatus& s) {
  if (s.stuck) return "STUCK";
  if (s.behind) return "BEHIND";
  return s.state == store::VmState::kArchived ? "-" : "ok";
}

std::string VerifyText(const VmStatus& s) {
  if (!s.damaged.empty()) return fmt::format("DAMAGED ({})", s.damaged.size());
  if (!s.last_verify_us) return "never";
  return "ok " + FormatIsoTime(*s.last_verify_us).substr(0, 10) +
         (s.unverified != 0 ? fmt::format(" ({} not yet)", s.unverified) : "");
}

Status RunStatus(const GlobalOptions& global, const StatusArgs& a) {
  std::string config_path;
  VV_ASSIGN_OR_RETURN(const ingest::Config config, LoadOptionalConfig(a.config, &config_path));
  const GlobalOptions g = WithConfigRepo(global, a.repo_option, config.repository);
  VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(g, store::RepoMode::kReadOnly));
  VV_ASSIGN_OR_RETURN(const Inventory inv,
                      ReadInventory(*repo, "", !global.quiet && Progress::StderrIsTerminal()));
  const int64_t now = SystemClock::Default().NowMicros();
  std::vector<std::string> problems;
  const std::vector<VmStatus> vms = Judge(inv, *repo, config, now, &problems);
  const uint64_t disk = store::DiskUsage(repo->path());
  const store::RepoSizes* rs = inv.sizes ? &inv.sizes->repo : nullptr;
  if (!inv.sizes_error.ok()) problems.push_back("sizes: " + inv.sizes_error.ToString());
  if (rs != nullptr && rs->missing_chunks != 0) {
    problems.push_back(fmt::format(
        "{} chunk{} that backups reference {} missing (run vmvault verify)", rs->missing_chunks,
        rs->missing_chunks == 1 ? "" : "s", rs->missing_chunks == 1 ? "is" : "are"));
  }
  const bool damaged =
      (rs != nullptr && rs->missing_chunks != 0) ||
      std::any_of(vms.begin(), vms.end(), [](const VmStatus& s) { return !s.damaged.empty(); });
  const bool late =
      std::any_of(vms.begin(), vms.end(), [](const VmStatus& s) { return s.behind || s.stuck; });

  const auto opt = [&](uint64_t v) { return rs != nullptr ? json(v) : json(nullptr); };
  if (a.output.machine()) {
    json jvms = json::array();
    for (const VmStatus& s : vms) jvms.push_back(VmStatusJson(s));
    json doc = {{"ok", problems.empty()},
                {"problems", problems},
                {"config", config_path.empty() ? json(nullptr) : json(config_path)},
                {"repository",
                 {{"path", repo->path()},
                  {"format_version", repo->config().format_version},
                  {"chunk_size", repo->config().chunk_size},
                  {"disk_bytes", disk},
                  {"chunks", opt(rs ? rs->chunks : 0)},
                  {"stored_bytes", opt(rs ? rs->stored : 0)},
                  {"referenced_bytes", opt(rs ? rs->referenced : 0)},
                  {"unreferenced_bytes", opt(rs ? rs->unreferenced : 0)},
                  {"missing_chunks", opt(rs ? rs->missing_chunks : 0)}}},
                {"vms", std::move(jvms)}};
    VV_RETURN_IF_ERROR(PrintDocument(doc, a.output));
  } else {
    const bool h = a.output.human;
    std::string text = fmt::format("Repository {}: format {}, chunk size {}, {} on disk",
                                   Printable(repo->path()), repo->config().format_version,
                                   Bytes(repo->config().chunk_size, h), Bytes(disk, h));
    if (rs != nullptr) {
      text += fmt::format(", {} stored in {} chunks, {} unreferenced (vmvault gc frees it)",
                          Bytes(rs->stored, h), rs->chunks, Bytes(rs->unreferenced, h));
    }
    text += "\n";
    if (vms.empty()) {
      text += "No VMs yet.\n";
    } else {
      std::vector<std::vector<std::string>> rows = {{"VM", "TIER", "STATE", "LAST BACKUP", "AGE",
                                                     "SCHEDULE", "VERIFIED", "LOGICAL", "STORED",
                                                     "UNIQUE"}};
      for (const VmStatus& s : vms) {
        rows.push_back({Printable(s.name), s.tier, std::string(store::VmStateName(s.state)),
                        s.last_backup_us ? FormatIsoTime(*s.last_backup_us) : "never",
                        s.measured ? Age(s.age_us) : "-", ScheduleText(s), VerifyText(s),
                        s.sizes ? Bytes(s.sizes->logical, h) : "?",
                        s.sizes ? Bytes(s.sizes->stored, h) : "?",
                        s.sizes ? Bytes(s.sizes->unique, h) : "?"});
      }
      text += Table(rows);
    }
    for (const std::string& p : problems) text += "! " + p + "\n";
    fmt::print("{}", text);
  }

  if (damaged) {
    return Status::Corruption("damage found: some backups cannot be fully restored (see above)");
  }
  if (!inv.sizes_error.ok()) return inv.sizes_error;
  if (late)
    return Status::Behind("a VM is behind its schedule or a backup seems stuck (see above)");
  return Status::OK();
}

}  // namespace

Command StatusCommand() {
  return {"status",
          "Show the repository, each VM's schedule state, last backup, verification "
          "and sizes; the exit code says whether anything needs attention",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<StatusArgs>();
            a->repo_option = app.get_option("--repo");
            AddConfigOption(app, &a->config, "Take the tiers' intervals and the alert limits from");
            AddOutputOptions(app, &a->output);
            return [&global, a] { return RunStatus(global, *a); };
          }};
}

}  // namespace vmvault::tools
