// vmvault list and show-backups: the VMs and backups in a repository with their sizes
// and verification, as text, JSON or YAML.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/names.h"
#include "base/progress.h"
#include "base/time_format.h"
#include "store/record_json.h"
#include "store/repository.h"
#include "tools/cli.h"
#include "tools/inventory.h"
#include "tools/output.h"

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

json BackupJson(const BackupEntry& e) {
  const store::BackupRecord& b = e.backup;
  json disks = json::array();
  for (const auto& d : b.disks) disks.push_back(store::DiskRecordToJson(d));
  const Totals t = Sum(b);
  const json sizes = SizesJson(e.sizes);
  return {{"id", b.id},
          {"name", b.name()},
          {"path", fmt::format("{}/{}/{}", b.vm, e.period, b.name())},
          {"time", FormatIsoTime(b.time_us)},
          {"tier", b.tier},
          {"method", b.method},
          {"checkpoint", b.checkpoint.empty() ? json(nullptr) : json(b.checkpoint)},
          {"pause_s", b.pause_us / 1e6},
          {"duration_s", b.duration_us / 1e6},
          {"logical_bytes", t.logical},
          {"allocated_bytes", t.allocated},
          {"new_stored_bytes", t.new_stored},
          {"stored_bytes", sizes["stored_bytes"]},
          {"unique_bytes", sizes["unique_bytes"]},
          {"disks", std::move(disks)},
          {"verified", store::VerificationToJson(e.verified.ok() ? *e.verified
                                                                 : std::nullopt)}};
}

json VmJson(const VmEntry& vm) {
  json backups = json::array();
  for (const BackupEntry& b : vm.backups) backups.push_back(BackupJson(b));
  const json sizes = SizesJson(vm.sizes);
  return {{"name", vm.vm.name},
          {"tier", vm.vm.tier},
          {"period", std::string(PeriodName(vm.vm.period))},
          {"origin", vm.vm.origin},
          {"logical_bytes", sizes["logical_bytes"]},
          {"stored_bytes", sizes["stored_bytes"]},
          {"unique_bytes", sizes["unique_bytes"]},
          {"backups", std::move(backups)}};
}

std::string SizeText(const store::UsageSizes* s, uint64_t logical, bool human) {
  if (s == nullptr) return fmt::format("{} logical  (stored size unknown)", Bytes(logical, human));
  return fmt::format("{} logical  {} stored  {} unique", Bytes(logical, human),
                     Bytes(s->stored, human), Bytes(s->unique, human));
}

void WarnAboutSizes(const Inventory& inv) {
  if (!inv.sizes_error.ok()) {
    fmt::print(stderr, "vmvault: sizes are unknown: {}\n", inv.sizes_error.ToString());
  }
}

Result<Inventory> Read(const GlobalOptions& global, const std::string& only_vm) {
  VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(global, store::RepoMode::kReadOnly));
  return ReadInventory(*repo, only_vm, !global.quiet && Progress::StderrIsTerminal());
}

Status RunList(const GlobalOptions& global, const std::string& only_vm, const OutputOptions& o) {
  VV_ASSIGN_OR_RETURN(const Inventory inv, Read(global, only_vm));
  WarnAboutSizes(inv);
  if (o.machine()) {
    json out = json::array();
    for (const VmEntry& vm : inv.vms) out.push_back(VmJson(vm));
    return PrintDocument(out, o);
  }
  if (inv.vms.empty()) {
    fmt::print("No backups in {}\n", Printable(global.repo));
    return Status::OK();
  }
  std::string text;
  for (const VmEntry& vm : inv.vms) {
    const size_t n = vm.backups.size();
    const uint64_t newest = n == 0 ? 0 : Sum(vm.backups.back().backup).logical;
    text += fmt::format("{}  (tier {}, {} backup{}, {})\n", Printable(vm.vm.name), vm.vm.tier, n,
                        n == 1 ? "" : "s", SizeText(vm.sizes, newest, o.human));
    for (const BackupEntry& e : vm.backups) {
      const store::BackupRecord& b = e.backup;
      const std::string check = VerificationText(e);
      text += fmt::format("  {}/{}  {} disk{}  {}{}{}\n", e.period, b.name(), b.disks.size(),
                          b.disks.size() == 1 ? "" : "s",
                          SizeText(e.sizes, Sum(b).logical, o.human), check.empty() ? "" : "  ",
                          check);
    }
  }
  fmt::print("{}", text);
  return Status::OK();
}

Status RunShowBackups(const GlobalOptions& global, const std::string& vm_name,
                      const OutputOptions& o) {
  VV_ASSIGN_OR_RETURN(const Inventory inv, Read(global, vm_name));
  WarnAboutSizes(inv);
  const VmEntry& vm = inv.vms.front();
  if (o.machine()) return PrintDocument(VmJson(vm), o);
  std::vector<std::vector<std::string>> rows = {
      {"TIME", "PATH", "METHOD", "DISKS", "LOGICAL", "STORED", "UNIQUE", "VERIFIED"}};
  for (const BackupEntry& e : vm.backups) {
    const store::BackupRecord& b = e.backup;
    const std::string check = VerificationText(e);
    rows.push_back({FormatIsoTime(b.time_us),
                    fmt::format("{}/{}/{}", Printable(b.vm), e.period, b.name()), b.method,
                    std::to_string(b.disks.size()), Bytes(Sum(b).logical, o.human),
                    e.sizes ? Bytes(e.sizes->stored, o.human) : "?",
                    e.sizes ? Bytes(e.sizes->unique, o.human) : "?",
                    check.empty() ? "never" : check});
  }
  fmt::print("{}", Table(rows));
  return Status::OK();
}

}  // namespace

Command ListCommand() {
  return {"list", "List VMs and their backups with their sizes",
          [](CLI::App& app, GlobalOptions& global) {
            auto vm = std::make_shared<std::string>();
            auto o = std::make_shared<OutputOptions>();
            app.add_option("vm", *vm, "Only this VM");
            AddOutputOptions(app, o.get());
            return [&global, vm, o] { return RunList(global, *vm, *o); };
          }};
}

Command ShowBackupsCommand() {
  return {"show-backups", "List one VM's backups, one a line, with their sizes",
          [](CLI::App& app, GlobalOptions& global) {
            auto vm = std::make_shared<std::string>();
            auto o = std::make_shared<OutputOptions>();
            app.add_option("vm", *vm, "The VM")->required();
            AddOutputOptions(app, o.get());
            return [&global, vm, o] { return RunShowBackups(global, *vm, *o); };
          }};
}

}  // namespace vmvault::tools
