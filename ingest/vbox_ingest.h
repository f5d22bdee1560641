// VirtualBox ingest: `vmvault ingest --virtualbox PATH`, where PATH is a VirtualBox.xml,
// a .vbox file or a folder of them (virtualbox.h finds the machines). Each machine
// becomes one backup of the VM of the same (sanitized) name, with its .vbox file kept
// as the backup's machine.vbox, and one disk per attached hard disk in its current
// state.
//
// A disk that is one image (VDI, VMDK, VHD, ...) is read by qemu like any image file.
// A chain of VDI differencing images (snapshots) is read in-process by VdiChainImage,
// since qemu cannot. Other differencing chains are refused with a clear error.
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
#include "store/catalog.h"
#include "store/repository.h"

namespace vmvault::ingest {

struct VboxIngestOptions {
  std::string path;
  std::optional<std::string> tier;
  size_t threads = 0;
  bool progress = false;
};

// Backs up every machine found under options.path. A machine that fails does not stop
// the others; the result is then the first error, with the count of failures.
Result<std::vector<store::BackupRecord>> IngestVirtualBox(store::Repository& repo,
                                                          const VboxIngestOptions& options,
                                                          CommandRunner& runner,
                                                          const Clock& clock);

}  // namespace vmvault::ingest
