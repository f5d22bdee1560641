// vmvault schedule, show-queue, archive and activate: the scheduled backups that cron
// runs (ingest/schedule.h decides, store/vm_state.h keeps each VM's state), and moving
// a VM out of the schedule and back.
//
// Jobs run one at a time in this process, whatever [schedule] concurrency says: the
// ingest functions are documented as not to be called concurrently on one repository
// (BackupBuilder is one writer's; file_ingest.h), and each one already reads with a
// worker per core. So running VMs also go one at a time.
#include <unistd.h>

#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/names.h"
#include "base/progress.h"
#include "base/time_format.h"
#include "ingest/command_runner.h"
#include "ingest/config.h"
#include "ingest/file_ingest.h"
#include "ingest/schedule.h"
#include "store/repository.h"
#include "store/vm_state.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

using nlohmann::json;
using StateMap = std::map<std::string, store::VmStateRecord, std::less<>>;

struct ScheduleArgs {
  std::string config;
  bool dry_run = false;
  bool json = false;
  std::vector<std::string> vms;  // archive, activate
  CLI::Option* repo_option = nullptr;
};

struct Loaded {
  ingest::Config config;
  std::string path;
};

Result<Loaded> Load(const ScheduleArgs& a) {
  Loaded l;
  l.path = ingest::ResolveConfigPath(a.config).path;
  VV_ASSIGN_OR_RETURN(l.config, ingest::LoadConfig(l.path));
  return l;
}

// --repo, else $VMVAULT_REPO, else the configuration file's repository, else the default.
GlobalOptions WithRepo(const GlobalOptions& global, const ScheduleArgs& a,
                       const ingest::Config& config) {
  GlobalOptions g = global;
  const char* env = std::getenv("VMVAULT_REPO");
  if (a.repo_option != nullptr && a.repo_option->count() == 0 &&
      (env == nullptr || *env == '\0') && !config.repository.empty()) {
    g.repo = config.repository;
  }
  return g;
}

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

json QueueJson(const std::vector<ingest::QueueEntry>& queue, const ingest::Config& config) {
  json out = json::array();
  size_t position = 0;
  for (const ingest::QueueEntry& e : queue) {
    const ingest::SourceConfig& s = config.sources[e.source];
    out.push_back({{"vm", e.vm},
                   {"position", e.due ? json(++position) : json(nullptr)},
                   {"due", e.due},
                   {"state", store::VmStateName(e.state)},
                   {"reason", e.reason},
                   {"kind", ingest::SourceKindName(s.kind)},
                   {"tier", s.tier},
                   {"line", s.where.line},
                   {"last_backup", e.last_backup_us ? json(FormatIsoTime(*e.last_backup_us))
                                                    : json(nullptr)}});
  }
  return out;
}

std::string QueueText(const std::vector<ingest::QueueEntry>& queue,
                      const ingest::Config& config) {
  std::string out;
  size_t position = 0;
  for (const ingest::QueueEntry& e : queue) {
    const ingest::SourceConfig& s = config.sources[e.source];
    const std::string name =
        e.vm.empty() ? fmt::format("({} source, line {})", ingest::SourceKindName(s.kind),
                                   s.where.line)
                     : Printable(e.vm);
    out += fmt::format("{:>3}  {:<24} {:<18} {}\n",
                       e.due ? std::to_string(++position) : std::string("-"), name,
                       store::VmStateName(e.state), e.reason);
  }
  return out;
}

Result<std::vector<ingest::QueueEntry>> Queue(store::Repository& repo,
                                              const ingest::Config& config, int64_t now) {
  VV_ASSIGN_OR_RETURN(const StateMap states, store::ListVmStates(repo.kv()));
  return ingest::BuildQueue(config, repo.catalog(), states, now, ingest::StampOf);
}

// The state each queued VM is in now, where that differs from its record (archived and
// in-progress ones stay as they are).
StateMap Decided(const std::vector<ingest::QueueEntry>& queue, const StateMap& states,
                 int64_t now) {
  StateMap out;
  for (const ingest::QueueEntry& e : queue) {
    if (e.vm.empty() || e.state == store::VmState::kArchived ||
        e.state == store::VmState::kBackupInProgress) {
      continue;
    }
    auto it = states.find(e.vm);
    if (it != states.end() && it->second.state == e.state) continue;
    store::VmStateRecord r;
    r.state = e.state;
    r.since_us = now;
    r.note = e.reason;
    out.emplace(e.vm, std::move(r));
  }
  return out;
}

// One backup of a file or device source (ingest::ScheduleSupports).
Status RunJob(store::Repository& repo, const ingest::SourceConfig& s, const std::string& vm,
              bool progress) {
  ingest::FileIngestOptions opts;
  opts.files = s.paths;
  opts.vm = vm;
  opts.tier = s.tier;
  opts.progress = progress;
  if (s.kind == ingest::SourceKind::kDevice) opts.formats.assign(s.paths.size(), "raw");
  ingest::RealCommandRunner runner;
  return ingest::IngestImageFiles(repo, opts, runner, SystemClock::Default()).status();
}

Status RunSchedule(const GlobalOptions& global, const ScheduleArgs& a) {
  VV_ASSIGN_OR_RETURN(const Loaded l, Load(a));
  const ingest::Config& config = l.config;
  const Clock& clock = SystemClock::Default();
  const ingest::WindowCheck window = ingest::CheckWindow(config.schedule.window, clock.NowMicros());
  if (!window.open) {
    return Status::NotNow(ingest::WindowClosedMessage(*config.schedule.window, window) +
                          "; no backup started");
  }
  const GlobalOptions g = WithRepo(global, a, config);
  if (a.dry_run) {
    VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(g, store::RepoMode::kReadOnly));
    VV_ASSIGN_OR_RETURN(auto queue, Queue(*repo, config, clock.NowMicros()));
    fmt::print("{}", QueueText(queue, config));
    return Status::OK();
  }
  auto opened = OpenRepo(g, store::RepoMode::kWrite);
  if (!opened.ok() && opened.status().code() == StatusCode::kBusy) {
    return Status::Busy(fmt::format(
        "repository {} is busy: another vmvault schedule (or ingest, prune, gc) is writing to "
        "it; this schedule started nothing",
        Printable(g.repo)));
  }
  VV_ASSIGN_OR_RETURN(auto repo, std::move(opened));
  store::KvEngine& kv = repo->kv();
  // We hold the writer lock, so no other scheduler runs: every BACKUP_IN_PROGRESS left
  // behind is from a process that died.
  VV_ASSIGN_OR_RETURN(const std::vector<std::string> recovered,
                      store::RecoverInterrupted(kv, /*lock_held=*/true, clock.NowMicros()));
  for (const std::string& vm : recovered) {
    spdlog::warn("VM {}: its last backup was interrupted; it is due again", Printable(vm));
  }
  VV_ASSIGN_OR_RETURN(StateMap states, store::ListVmStates(kv));
  VV_ASSIGN_OR_RETURN(const std::vector<ingest::QueueEntry> queue,
                      ingest::BuildQueue(config, repo->catalog(), states, clock.NowMicros(),
                                         ingest::StampOf));
  VV_RETURN_IF_ERROR(store::PutVmStates(kv, Decided(queue, states, clock.NowMicros())));

  const bool progress = !global.quiet && Progress::StderrIsTerminal();
  const std::string host = Hostname();
  const int64_t pid = ::getpid();
  const uint64_t pid_start = store::ProcessStartTime(pid).value_or(0);
  size_t done = 0, left = 0;
  std::vector<std::string> failures;
  Status first_failure;
  for (const ingest::QueueEntry& e : queue) {
    if (!e.due) continue;
    // When the window closes, the job running finishes and no new one starts.
    if (left > 0 || !ingest::CheckWindow(config.schedule.window, clock.NowMicros()).open) {
      ++left;
      continue;
    }
    const ingest::SourceConfig& s = config.sources[e.source];
    spdlog::info("VM {}: backing up ({})", Printable(e.vm), e.reason);
    store::VmStateRecord r{store::VmState::kBackupInProgress, clock.NowMicros(), pid,
                           pid_start, host, e.reason};
    VV_RETURN_IF_ERROR(store::PutVmStates(kv, {{e.vm, r}}));
    const Status s_job = RunJob(*repo, s, e.vm, progress);
    r.pid = 0;
    r.pid_start = 0;
    r.since_us = clock.NowMicros();
    if (s_job.ok()) {
      r.state = store::VmState::kClean;
      r.note = "backed up by vmvault schedule";
      ++done;
    } else {
      r.state = store::VmState::kBackupNecessary;
      r.note = "last attempt failed: " + s_job.message();
      failures.push_back(fmt::format("VM {}: {}", Printable(e.vm), s_job.ToString()));
      spdlog::warn("{}", failures.back());
      if (first_failure.ok()) first_failure = s_job;
    }
    VV_RETURN_IF_ERROR(store::PutVmStates(kv, {{e.vm, r}}));
  }
  if (left > 0) {
    spdlog::warn("the backup window {} closed; {} due VM{} left for its next opening",
                 config.schedule.window->ToString(), left, left == 1 ? "" : "s");
  }
  spdlog::info("schedule: {} backed up, {} failed, {} left", done, failures.size(), left);
  if (!failures.empty()) {
    std::string msg = fmt::format("{} of {} backups failed", failures.size(),
                                  done + failures.size());
    for (const std::string& f : failures) msg += "\n  " + f;
    return Status(first_failure.code() == StatusCode::kBusy ? StatusCode::kIOError
                                                            : first_failure.code(),
                  msg);
  }
  return Status::OK();
}

Status RunShowQueue(const GlobalOptions& global, const ScheduleArgs& a) {
  VV_ASSIGN_OR_RETURN(const Loaded l, Load(a));
  VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(WithRepo(global, a, l.config), store::RepoMode::kReadOnly));
  const int64_t now = SystemClock::Default().NowMicros();
  VV_ASSIGN_OR_RETURN(auto queue, Queue(*repo, l.config, now));
  const ingest::WindowCheck w = ingest::CheckWindow(l.config.schedule.window, now);
  if (a.json) {
    fmt::print("{}\n", json{{"window", l.config.schedule.window
                                           ? json(l.config.schedule.window->ToString())
                                           : json(nullptr)},
                            {"window_open", w.open},
                            {"vms", QueueJson(queue, l.config)}}
                           .dump(2, ' ', false, json::error_handler_t::replace));
    return Status::OK();
  }
  if (!w.open) fmt::print("{}\n", ingest::WindowClosedMessage(*l.config.schedule.window, w));
  fmt::print("{}", QueueText(queue, l.config));
  return Status::OK();
}

// archive (to = ARCHIVED) or activate (to = NEW, which the next schedule decides again).
Status RunSetArchived(const GlobalOptions& global, const ScheduleArgs& a, bool archive) {
  // The configuration file is optional here: it only names VMs not backed up yet.
  std::optional<ingest::Config> config;
  if (Result<Loaded> l = Load(a); l.ok()) {
    config = std::move(l->config);
  } else if (!l.status().IsNotFound() || !a.config.empty()) {
    return l.status();
  }
  VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(config ? WithRepo(global, a, *config) : global,
                                          store::RepoMode::kWrite));
  StateMap changed;
  const int64_t now = SystemClock::Default().NowMicros();
  for (const std::string& vm : a.vms) {
    bool known = repo->catalog().GetVm(vm).ok();
    for (size_t i = 0; config && !known && i < config->sources.size(); ++i) {
      Result<std::string> name = ingest::SourceVmName(config->sources[i]);
      known = name.ok() && *name == vm;
    }
    VV_ASSIGN_OR_RETURN(std::optional<store::VmStateRecord> rec, store::GetVmState(repo->kv(), vm));
    if (!known && !rec) {
      return Status::NotFound(fmt::format(
          "no VM named '{}' in the repository or the configuration file", Printable(vm)));
    }
    const bool archived = rec && rec->state == store::VmState::kArchived;
    if (archived == archive) {
      spdlog::info("VM {} is {} already", Printable(vm), archive ? "archived" : "active");
      continue;
    }
    store::VmStateRecord r;
    r.state = archive ? store::VmState::kArchived : store::VmState::kNew;
    r.since_us = now;
    r.note = archive ? "archived by vmvault archive" : "activated by vmvault activate";
    changed.emplace(vm, std::move(r));
  }
  return store::PutVmStates(repo->kv(), changed);
}

void AddConfigOption(CLI::App& app, ScheduleArgs& a) {
  tools::AddConfigOption(app, &a.config);
  a.repo_option = app.get_option_no_throw("--repo");
}

}  // namespace

Command ScheduleCommand() {
  return {"schedule",
          "Back up the configured VMs that are due, inside the backup window (what cron runs)",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<ScheduleArgs>();
            AddConfigOption(app, *a);
            app.add_flag("--dry-run,-n", a->dry_run,
                         "Only print the queue; take no lock and back nothing up");
            return [&global, a]() -> Status { return RunSchedule(global, *a); };
          }};
}

Command ShowQueueCommand() {
  return {"show-queue", "Print the order the next schedule backs VMs up in, and why",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<ScheduleArgs>();
            AddConfigOption(app, *a);
            app.add_flag("--json", a->json, "Print the queue as JSON");
            return [&global, a]() -> Status { return RunShowQueue(global, *a); };
          }};
}

Command ArchiveCommand() {
  return {"archive", "Take VMs out of the schedule (their backups stay)",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<ScheduleArgs>();
            AddConfigOption(app, *a);
            app.add_option("VM", a->vms, "The VMs")->required();
            return [&global, a]() -> Status { return RunSetArchived(global, *a, true); };
          }};
}

Command ActivateCommand() {
  return {"activate", "Put archived VMs back into the schedule",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<ScheduleArgs>();
            AddConfigOption(app, *a);
            app.add_option("VM", a->vms, "The VMs")->required();
            return [&global, a]() -> Status { return RunSetArchived(global, *a, false); };
          }};
}

}  // namespace vmvault::tools
