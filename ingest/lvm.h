// LVM ingest: `vmvault ingest --lvm VG/LV` takes a snapshot of the logical volume with
// `lvcreate -s`, backs the snapshot's device up like --device, and always removes the
// snapshot (`lvremove -f`), whether the backup worked or not.
//
// LVM snapshots need the kernel's device-mapper. Where it is missing (`dmsetup version`
// fails) the call fails before touching anything, saying so. The orchestration is kept
// thin: everything under it (reading a block device) is the --device path.
//
// The snapshot is named vmvault-snap-<LV>: a snapshot left by a crash is found (and
// lvcreate's "already exists" error names it) instead of piling up.
#pragma once

#include <optional>
#include <string>

#include "base/clock.h"
#include "base/result.h"
#include "ingest/command_runner.h"
#include "ingest/image_source.h"
#include "store/catalog.h"
#include "store/repository.h"

namespace vmvault::ingest {

struct LvmIngestOptions {
  std::string volume;               // "VG/LV"
  std::optional<std::string> vm;    // default: the LV's name
  std::optional<std::string> tier;
  // The snapshot's copy-on-write space: a percentage for lvcreate --extents
  // ("10%ORIGIN"), else a size for --size ("4G").
  std::string snapshot_extents = "10%ORIGIN";
  size_t threads = 0;
  bool progress = false;
};

// OK when device-mapper answers; Unsupported saying what is missing otherwise.
Status CheckDeviceMapper(CommandRunner& runner);

Result<store::BackupRecord> IngestLvmVolume(store::Repository& repo, const LvmIngestOptions& opts,
                                            CommandRunner& runner, const Clock& clock,
                                            ImageSourceOpener& opener);

}  // namespace vmvault::ingest
