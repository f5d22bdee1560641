// vmvault ingest: back up disk images as one new backup of a VM.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/progress.h"
#include "ingest/file_ingest.h"
#include "store/repository.h"
#include "tools/cli.h"

namespace vmvault::tools {

Command IngestCommand() {
  return {"ingest", "Back up disk images (any format qemu-img reads) as one new backup",
          [](CLI::App& app, GlobalOptions& global) {
            auto opts = std::make_shared<ingest::FileIngestOptions>();
            auto vm = std::make_shared<std::string>();
            auto tier = std::make_shared<std::string>();
            app.add_option("--file", opts->files,
                           "A disk image: raw, qcow2, vmdk, vdi, vhdx or vpc. Repeat for a VM "
                           "with several disks")
                ->required();
            CLI::Option* vm_opt =
                app.add_option("--vm", *vm, "The VM's name (default: the first file's name)");
            app.add_option("--tier", *tier, "hot, warm or cold (default: the VM's tier, or warm)");
            app.add_option("--format", opts->formats,
                           "The format of each --file, in order, instead of probing it");
            app.add_option("--threads", opts->threads,
                           "Worker threads (default: one per core)");
            return [&global, opts, vm, vm_opt, tier]() -> Status {
              if (vm_opt->count() > 0) opts->vm = *vm;  // an empty --vm is an error, not unset
              if (!tier->empty()) opts->tier = *tier;
              if (!opts->formats.empty() && opts->formats.size() != opts->files.size()) {
                return Status::InvalidArgument(
                    fmt::format("give one --format per --file ({} files, {} formats)",
                                opts->files.size(), opts->formats.size()));
              }
              opts->progress = !global.quiet && Progress::StderrIsTerminal();
              VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(global, store::RepoMode::kWrite));
              ingest::RealCommandRunner runner;
              // The summary is logged by IngestImageFiles; on a terminal only, so cron
              // stays quiet.
              return ingest::IngestImageFiles(*repo, *opts, runner, SystemClock::Default()).status();
            };
          }};
}

}  // namespace vmvault::tools
