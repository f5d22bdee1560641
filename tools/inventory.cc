#include "tools/inventory.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "base/names.h"
#include "base/time_format.h"

namespace vmvault::tools {

Result<Inventory> ReadInventory(const store::Repository& repo, const std::string& only_vm,
                                bool progress) {
  Inventory inv;
  VV_ASSIGN_OR_RETURN(std::vector<store::VmRecord> vms, repo.catalog().ListVms());
  if (!only_vm.empty()) {
    std::erase_if(vms, [&](const store::VmRecord& v) { return v.name != only_vm; });
    if (vms.empty()) {
      return Status::NotFound(fmt::format("no VM named '{}' in {} (vmvault list shows them)",
                                          Printable(only_vm), Printable(repo.path())));
    }
  }
  auto sizes = store::ComputeSizes(repo.catalog(), repo.chunks(), progress);
  if (sizes.ok()) {
    inv.sizes = std::move(sizes).value();
  } else {
    inv.sizes_error = sizes.status();
  }
  for (store::VmRecord& vm : vms) {
    VmEntry entry;
    VV_ASSIGN_OR_RETURN(std::vector<store::BackupRecord> backups,
                        repo.catalog().ListBackups(vm.name));
    for (store::BackupRecord& b : backups) {
      BackupEntry be;
      be.period = PeriodOf(b.time_us, vm.period);
      be.verified = repo.catalog().GetVerification(b.id);
      if (inv.sizes) {
        auto it = inv.sizes->backups.find(b.id);
        if (it != inv.sizes->backups.end()) be.sizes = &it->second;
      }
      be.backup = std::move(b);
      entry.backups.push_back(std::move(be));
    }
    if (inv.sizes) {
      auto it = inv.sizes->vms.find(vm.name);
      if (it != inv.sizes->vms.end()) entry.sizes = &it->second;
    }
    entry.vm = std::move(vm);
    inv.vms.push_back(std::move(entry));
  }
  return inv;
}

nlohmann::json SizesJson(const store::UsageSizes* s) {
  using nlohmann::json;
  if (s == nullptr) {
    return {{"logical_bytes", nullptr}, {"stored_bytes", nullptr}, {"unique_bytes", nullptr}};
  }
  return {{"logical_bytes", s->logical}, {"stored_bytes", s->stored}, {"unique_bytes", s->unique}};
}

std::string VerificationText(const Result<std::optional<store::VerifyRecord>>& verified) {
  if (!verified.ok()) return "verification unreadable";
  const std::optional<store::VerifyRecord>& v = *verified;
  if (!v) return "";
  if (!v->ok) return "DAMAGED (see vmvault verify)";
  std::string text = "verified " + FormatIsoTime(v->time_us).substr(0, 10);
  if (v->sample_percent < 100) text += fmt::format(" ({:g}% sample)", v->sample_percent);
  return text;
}

}  // namespace vmvault::tools
