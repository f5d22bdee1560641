// vmvault gc: delete the chunks no backup references and give the space back.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/names.h"
#include "base/progress.h"
#include "store/gc.h"
#include "store/repository.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

struct GcArgs {
  bool dry_run = false;
  bool json = false;
};

Status RunGc(const GlobalOptions& global, const GcArgs& a) {
  VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(global, store::RepoMode::kWrite));
  store::GcOptions o;
  o.dry_run = a.dry_run;
  o.progress = !global.quiet && Progress::StderrIsTerminal();
  const int64_t start = SystemClock::Default().NowMicros();
  VV_ASSIGN_OR_RETURN(const store::GcStats s, store::CollectGarbage(*repo, o));
  const double secs = static_cast<double>(SystemClock::Default().NowMicros() - start) / 1e6;
  if (a.json) {
    fmt::print("{}\n", nlohmann::json{{"dry_run", a.dry_run},
                                      {"backups", s.backups},
                                      {"referenced_chunks", s.referenced_chunks},
                                      {"stored_chunks", s.stored_chunks},
                                      {"deleted_chunks", s.deleted_chunks},
                                      {"deleted_bytes", s.deleted_bytes},
                                      {"missing_chunks", s.missing_chunks},
                                      {"disk_bytes_before", s.disk_bytes_before},
                                      {"disk_bytes_after", s.disk_bytes_after},
                                      {"seconds", secs}}
                           .dump(2));
  }
  if (a.dry_run) {
    spdlog::info("gc (dry run): {} of {} chunks ({} stored) are referenced by no backup of {} "
                 "and would be deleted",
                 s.deleted_chunks, s.stored_chunks, HumanBytes(s.deleted_bytes), s.backups);
  } else {
    spdlog::info("gc: deleted {} of {} chunks ({} stored); the repository went from {} to {} on "
                 "disk, in {:.1f} s",
                 s.deleted_chunks, s.stored_chunks, HumanBytes(s.deleted_bytes),
                 HumanBytes(s.disk_bytes_before), HumanBytes(s.disk_bytes_after), secs);
  }
  if (s.missing_chunks != 0) {
    spdlog::warn("{} chunks that backups reference are not stored; run `vmvault verify` to see "
                 "which backups they damage",
                 s.missing_chunks);
  }
  return Status::OK();
}

}  // namespace

Command GcCommand() {
  return {"gc", "Delete the chunks no backup references and reclaim their space on disk",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<GcArgs>();
            app.add_flag("-n,--dry-run", a->dry_run, "Count what would be deleted; delete nothing");
            app.add_flag("--json", a->json, "Print the figures as JSON");
            return [&global, a]() -> Status { return RunGc(global, *a); };
          }};
}

}  // namespace vmvault::tools
