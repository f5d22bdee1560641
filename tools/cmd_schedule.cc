// vmvault schedule, show-queue, archive and activate: the scheduled backups that cron
// runs (ingest/schedule.h decides, ingest/schedule_run.h runs the jobs,
// store/vm_state.h keeps each VM's state and when alerts were sent), and moving a VM
// out of the schedule and back.
//
// Around the run: the pre- and post-schedule hooks; around each job (on its own
// thread, at the configured nice and ionice): the VM's state, the pre- and post-backup
// hooks, and a failure alert when it fails. While jobs run, stuck alerts; after them,
// alerts for VMs behind schedule. Alerts with a key are not repeated within a day.
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
#include "ingest/backup_builder.h"
#include "ingest/command_runner.h"
#include "ingest/config.h"
#include "base/thread_pool.h"
#include "ingest/alerts.h"
#include "ingest/domain_ingest.h"
#include "ingest/file_ingest.h"
#include "ingest/hooks.h"
#include "ingest/lvm.h"
#include "ingest/image_source.h"
#include "ingest/priority.h"
#include "ingest/schedule.h"
#include "ingest/schedule_run.h"
#include "ingest/vbox_ingest.h"
#include "store/repository.h"
#include "store/vm_state.h"
#include "tools/cli.h"
#include "tools/logging.h"

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
  return WithConfigRepo(global, a.repo_option, config.repository);
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
  ingest::RealCommandRunner runner;
  return ingest::BuildQueue(config, repo.catalog(), states, now, ingest::StampOf,
                            ingest::FindSourceVms(config, runner));
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
    r.seen_us = it != states.end() && it->second.seen_us != 0 ? it->second.seen_us : now;
    out.emplace(e.vm, std::move(r));
  }
  return out;
}

// "/dev/vg0/web01" -> "vg0/web01"; the path as given otherwise (lvm.h refuses it).
std::string LvmVolume(const std::string& path) {
  return path.starts_with("/dev/") ? path.substr(5) : path;
}

// lvcreate's copy-on-write space for a source's snapshot-size: "10%" -> "10%ORIGIN".
std::string SnapshotSpace(const std::string& size) {
  return size.ends_with('%') ? size + "ORIGIN" : size;
}

// One backup of entry `e`, through the function `vmvault ingest` uses for its kind.
Result<store::BackupRecord> BackupEntry(store::Repository& repo, const ingest::SourceConfig& s,
                                        const ingest::QueueEntry& e,
                                        const ingest::IngestHooks& hooks,
                                        size_t threads, bool progress,
                                        std::optional<store::BackupRecord>* kept) {
  ingest::RealCommandRunner runner;
  const Clock& clock = SystemClock::Default();
  std::vector<store::BackupRecord> kept_despite;  // committed, then the run failed
  auto one = [&](Result<std::vector<store::BackupRecord>> r) -> Result<store::BackupRecord> {
    if (!r.ok() && !kept_despite.empty()) *kept = kept_despite.back();
    VV_RETURN_IF_ERROR(r.status());
    if (r->empty()) return Status::IOError("the ingest returned no backup");
    return std::move(r->back());
  };
  switch (s.kind) {
    case ingest::SourceKind::kFile:
    case ingest::SourceKind::kDevice: {
      ingest::FileIngestOptions opts;
      opts.files = s.paths;
      opts.vm = e.vm;
      opts.tier = s.tier;
      opts.threads = threads;
      opts.progress = progress;
      if (s.kind == ingest::SourceKind::kDevice) opts.formats.assign(s.paths.size(), "raw");
      return ingest::IngestImageFiles(repo, opts, runner, clock);
    }
    case ingest::SourceKind::kLvm: {
      if (s.paths.size() != 1) {
        return Status::Unsupported(fmt::format(
            "the lvm source of VM {} names {} volumes; the schedule backs up one volume per "
            "lvm source: give each volume a source (and VM) of its own",
            Printable(e.vm), s.paths.size()));
      }
      ingest::LvmIngestOptions opts;
      opts.volume = LvmVolume(s.paths.front());
      opts.vm = e.vm;
      opts.tier = s.tier;
      opts.snapshot_extents = SnapshotSpace(s.snapshot_size);
      opts.threads = threads;
      opts.progress = progress;
      ingest::SourceOpener opener;
      return ingest::IngestLvmVolume(repo, opts, runner, clock, opener);
    }
    case ingest::SourceKind::kDomain: {
      ingest::DomainIngestOptions opts;
      opts.uri = s.connect;
      opts.domains = {e.name};
      if (!s.method.empty()) opts.method = s.method;
      opts.tier = s.tier;
      opts.hooks = hooks;
      opts.kept = &kept_despite;
      opts.threads = threads;
      opts.progress = progress;
      return one(ingest::IngestDomains(repo, opts, runner, clock));
    }
    case ingest::SourceKind::kVirtualBox: {
      ingest::VboxIngestOptions opts;
      opts.path = s.path;
      opts.machines = {e.name};
      opts.tier = s.tier;
      opts.hooks = hooks;
      opts.kept = &kept_despite;
      opts.threads = threads;
      opts.progress = progress;
      return one(ingest::IngestVirtualBox(repo, opts, runner, clock));
    }
  }
  return Status::InvalidArgument("unknown source kind");
}

// Sends `alert` (when [alerts] wants its kind) and, for a keyed alert, records when.
// Failing to send is logged, never fatal: the run's own result matters more.
void Send(store::KvEngine& kv, const ingest::AlertsConfig& config, const ingest::Alert& alert) {
  if (!ingest::AlertWanted(config, alert.kind)) return;
  const Status sent = ingest::SendAlert(config, alert);
  if (!sent.ok()) {
    spdlog::error("cannot send the alert \"{}\" to {}: {}", alert.subject,
                  ingest::AlertTransport(config), sent.ToString());
    return;
  }
  spdlog::info("alert sent: {}", alert.subject);
  if (alert.key.empty()) return;
  const Status recorded = store::PutAlertSent(
      kv, alert.key, {SystemClock::Default().NowMicros(), alert.subject});
  if (!recorded.ok()) spdlog::warn("cannot record the alert sent: {}", recorded.ToString());
}

// Everything one job does, on its own thread.
class Job {
 public:
  Job(store::Repository& repo, const ingest::Config& config, const GlobalOptions& g,
      size_t threads, bool progress, const StateMap& states)
      : repo_(repo), config_(config), g_(g), threads_(threads), progress_(progress),
        states_(states), host_(Hostname()), pid_(::getpid()),
        pid_start_(store::ProcessStartTime(pid_).value_or(0)) {}

  Status Run(const ingest::QueueEntry& e) {
    const Clock& clock = SystemClock::Default();
    if (Status p = ingest::ApplyPriority(config_.nice, config_.ionice); !p.ok()) {
      spdlog::warn("VM {}: {}", Printable(e.vm), p.ToString());
    }
    const ingest::SourceConfig& s = config_.sources[e.source];
    spdlog::info("VM {}: backing up ({})", Printable(e.vm), e.reason);
    auto it = states_.find(e.vm);
    const int64_t seen = it != states_.end() && it->second.seen_us != 0 ? it->second.seen_us
                                                                         : clock.NowMicros();
    store::VmStateRecord r{store::VmState::kBackupInProgress, clock.NowMicros(), pid_,
                           pid_start_, host_, e.reason, seen};
    VV_RETURN_IF_ERROR(store::PutVmStates(repo_.kv(), {{e.vm, r}}));

    std::optional<store::BackupRecord> backup;
    // The backup hooks run here, around the job; the ingest runs the snapshot hooks.
    const ingest::IngestHooks hooks{&config_.hooks, g_.repo};
    Status status = ingest::BackupBetweenHooks(
        repo_, hooks, e.vm, s.tier,
        [&](auto* kept) { return BackupEntry(repo_, s, e, hooks, threads_, progress_, kept); },
        &backup);

    r.pid = 0;
    r.pid_start = 0;
    r.since_us = clock.NowMicros();
    if (backup) {  // also when a hook failed after the backup was committed
      r.state = store::VmState::kClean;
      r.note = status.ok() ? "backed up by vmvault schedule"
                           : "backed up by vmvault schedule, then: " + status.message();
      spdlog::info("VM {}: backed up as {}", Printable(e.vm), backup->name());
    } else {
      r.state = store::VmState::kBackupNecessary;
      r.note = "last attempt failed: " + status.message();
    }
    VV_RETURN_IF_ERROR(store::PutVmStates(repo_.kv(), {{e.vm, r}}));
    if (!status.ok()) {
      Send(repo_.kv(), config_.alerts,
           ingest::FailureAlert(fmt::format("backup of VM {}", e.vm), status));
    }
    return status;
  }

 private:
  store::Repository& repo_;
  const ingest::Config& config_;
  const GlobalOptions& g_;
  const size_t threads_;
  const bool progress_;
  const StateMap& states_;
  const std::string host_;
  const int64_t pid_;
  const uint64_t pid_start_;
};

// The VMs the schedule keeps backed up, as DueAlerts wants them.
Result<std::vector<ingest::VmBackupState>> BehindCandidates(
    store::Repository& repo, const ingest::Config& config,
    const std::vector<ingest::QueueEntry>& queue, const StateMap& states, int64_t now) {
  std::vector<ingest::VmBackupState> out;
  for (const ingest::QueueEntry& e : queue) {
    const ingest::SourceConfig& s = config.sources[e.source];
    if (e.vm.empty() || e.state == store::VmState::kArchived || !s.enabled ||
        !config.Scheduled(s)) {
      continue;
    }
    ingest::VmBackupState v{e.vm, s.tier, config.Tier(s.tier).interval, std::nullopt, now};
    VV_ASSIGN_OR_RETURN(const std::vector<store::BackupRecord> backups,
                        repo.catalog().ListBackups(e.vm));
    if (!backups.empty()) v.last_backup_us = backups.back().time_us;
    if (auto it = states.find(e.vm); it != states.end() && it->second.seen_us != 0) {
      v.scheduled_since_us = it->second.seen_us;
    }
    out.push_back(std::move(v));
  }
  return out;
}

Status RunSchedule(const GlobalOptions& global, const ScheduleArgs& a) {
  VV_ASSIGN_OR_RETURN(const Loaded l, Load(a));
  VV_RETURN_IF_ERROR(ConfigureLogging(global, &l.config.log));
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
  const ingest::HookValues schedule_values{{"Repository", g.repo}};
  if (Status pre = ingest::RunHooks(config.hooks, ingest::HookEvent::kPreSchedule,
                                    schedule_values);
      !pre.ok()) {
    pre = pre.WithContext("no backup started");
    Send(kv, config.alerts, ingest::FailureAlert("scheduled run", pre));
    return pre;
  }
  Status result = [&]() -> Status {
    // We hold the writer lock, so no other scheduler runs: every BACKUP_IN_PROGRESS left
    // behind is from a process that died.
    VV_ASSIGN_OR_RETURN(const std::vector<std::string> recovered,
                        store::RecoverInterrupted(kv, /*lock_held=*/true, clock.NowMicros()));
    for (const std::string& vm : recovered) {
      spdlog::warn("VM {}: its last backup was interrupted; it is due again", Printable(vm));
    }
    VV_ASSIGN_OR_RETURN(StateMap states, store::ListVmStates(kv));
    ingest::RealCommandRunner runner;
    VV_ASSIGN_OR_RETURN(const std::vector<ingest::QueueEntry> queue,
                        ingest::BuildQueue(config, repo->catalog(), states, clock.NowMicros(),
                                           ingest::StampOf,
                                           ingest::FindSourceVms(config, runner)));
    const StateMap decided = Decided(queue, states, clock.NowMicros());
    VV_RETURN_IF_ERROR(store::PutVmStates(kv, decided));
    for (const auto& [vm, rec] : decided) states[vm] = rec;

    const int concurrency = std::max(1, config.schedule.concurrency);
    // Several bars at once would overwrite each other: one job at a time draws its bar,
    // several log a line as each starts and ends.
    const bool progress =
        !global.quiet && Progress::StderrIsTerminal() && concurrency == 1;
    Job job(*repo, config, g, ingest::ThreadsPerJob(ThreadPool::HardwareThreads(), concurrency),
            progress, states);
    using SentMap = std::map<std::string, int64_t>;
    VV_ASSIGN_OR_RETURN(SentMap last_sent, store::ListAlertsSent(kv));
    ingest::JobRunOptions run;
    run.concurrency = concurrency;
    run.window_open = [&] { return ingest::CheckWindow(config.schedule.window, clock.NowMicros()).open; };
    run.run = [&](size_t i) { return job.Run(queue[i]); };
    run.tick_interval = std::chrono::milliseconds(
        std::clamp<int64_t>(config.alerts.stuck_after.count() * 1000 / 4, 1000, 60'000));
    run.tick = [&](const std::vector<ingest::ActiveJob>& active) {
      std::vector<ingest::RunningJob> jobs;
      for (const ingest::ActiveJob& j : active) {
        jobs.push_back({fmt::format("backup of VM {}", queue[j.entry].vm), j.started_us});
      }
      for (const ingest::Alert& alert :
           ingest::DueAlerts(config.alerts, {}, jobs, last_sent, clock.NowMicros())) {
        Send(kv, config.alerts, alert);
        last_sent[alert.key] = clock.NowMicros();
      }
    };
    const ingest::JobRunSummary summary = ingest::RunJobs(queue, run, clock);

    std::vector<std::string> failures;
    Status first_failure;
    size_t done = 0;
    for (const auto& [i, st] : summary.finished) {
      if (st.ok()) {
        ++done;
        continue;
      }
      failures.push_back(fmt::format("VM {}: {}", Printable(queue[i].vm), st.ToString()));
      spdlog::warn("{}", failures.back());
      if (first_failure.ok()) first_failure = st;
    }
    if (summary.left > 0) {
      spdlog::warn("the backup window {} closed; {} due VM{} left for its next opening",
                   config.schedule.window->ToString(), summary.left,
                   summary.left == 1 ? "" : "s");
    }
    spdlog::info("schedule: {} backed up, {} failed, {} left", done, failures.size(),
                 summary.left);
    VV_ASSIGN_OR_RETURN(const std::vector<ingest::VmBackupState> behind,
                        BehindCandidates(*repo, config, queue, states, clock.NowMicros()));
    for (const ingest::Alert& alert :
         ingest::DueAlerts(config.alerts, behind, {}, last_sent, clock.NowMicros())) {
      Send(kv, config.alerts, alert);
    }
    if (failures.empty()) return Status::OK();
    std::string msg =
        fmt::format("{} of {} backups failed", failures.size(), done + failures.size());
    for (const std::string& f : failures) msg += "\n  " + f;
    return Status(first_failure.code() == StatusCode::kBusy ? StatusCode::kIOError
                                                            : first_failure.code(),
                  msg);
  }();
  ingest::HookValues post_values = schedule_values;
  post_values["Status"] = ingest::HookStatusValue(result.ok());
  const Status post = ingest::RunHooks(config.hooks, ingest::HookEvent::kPostSchedule, post_values);
  if (!post.ok()) Send(kv, config.alerts, ingest::FailureAlert("scheduled run", post));
  return result.ok() ? post : result;
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
