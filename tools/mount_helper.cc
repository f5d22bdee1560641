// mount.vmvault: the helper mount(8) runs for filesystems of type vmvault, so that a
// repository can be mounted from /etc/fstab or a systemd .mount unit. It translates
// mount(8)'s arguments (tools/mount_options.h) and runs `vmvault mount`, which returns
// once the mount serves requests. See mount.vmvault(8).
//
// Exit status as mount(8) documents for helpers: 0 mounted, 1 bad invocation, 32 the
// mount failed (vmvault has said why on stderr).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/mount_options.h"

extern char** environ;

namespace {

constexpr int kMountUsage = 1, kMountFailure = 32;

// The vmvault binary: beside this helper (a build tree), where the installation put it
// relative to this helper's directory (a --prefix or DESTDIR install), or at the
// configured path.
std::string FindVmvault() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::filesystem::path> candidates;
  if (!ec) {
    candidates.push_back(self.parent_path() / "vmvault");
    candidates.push_back(self.parent_path() / VMVAULT_SBIN_TO_BIN / "vmvault");
  }
  candidates.emplace_back(VMVAULT_INSTALL_BIN "/vmvault");
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c.lexically_normal().string();
  }
  return candidates.back().string();
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto call = vmvault::tools::ParseHelperArgs(args);
  if (!call.ok()) {
    std::fprintf(stderr, "mount.vmvault: %s\n", call.status().message().c_str());
    return kMountUsage;
  }
  for (const std::string& note : call->notes) std::fprintf(stderr, "mount.vmvault: %s\n", note.c_str());
  const std::string vmvault = FindVmvault();
  std::vector<std::string> full = {vmvault};
  full.insert(full.end(), call->vmvault_args.begin(), call->vmvault_args.end());
  if (call->verbose || call->fake) {
    std::string line;
    for (const std::string& a : full) line += (line.empty() ? "" : " ") + a;
    std::fprintf(stderr, "mount.vmvault: %s%s\n", call->fake ? "would run " : "", line.c_str());
  }
  if (call->fake) return 0;
  std::vector<char*> cargv;
  for (std::string& a : full) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid;
  if (const int err = ::posix_spawn(&pid, vmvault.c_str(), nullptr, nullptr, cargv.data(), environ);
      err != 0) {
    std::fprintf(stderr, "mount.vmvault: cannot run %s: %s\n", vmvault.c_str(), std::strerror(err));
    return kMountFailure;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return kMountFailure;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 2 ? kMountUsage : kMountFailure;
}
