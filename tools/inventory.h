// What the reporting commands (list, show-backups, status) read from a repository:
// every VM with its backups, each backup's last verification, and the sizes
// (store/sizes.h: one pass over every index, so read once per command).
//
// Plain values; ReadInventory is thread-safe as the repository is.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "store/catalog.h"
#include "store/repository.h"
#include "store/sizes.h"

namespace vmvault::tools {

struct BackupEntry {
  store::BackupRecord backup;
  std::string period;  // the period directory in the mount, e.g. "2026-11"
  // The last verification: nullopt when never verified; an error when the record does
  // not read (shown as such, not fatal).
  Result<std::optional<store::VerifyRecord>> verified = std::optional<store::VerifyRecord>();
  const store::UsageSizes* sizes = nullptr;  // null when the sizes could not be computed
};

struct VmEntry {
  store::VmRecord vm;
  std::vector<BackupEntry> backups;          // oldest first
  const store::UsageSizes* sizes = nullptr;  // null as above
};

struct Inventory {
  std::vector<VmEntry> vms;  // by name
  std::optional<store::SizeReport> sizes;
  Status sizes_error;  // why `sizes` is empty
};

// The VMs of `repo` (only `only_vm` when not empty: NotFound when there is none of that
// name), with their backups, verifications and sizes. A failure to compute the sizes
// is kept in sizes_error, so the listing still shows.
Result<Inventory> ReadInventory(const store::Repository& repo, const std::string& only_vm,
                                bool progress);

// {"logical_bytes", "stored_bytes", "unique_bytes"}, nulls when `s` is null.
nlohmann::json SizesJson(const store::UsageSizes* s);

// "verified 2026-11-22", "verified 2026-11-22 (5% sample)", "DAMAGED (see vmvault
// verify)", "verification unreadable", or "" when never verified.
std::string VerificationText(const Result<std::optional<store::VerifyRecord>>& verified);
inline std::string VerificationText(const BackupEntry& b) { return VerificationText(b.verified); }

}  // namespace vmvault::tools
