#include "ingest/vbox_manage.h"

#include <cctype>
#include <set>

#include <fmt/format.h>

#include "base/names.h"
#include "ingest/virtualbox.h"

namespace vmvault::ingest {
namespace {

std::string CleanVboxError(std::string_view stderr_text) {
  std::string out;
  int lines = 0;
  size_t pos = 0;
  while (pos < stderr_text.size() && lines < 3) {
    size_t nl = stderr_text.find('\n', pos);
    if (nl == std::string_view::npos) nl = stderr_text.size();
    std::string_view line = stderr_text.substr(pos, nl - pos);
    pos = nl + 1;
    for (std::string_view prefix : {"VBoxManage: error: ", "VBoxManage.exe: error: "}) {
      if (line.substr(0, prefix.size()) == prefix) line.remove_prefix(prefix.size());
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    if (!out.empty()) out += "; ";
    out += line;
    ++lines;
  }
  return out.empty() ? "no error message" : Printable(out);
}

Result<CommandOutput> RunVboxManage(CommandRunner& runner, std::vector<std::string> args,
                                    const std::string& uuid, std::string_view what) {
  args.insert(args.begin(), "VBoxManage");
  Result<CommandOutput> out = runner.Run(args);
  if (!out.ok()) {
    if (out.status().IsNotFound()) {
      return Status::NotFound(fmt::format(
          "VBoxManage is not installed (not found on PATH), so vmvault cannot {} VirtualBox "
          "machine {}",
          what, uuid));
    }
    return out.status().WithContext(fmt::format("running {}", FormatCommand(args)));
  }
  if (out->exit_code != 0) {
    const std::string why = CleanVboxError(out->stderr_text);
    if (out->stderr_text.find("Could not find a registered machine") != std::string::npos ||
        out->stderr_text.find("VBOX_E_OBJECT_NOT_FOUND") != std::string::npos) {
      return Status::NotFound(fmt::format(
          "this user's VirtualBox does not know machine {} (VBoxManage only sees the VMs of the "
          "user running it): {}",
          uuid, why));
    }
    return Status::External(
        fmt::format("{} failed (exit {}): {}", FormatCommand(args), out->exit_code, why));
  }
  return out;
}

Status ControlVm(CommandRunner& runner, std::string_view uuid, const char* verb) {
  VV_ASSIGN_OR_RETURN(const std::string id, NormalizeVboxUuid(uuid));
  return RunVboxManage(runner, {"controlvm", id, verb}, id, verb).status();
}

}  // namespace

std::map<std::string, std::string> ParseVboxMachineReadable(std::string_view text) {
  std::map<std::string, std::string> out;
  auto unquote = [](std::string_view s) {
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    return std::string(s);
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // A quoted key may contain '=' ("GuestProperty..."), so split after its closing quote.
    size_t eq;
    if (!line.empty() && line.front() == '"') {
      const size_t close = line.find('"', 1);
      if (close == std::string_view::npos) continue;
      eq = line.find('=', close);
    } else {
      eq = line.find('=');
    }
    if (eq == std::string_view::npos) continue;
    out.emplace(unquote(line.substr(0, eq)), unquote(line.substr(eq + 1)));
  }
  return out;
}

Result<VboxState> GetVboxState(CommandRunner& runner, std::string_view uuid) {
  VV_ASSIGN_OR_RETURN(const std::string id, NormalizeVboxUuid(uuid));
  VV_ASSIGN_OR_RETURN(
      const CommandOutput out,
      RunVboxManage(runner, {"showvminfo", id, "--machinereadable"}, id, "ask the state of"));
  const std::map<std::string, std::string> info = ParseVboxMachineReadable(out.stdout_text);
  auto it = info.find("VMState");
  if (it == info.end() || it->second.empty()) {
    return Status::External(
        fmt::format("VBoxManage showvminfo {} --machinereadable printed no VMState", id));
  }
  VboxState state;
  state.vm_state = it->second;
  static const std::set<std::string, std::less<>> kOffline = {"poweroff", "saved", "aborted",
                                                              "aborted-saved", "teleported"};
  state.online = kOffline.count(state.vm_state) == 0;
  return state;
}

Result<bool> IsVboxRunning(CommandRunner& runner, std::string_view uuid) {
  VV_ASSIGN_OR_RETURN(const VboxState state, GetVboxState(runner, uuid));
  return state.online;
}

Status PauseVbox(CommandRunner& runner, std::string_view uuid) {
  return ControlVm(runner, uuid, "pause");
}

Status ResumeVbox(CommandRunner& runner, std::string_view uuid) {
  return ControlVm(runner, uuid, "resume");
}

}  // namespace vmvault::ingest
