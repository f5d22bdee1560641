// VirtualBox machine state through VBoxManage: whether a machine runs, and pausing and
// resuming it around a backup of its disks. Every command goes through a CommandRunner,
// so unit tests use FakeCommandRunner. Machines are named by uuid (virtualbox.h
// NormalizeVboxUuid); anything else is refused before a command runs.
//
// VBoxManage talks to the VirtualBox service of the user who runs it: run as root, it
// does not see the VMs of other users.
//
// Stateless; thread-safe when the runner is.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/result.h"
#include "ingest/command_runner.h"

namespace vmvault::ingest {

struct VboxState {
  std::string vm_state;  // VBoxManage's VMState: "running", "paused", "poweroff", ...
  // A VM process has the disks open: every state except poweroff, saved, aborted,
  // aborted-saved and teleported (an unknown state counts as online).
  bool online = false;
  bool paused() const { return vm_state == "paused"; }
};

// Runs `VBoxManage showvminfo <uuid> --machinereadable`. Errors: NotFound only when
// VBoxManage is not installed (the caller may then read the disks as for a stopped
// VM); FailedPrecondition when this user's VirtualBox does not know the machine (it may
// still run under another user: VBoxManage only sees the calling user's VMs); External
// for other failures, quoting VBoxManage.
Result<VboxState> GetVboxState(CommandRunner& runner, std::string_view uuid);
// GetVboxState(...).online.
Result<bool> IsVboxRunning(CommandRunner& runner, std::string_view uuid);
// `VBoxManage controlvm <uuid> pause` / `resume`; errors as for GetVboxState.
Status PauseVbox(CommandRunner& runner, std::string_view uuid);
Status ResumeVbox(CommandRunner& runner, std::string_view uuid);

// Parser of `showvminfo --machinereadable` output, exposed for tests: key=value lines,
// either side possibly in double quotes.
std::map<std::string, std::string> ParseVboxMachineReadable(std::string_view text);

}  // namespace vmvault::ingest
