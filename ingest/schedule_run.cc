#include "ingest/schedule_run.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "base/names.h"
#include "ingest/libvirt.h"
#include "ingest/vbox_manage.h"
#include "ingest/virtualbox.h"

namespace vmvault::ingest {
namespace {

Result<std::vector<FoundVm>> FindDomains(const SourceConfig& source) {
  VV_ASSIGN_OR_RETURN(auto conn, LibvirtConnection::Open(source.connect));
  VV_ASSIGN_OR_RETURN(const std::vector<std::string> names, conn->ListDomainNames());
  std::vector<FoundVm> all;
  for (const std::string& n : names) all.push_back({n, false});
  std::vector<FoundVm> out = SelectFound(source, all);
  for (FoundVm& f : out) {
    VV_ASSIGN_OR_RETURN(auto dom, conn->LookupDomain(f.name));
    VV_ASSIGN_OR_RETURN(const DomainState state, dom->State());
    f.running = state != DomainState::kShutoff;
  }
  return out;
}

Result<std::vector<FoundVm>> FindMachines(const SourceConfig& source, CommandRunner& runner,
                                          bool* have_vboxmanage) {
  VV_ASSIGN_OR_RETURN(const std::vector<VboxMachine> machines,
                      FindVirtualBoxMachines(source.path));
  std::vector<FoundVm> out;
  for (const VboxMachine& m : machines) {
    if (SelectFound(source, {{m.name, false}}).empty()) continue;
    FoundVm f{m.name, false};
    if (*have_vboxmanage) {
      auto state = GetVboxState(runner, m.uuid);
      if (state.ok()) {
        f.running = state->online;
      } else if (state.status().IsNotFound()) {
        *have_vboxmanage = false;  // not installed: the images are read as they are
      } else {
        return state.status();
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

Inventory FindSourceVms(const Config& config, CommandRunner& runner) {
  Inventory inventory;
  bool have_vboxmanage = true;
  for (size_t i = 0; i < config.sources.size(); ++i) {
    const SourceConfig& s = config.sources[i];
    if (!FoundAtRunTime(s.kind) || !s.enabled || !config.Scheduled(s)) continue;
    if (s.kind == SourceKind::kDomain) {
      auto found = FindDomains(s);
      inventory.emplace(i, found.ok() ? std::move(found)
                                      : Result<std::vector<FoundVm>>(found.status().WithContext(
                                            fmt::format("listing the domains of {}",
                                                        Printable(s.connect)))));
    } else {
      auto found = FindMachines(s, runner, &have_vboxmanage);
      inventory.emplace(i, found.ok() ? std::move(found)
                                      : Result<std::vector<FoundVm>>(found.status().WithContext(
                                            fmt::format("listing the VirtualBox machines of '{}'",
                                                        Printable(s.path)))));
    }
  }
  return inventory;
}

JobRunSummary RunJobs(const std::vector<QueueEntry>& queue, const JobRunOptions& options,
                      const Clock& clock) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<bool> started(queue.size(), false);
  std::vector<ActiveJob> active;  // GUARDED_BY(mu)
  bool live = false;              // a running VM's job runs; GUARDED_BY(mu)
  bool closed = false;
  JobRunSummary summary;  // finished and most_at_once GUARDED_BY(mu)
  std::vector<std::thread> threads;

  auto next_tick = std::chrono::steady_clock::now() + options.tick_interval;
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    if (!closed && options.window_open && !options.window_open()) closed = true;
    const std::optional<size_t> next =
        PickNextJob(queue, started, static_cast<int>(active.size()), live,
                    options.concurrency, !closed);
    if (next) {
      const size_t i = *next;
      started[i] = true;
      if (queue[i].running) live = true;
      active.push_back({i, clock.NowMicros()});
      summary.most_at_once = std::max(summary.most_at_once, static_cast<int>(active.size()));
      threads.emplace_back([&, i] {
        Status s = options.run(i);
        std::lock_guard<std::mutex> guard(mu);
        if (queue[i].running) live = false;
        std::erase_if(active, [i](const ActiveJob& j) { return j.entry == i; });
        summary.finished.emplace_back(i, std::move(s));
        cv.notify_all();
      });
      continue;
    }
    bool pending = false;
    for (size_t i = 0; i < queue.size() && !pending; ++i) pending = queue[i].due && !started[i];
    // With nothing running PickNextJob starts any pending entry unless closed.
    if (active.empty() && (!pending || closed)) break;
    cv.wait_until(lock, next_tick);
    if (std::chrono::steady_clock::now() >= next_tick) {
      next_tick = std::chrono::steady_clock::now() + options.tick_interval;
      if (options.tick && !active.empty()) {
        const std::vector<ActiveJob> now = active;
        lock.unlock();
        options.tick(now);
        lock.lock();
      }
    }
  }
  lock.unlock();
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < queue.size(); ++i) summary.left += queue[i].due && !started[i] ? 1 : 0;
  return summary;
}

}  // namespace vmvault::ingest
