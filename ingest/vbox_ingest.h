// VirtualBox ingest: `vmvault ingest --virtualbox PATH`, where PATH is a VirtualBox.xml,
// a .vbox file or a folder of them (virtualbox.h finds the machines). Each machine
// becomes one backup of the VM of the same (sanitized) name, with its .vbox file kept
// as the backup's machine.vbox, and one disk per attached hard disk in its current
// state.
//
// A disk that is one image (VDI, VMDK, VHD, ...) is read by qemu like any image file.
// A chain of differencing images (snapshots) is read as the media registry orders it:
// VDI chains in-process by VdiChainImage, since qemu cannot; VMDK chains by qemu, each
// image opened on the images below it in the registry's chain (ProbeChain), whatever
// parent its descriptor names, once every child's parentCID matched its parent's CID.
// Other chains (VHD, or images of more than one format) are refused with a clear error.
//
// When VBoxManage is installed and says a machine is running, it is paused for the
// copy and resumed after (vmprestage's pause, copy, resume), running machines first,
// one at a time, and the pause is logged and recorded. Without VBoxManage the images
// are read as they are, which is consistent only for machines that are not running.
//
// The caller owns the repository (opened for writing). One call at a time.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "ingest/command_runner.h"
#include "ingest/hooks.h"
#include "ingest/virtualbox.h"
#include "store/catalog.h"
#include "store/repository.h"

namespace vmvault::ingest {

struct VboxIngestOptions {
  std::string path;
  // Only the machines with these names (as VirtualBox names them); empty: every one.
  std::vector<std::string> machines;
  std::optional<std::string> tier;
  size_t threads = 0;
  bool progress = false;
  // The snapshot hooks around the pause of each running machine ({{Method}} is pause);
  // with hooks.each_backup also the backup hooks around each machine's backup.
  IngestHooks hooks;
  // When not null, receives each backup that was committed although its machine's run
  // then failed (a post-snapshot or post-backup hook): the error says so, this names it.
  std::vector<store::BackupRecord>* kept = nullptr;
};

// qemu's name for the format of every image in `disk`'s chain when vmvault can read the
// chain: any single image, or a differencing chain of VDI images or of VMDK images.
// Unsupported naming the disk and the images' formats otherwise.
Result<std::string> VboxChainFormat(const VboxDisk& disk);

// Backs up every machine found under options.path. A machine that fails does not stop
// the others; the result is then the first error, with the count of failures.
Result<std::vector<store::BackupRecord>> IngestVirtualBox(store::Repository& repo,
                                                          const VboxIngestOptions& options,
                                                          CommandRunner& runner,
                                                          const Clock& clock);

}  // namespace vmvault::ingest
