// RunJobs: how `vmvault schedule` runs the due entries of its queue (ingest/schedule.h)
// as jobs: up to `concurrency` at once, each on a thread of its own, in queue order,
// never two jobs of running VMs at once (PickNextJob). Before each start it asks
// whether the backup window is still open; once it is closed no new job starts, and
// the jobs running are left to finish. While jobs run, `tick` is called every
// `tick_interval` with the jobs running and when each started (for the stuck alert).
//
// FindSourceVms lists what the domain and virtualbox sources find now (the Inventory
// BuildQueue takes): libvirt's domains and their state, the VirtualBox machines under
// each path and whether VBoxManage says they run.
//
// What a job does is the caller's `run`, called on the job's thread; it must be safe to
// call from several threads at once. RunJobs returns when every job it started has
// ended. Thread-safe; RunJobs itself is called from one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "ingest/command_runner.h"
#include "ingest/config.h"
#include "ingest/schedule.h"

namespace vmvault::ingest {

struct ActiveJob {
  size_t entry = 0;  // index in the queue
  int64_t started_us = 0;
};

struct JobRunOptions {
  int concurrency = 1;
  // Whether a job may start now (the window is open). Unset: always.
  std::function<bool()> window_open;
  // One job: backs up queue[entry]. Called on the job's own thread.
  std::function<Status(size_t entry)> run;
  // Called on RunJobs' thread while jobs run. Unset: nothing.
  std::function<void(const std::vector<ActiveJob>&)> tick;
  std::chrono::milliseconds tick_interval{60'000};
};

struct JobRunSummary {
  std::vector<std::pair<size_t, Status>> finished;  // (entry, how it ended), as they ended
  size_t left = 0;  // due entries not started because the window closed
  int most_at_once = 0;
};

// The Inventory of every enabled, scheduled domain and virtualbox source of `config`.
// A source that cannot be listed has its error in the map, naming the URI or path.
Inventory FindSourceVms(const Config& config, CommandRunner& runner);

JobRunSummary RunJobs(const std::vector<QueueEntry>& queue, const JobRunOptions& options,
                      const Clock& clock);

}  // namespace vmvault::ingest
