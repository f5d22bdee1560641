#include "ingest/lvm.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "ingest/file_ingest.h"
#include "ingest/qemu_img.h"

namespace vmvault::ingest {
namespace {

// LVM's own rule for VG and LV names.
bool IsLvmName(std::string_view s) {
  if (s.empty() || s.size() > 127 || s[0] == '-' || s == "." || s == "..") return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string Why(const Result<CommandOutput>& out) {
  if (!out.ok()) return out.status().message();
  std::string e = CleanQemuError(out->stderr_text);
  return e.empty() ? fmt::format("exit status {}", out->exit_code) : e;
}

}  // namespace

Status CheckDeviceMapper(CommandRunner& runner) {
  auto out = runner.Run({"dmsetup", "version"});
  if (out.ok() && out->exit_code == 0) return Status::OK();
  return Status::Unsupported(fmt::format(
      "LVM snapshots need the kernel's device-mapper, which does not answer here (dmsetup "
      "version: {}); load the dm_mod module, or back the volume up with --device while "
      "nothing writes to it",
      Why(out)));
}

Result<store::BackupRecord> IngestLvmVolume(store::Repository& repo, const LvmIngestOptions& opts,
                                            CommandRunner& runner, const Clock& clock,
                                            ImageSourceOpener& opener) {
  const size_t slash = opts.volume.find('/');
  const std::string vg = opts.volume.substr(0, slash);
  const std::string lv = slash == std::string::npos ? "" : opts.volume.substr(slash + 1);
  if (slash == std::string::npos || !IsLvmName(vg) || !IsLvmName(lv)) {
    return Status::InvalidArgument(fmt::format(
        "'{}' is not a logical volume: give VG/LV, e.g. vg0/web01", Printable(opts.volume)));
  }
  VV_RETURN_IF_ERROR(CheckDeviceMapper(runner));
  const std::string snap = "vmvault-snap-" + lv;
  // "10%ORIGIN" is a count of extents; "4G" a size.
  const bool extents = opts.snapshot_extents.find('%') != std::string::npos;
  auto created = runner.Run({"lvcreate", "--snapshot", "--name", snap,
                             extents ? "--extents" : "--size", opts.snapshot_extents,
                             vg + "/" + lv});
  if (!created.ok() || created->exit_code != 0) {
    return Status::External(fmt::format("cannot snapshot {}/{}: {}", vg, lv, Why(created)));
  }
  struct Remover {
    CommandRunner& runner;
    std::string snap;
    ~Remover() {
      auto out = runner.Run({"lvremove", "--force", snap});
      if (!out.ok() || out->exit_code != 0) {
        spdlog::error("cannot remove LVM snapshot {}: {}; remove it with `lvremove {}`", snap,
                      Why(out), snap);
      }
    }
  } remover{runner, vg + "/" + snap};

  FileIngestOptions fopts;
  fopts.files = {"/dev/" + vg + "/" + snap};
  fopts.formats = {"raw"};
  fopts.vm = opts.vm ? *opts.vm : SanitizeName(lv);
  fopts.tier = opts.tier;
  fopts.threads = opts.threads;
  fopts.progress = opts.progress;
  return IngestImageFiles(repo, fopts, runner, clock, opener);
}

}  // namespace vmvault::ingest
