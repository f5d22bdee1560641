// Hooks: the programs of [hooks] (vmvault.toml(5)) run before and after a schedule, a
// backup, a snapshot and a restore. The caller (vmvault schedule, ingest, restore, and
// the domain and VirtualBox ingest for the snapshot events) says which event it is and
// gives the values of the event's variables; this file runs the event's commands and
// says how each ended. RunBetweenHooks puts one step between an event's pre- and post-
// hooks, the same way for every event.
//
// A hook runs without a shell: argv as configured, each {{Variable}} replaced inside its
// argument (ExpandHookArgv, config_values.h; a value with spaces stays one argument).
// Unknown variables, and variables the event does not have, are errors when the
// configuration is read (CheckConfig), so a loaded Config never holds one. A variable
// the event has but the caller left out of `values` becomes "" and is logged as a
// warning. Every value is also in the hook's environment as VMVAULT_<NAME> (upper case:
// VMVAULT_REPOSITORY, VMVAULT_VM, VMVAULT_TIER, VMVAULT_BACKUP, VMVAULT_METHOD,
// VMVAULT_TARGET, VMVAULT_STATUS), with VMVAULT_EVENT holding the event's name.
//
// A hook runs in a process group of its own with stdin closed. When HooksConfig::timeout
// passes, the whole group is killed (SIGKILL) and the hook has failed. Each line it
// writes goes to the log (spdlog, info for stdout and warning for stderr) as
// "hook pre-backup /path/to/program: the line".
//
// Thread-safety: every function here is thread-safe; hooks of different VMs may run at
// once.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ingest/config.h"

namespace vmvault::ingest {

// The values of a hook's {{Variables}}, by name ("VM" -> "web01").
using HookValues = std::map<std::string, std::string>;

// The value of {{Status}} in post- hooks: "ok" or "failed".
inline const char* HookStatusValue(bool ok) { return ok ? "ok" : "failed"; }

// How one hook ended.
struct HookResult {
  std::vector<std::string> argv;  // as run, variables replaced
  bool started = false;           // false: the program could not be run (see status)
  int exit_code = -1;             // when it exited
  int signal = 0;                 // when a signal killed it (SIGKILL after a timeout)
  bool timed_out = false;
  std::chrono::milliseconds took{0};
  // OK when it exited with 0. Otherwise External (NotFound when the program is not
  // there) with a message that names the event and the program and says how it failed:
  // "pre-backup hook /usr/local/bin/freeze failed: exit status 3",
  // "...: killed by signal 9 (Killed)", "...: still running after 5m, killed".
  Status status;
};

// Runs one command of `event` and waits for it (at most `timeout`).
HookResult RunHook(const HookCommand& command, HookEvent event, const HookValues& values,
                   std::chrono::milliseconds timeout);

// Runs the commands configured for `event`, in order, and returns the first failure's
// status (OK when there are none or all succeed). A pre- event stops at the first
// failure, so its later commands do not run and the caller skips the step (a failing
// pre-backup hook skips that VM's backup); a post- event runs every command.
Status RunHooks(const HooksConfig& hooks, HookEvent event, const HookValues& values);

// {{Repository}}, {{VM}} and {{Tier}}: the values of the backup and snapshot events.
HookValues VmHookValues(std::string_view repository, std::string_view vm, std::string_view tier);

// Runs the `pre` hooks, then `step` unless they failed, then the `post` hooks (always,
// with {{Status}} "failed" when a pre hook or the step failed, and any values `step`
// added to `values`, such as {{Backup}}). Returns the pre hooks' failure with `skipped` as its
// context ("the backup was skipped"), else the step's failure, else the post hooks'.
// With `post_failure`, the post hooks' failure after a good step goes there instead
// (OK otherwise), and the step's OK is returned.
Status RunBetweenHooks(const HooksConfig& hooks, HookEvent pre, HookEvent post,
                       HookValues values, std::string_view skipped,
                       const std::function<Status(HookValues* values)>& step,
                       Status* post_failure = nullptr);

// The hooks an ingest runs: the pre- and post-snapshot hooks around the moment a
// running VM's disks are captured (a domain or machine paused, a disk-only snapshot
// taken, a pull backup job started) and, with `each_backup`, the pre- and post-backup
// hooks around each VM's backup (BackupBetweenHooks in backup_builder.h). Not owned:
// `hooks` must outlive the ingest.
struct IngestHooks {
  const HooksConfig* hooks = nullptr;  // null: none run
  std::string repository;              // {{Repository}}
  // Whether the domain and VirtualBox ingest run the backup hooks around each VM
  // (vmvault ingest); vmvault schedule runs them around its job itself.
  bool each_backup = false;
};

// Runs `capture` between the snapshot hooks, with {{Repository}}, {{VM}}, {{Tier}} and
// {{Method}}; only `capture` when there are no hooks. A failing pre-snapshot hook
// returns before `capture` touches the VM. A failing post-snapshot hook does not fail
// the capture, whose disks are good: the backup goes on and is kept, and the hook's
// failure is left in *post_failure (OK otherwise) for the caller to report once the
// backup is committed (CommitThenReport in backup_builder.h).
Status CaptureBetweenHooks(const IngestHooks& hooks, std::string_view vm,
                           std::string_view tier, std::string_view method,
                           const std::function<Status()>& capture, Status* post_failure);

}  // namespace vmvault::ingest
