// vmvault verify: re-read and re-hash what the backups need, and record the result.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/names.h"
#include "base/progress.h"
#include "base/time_format.h"
#include "store/repository.h"
#include "store/verify.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

struct VerifyArgs {
  std::string vm;
  std::string since;
  double sample = 100;
  bool json = false;
};

// Opens the repository for writing, waiting up to a minute for another writer.
Result<std::unique_ptr<store::Repository>> OpenForRecording(const GlobalOptions& global) {
  for (int i = 0;; ++i) {
    auto repo = OpenRepo(global, store::RepoMode::kWrite);
    if (repo.ok() || repo.status().code() != StatusCode::kBusy || i == 60) return repo;
    ::sleep(1);
  }
}

Status RunVerify(const GlobalOptions& global, const VerifyArgs& a) {
  if (!(a.sample > 0 && a.sample <= 100)) {
    return Status::InvalidArgument(fmt::format("--sample {} is not a percentage in (0, 100]", a.sample));
  }
  store::VerifyOptions o;
  if (!a.vm.empty()) o.vm = a.vm;
  o.sample_percent = a.sample;
  const int64_t now = SystemClock::Default().NowMicros();
  if (!a.since.empty()) {
    VV_ASSIGN_OR_RETURN(o.since_us, ParseSince(a.since, now));
  }
  store::VerifyReport report;
  {
    VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(global, store::RepoMode::kReadOnly));
    Progress bar("verify", 0, !global.quiet && Progress::StderrIsTerminal());
    o.progress = &bar;
    VV_ASSIGN_OR_RETURN(report, store::Verify(*repo, o));
    bar.Finish();
  }

  if (report.backups.empty()) {
    return Status::NotFound("no backups match: nothing was verified");
  }
  // Record each backup's result, so mounts and listings show when it was last checked.
  // A sampled pass does not replace a recorded failure: it may simply have missed the
  // damaged chunks.
  const int64_t done = SystemClock::Default().NowMicros();
  Status recorded = [&]() -> Status {
    VV_ASSIGN_OR_RETURN(auto repo, OpenForRecording(global));
    std::vector<std::pair<uint64_t, store::VerifyRecord>> records;
    for (const store::BackupVerdict& v : report.backups) {
      store::VerifyRecord rec;
      rec.time_us = done;
      rec.ok = v.problems.empty();
      rec.sample_percent = a.sample;
      rec.chunks = v.chunks;
      rec.problems = v.problems;
      if (rec.ok && a.sample < 100) {
        auto before = repo->catalog().GetVerification(v.backup.id);
        if (before.ok() && before->has_value() && !(*before)->ok) continue;
      }
      records.emplace_back(v.backup.id, std::move(rec));
    }
    return repo->catalog().RecordVerifications(records);
  }();
  if (!recorded.ok()) {
    spdlog::warn("the results could not be recorded in the repository: {}", recorded.ToString());
  }

  size_t bad = 0;
  nlohmann::json out = nlohmann::json::array();
  for (const store::BackupVerdict& v : report.backups) {
    if (!v.problems.empty()) ++bad;
    const std::string where = fmt::format("{}/{}", v.backup.vm, v.backup.name());
    for (const std::string& p : v.problems) fmt::print(stderr, "{}: {}\n", Printable(where), p);
    out.push_back({{"vm", v.backup.vm}, {"backup", v.backup.name()}, {"id", v.backup.id},
                   {"ok", v.problems.empty()}, {"chunks", v.chunks}, {"problems", v.problems}});
  }
  if (a.json) {
    fmt::print("{}\n", nlohmann::json{{"ok", report.ok()},
                                      {"backups", std::move(out)},
                                      {"distinct_chunks", report.distinct_chunks},
                                      {"chunks_read", report.chunks_read},
                                      {"bytes_read", report.bytes_read},
                                      {"sample_percent", a.sample}}
                           .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  const double secs = std::max<double>(done - now, 1) / 1e6;
  spdlog::info("verified {} backup{}: {} distinct chunks, {} re-read ({}) in {:.1f} s; {}",
               report.backups.size(), report.backups.size() == 1 ? "" : "s",
               report.distinct_chunks, report.chunks_read, HumanBytes(report.bytes_read), secs,
               bad == 0 ? "all good" : fmt::format("{} with problems", bad));
  if (bad != 0) {
    return Status::Corruption(fmt::format("{} of {} backups cannot be fully restored (listed above)",
                                          bad, report.backups.size()));
  }
  return Status::OK();
}

}  // namespace

Command VerifyCommand() {
  return {"verify", "Re-read and re-hash the chunks backups need; record and report problems",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<VerifyArgs>();
            app.add_option("--vm", a->vm, "Only this VM's backups");
            app.add_option("--since", a->since,
                           "Only backups since: 2026-11-01, 2026-11-21T033000Z, or 7d, 12h, 2w ago");
            app.add_option("--sample", a->sample,
                           "Re-read this percentage of the chunks (default 100); the others are "
                           "checked in the chunk metadata only");
            app.add_flag("--json", a->json, "Print the report as JSON");
            return [&global, a]() -> Status { return RunVerify(global, *a); };
          }};
}

}  // namespace vmvault::tools
