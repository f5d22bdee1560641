// The CPU and I/O priority of backups (`nice` and `ionice` in vmvault.toml(5)), set on
// the calling thread: Linux keeps both per thread, and the threads and processes it
// starts afterwards (the ingest's workers, qemu-nbd, hooks) inherit them. vmvault
// schedule calls it at the start of each job's thread.
//
// Thread-safe: each call changes only its own thread.
#pragma once

#include <optional>

#include "base/result.h"
#include "ingest/config.h"

namespace vmvault::ingest {

// Sets the calling thread's nice value (setpriority) when `nice` is set, and its I/O
// class and level (ioprio_set) unless the class is kNone. A lower nice value than the
// thread has needs CAP_SYS_NICE: the error then says so.
Status ApplyPriority(std::optional<int> nice, const IoNice& ionice);

// The calling thread's nice value, and its I/O priority as ionice(1) prints it
// ("idle", "best-effort: prio 4", "none: prio 0", ...).
int ThreadNice();
std::string ThreadIoPriority();

}  // namespace vmvault::ingest
