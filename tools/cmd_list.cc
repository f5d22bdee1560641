// vmvault list: the VMs and backups in a repository, as text or JSON.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/progress.h"
#include "base/time_format.h"
#include "store/record_json.h"
#include "store/repository.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

using nlohmann::json;

struct Totals {
  uint64_t logical = 0, allocated = 0, new_stored = 0;
};

Totals Sum(const store::BackupRecord& b) {
  Totals t;
  for (const auto& d : b.disks) {
    t.logical += d.virtual_size;
    t.allocated += d.allocated_bytes;
    t.new_stored += d.new_stored_bytes;
  }
  return t;
}

json BackupJson(const store::BackupRecord& b, const std::string& period,
               const std::optional<store::VerifyRecord>& verified) {
  json disks = json::array();
  for (const auto& d : b.disks) disks.push_back(store::DiskRecordToJson(d));
  const Totals t = Sum(b);
  return {{"id", b.id},
          {"name", b.name()},
          {"path", fmt::format("{}/{}/{}", b.vm, period, b.name())},
          {"time", FormatIsoTime(b.time_us)},
          {"tier", b.tier},
          {"method", b.method},
          {"checkpoint", b.checkpoint.empty() ? json(nullptr) : json(b.checkpoint)},
          {"pause_s", b.pause_us / 1e6},
          {"duration_s", b.duration_us / 1e6},
          {"logical_bytes", t.logical},
          {"allocated_bytes", t.allocated},
          {"new_stored_bytes", t.new_stored},
          {"disks", std::move(disks)},
          {"verified", store::VerificationToJson(verified)}};
}

Status RunList(const GlobalOptions& global, const std::string& only_vm, bool as_json) {
  VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(global, store::RepoMode::kReadOnly));
  VV_ASSIGN_OR_RETURN(std::vector<store::VmRecord> vms, repo->catalog().ListVms());
  if (!only_vm.empty()) {
    std::erase_if(vms, [&](const store::VmRecord& v) { return v.name != only_vm; });
    if (vms.empty()) return Status::NotFound(fmt::format("no VM named '{}'", only_vm));
  }
  json out = json::array();
  std::string text;
  for (const auto& vm : vms) {
    VV_ASSIGN_OR_RETURN(std::vector<store::BackupRecord> backups,
                        repo->catalog().ListBackups(vm.name));
    json jb = json::array();
    text += fmt::format("{}  (tier {}, {} backup{})\n", vm.name, vm.tier, backups.size(),
                        backups.size() == 1 ? "" : "s");
    for (const auto& b : backups) {
      const std::string period = PeriodOf(b.time_us, vm.period);
      // A verification record that does not read is shown as such, not fatal.
      auto got = repo->catalog().GetVerification(b.id);
      const std::optional<store::VerifyRecord> verified =
          got.ok() ? *got : std::optional<store::VerifyRecord>();
      jb.push_back(BackupJson(b, period, verified));
      const Totals t = Sum(b);
      std::string check;
      if (!got.ok()) {
        check = "  verification unreadable";
      } else if (verified && !verified->ok) {
        check = "  DAMAGED (see vmvault verify)";
      } else if (verified) {
        check = "  verified " + FormatIsoTime(verified->time_us).substr(0, 10);
        if (verified->sample_percent < 100) {
          check += fmt::format(" ({:g}% sample)", verified->sample_percent);
        }
      }
      text += fmt::format("  {}/{}  {} disk{}  {} logical  {} allocated  {} new{}\n", period,
                          b.name(), b.disks.size(), b.disks.size() == 1 ? "" : "s",
                          HumanBytes(t.logical), HumanBytes(t.allocated),
                          HumanBytes(t.new_stored), check);
    }
    out.push_back({{"name", vm.name},
                   {"tier", vm.tier},
                   {"period", std::string(PeriodName(vm.period))},
                   {"origin", vm.origin},
                   {"backups", std::move(jb)}});
  }
  if (as_json) {
    fmt::print("{}\n", out.dump(2));
  } else if (vms.empty()) {
    fmt::print("No backups in {}\n", global.repo);
  } else {
    fmt::print("{}", text);
  }
  return Status::OK();
}

}  // namespace

Command ListCommand() {
  return {"list", "List VMs and their backups", [](CLI::App& app, GlobalOptions& global) {
            auto vm = std::make_shared<std::string>();
            auto as_json = std::make_shared<bool>(false);
            app.add_option("vm", *vm, "Only this VM");
            app.add_flag("--json", *as_json, "Print JSON");
            return [&global, vm, as_json] { return RunList(global, *vm, *as_json); };
          }};
}

}  // namespace vmvault::tools
