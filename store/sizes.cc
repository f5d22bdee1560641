#include "store/sizes.h"

#include <fmt/format.h>

#include <limits>
#include <unordered_map>
#include <vector>

#include "base/progress.h"

namespace vmvault::store {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kShared = kNone - 1;

// What the index pass learns of one stored chunk. Backups and VMs are positions in
// the lists ComputeSizes reads, so the entry stays small.
struct ChunkUse {
  uint32_t stored_len = 0;
  uint32_t backup = kNone;       // the one backup referencing it, or kShared
  uint32_t vm = kNone;           // the one VM referencing it, or kShared
  uint32_t last_backup = kNone;  // the backup that counted it last (distinct per backup)
  uint32_t last_vm = kNone;      // the VM that counted it last
};

uint32_t Owner(uint32_t current, uint32_t user) {
  return current == kNone || current == user ? user : kShared;
}

}  // namespace

Result<SizeReport> ComputeSizes(const Catalog& catalog, const ChunkStore& chunks, bool progress) {
  SizeReport report;
  std::unordered_map<ChunkId, ChunkUse, ChunkIdHash> uses;
  VV_RETURN_IF_ERROR(chunks.ForEach([&](const ChunkId& id, const ChunkMeta& meta) {
    uses[id].stored_len = meta.stored_len;
    ++report.repo.chunks;
    report.repo.stored += meta.stored_len;
    return true;
  }));

  VV_ASSIGN_OR_RETURN(const std::vector<VmRecord> vms, catalog.ListVms());
  std::vector<std::vector<BackupRecord>> backups;
  std::vector<uint64_t> backup_ids;  // by position
  std::vector<UsageSizes*> backup_sizes;
  for (const VmRecord& vm : vms) {
    VV_ASSIGN_OR_RETURN(std::vector<BackupRecord> list, catalog.ListBackups(vm.name));
    UsageSizes& v = report.vms[vm.name];
    for (const BackupRecord& b : list) {
      UsageSizes& s = report.backups[b.id];
      for (const DiskRecord& d : b.disks) s.logical += d.virtual_size;
      v.logical = s.logical;  // oldest first: the newest stays
      backup_ids.push_back(b.id);
      backup_sizes.push_back(&s);
    }
    backups.push_back(std::move(list));
  }
  if (backup_ids.size() >= kShared) {
    return Status::Unsupported(fmt::format("{} backups are too many to size", backup_ids.size()));
  }
  std::vector<UsageSizes*> vm_sizes;
  for (const VmRecord& vm : vms) vm_sizes.push_back(&report.vms.find(vm.name)->second);

  Progress bar("sizes: reading indexes", backup_ids.size(), progress);
  uint32_t position = 0;
  for (uint32_t v = 0; v < backups.size(); ++v) {
    for (const BackupRecord& b : backups[v]) {
      const uint32_t p = position++;
      UsageSizes& bs = *backup_sizes[p];
      UsageSizes& vs = *vm_sizes[v];
      for (uint32_t d = 0; d < b.disks.size(); ++d) {
        VV_RETURN_IF_ERROR(CheckDiskShape(
            b.disks[d], fmt::format("disk {} of backup {}", b.disks[d].name, b.name())));
        VV_RETURN_IF_ERROR(catalog.ForEachIndexPage(
            b.id, d, b.disks[d], [&](uint64_t, const ChunkId* ids, size_t n) {
              for (size_t i = 0; i < n; ++i) {
                if (ids[i].is_zero()) continue;
                auto it = uses.find(ids[i]);
                if (it == uses.end()) {
                  // Missing (damage): counted once, sized 0.
                  it = uses.emplace(ids[i], ChunkUse{}).first;
                  ++report.repo.missing_chunks;
                }
                ChunkUse& u = it->second;
                if (u.last_backup != p) {
                  if (u.last_backup == kNone) {
                    ++report.repo.referenced_chunks;
                    report.repo.referenced += u.stored_len;
                  }
                  u.last_backup = p;
                  u.backup = Owner(u.backup, p);
                  bs.stored += u.stored_len;
                  ++bs.chunks;
                }
                if (u.last_vm != v) {
                  u.last_vm = v;
                  u.vm = Owner(u.vm, v);
                  vs.stored += u.stored_len;
                  ++vs.chunks;
                }
              }
              return true;
            }));
      }
      bar.Add(1);
    }
  }
  bar.Finish();

  for (const auto& [id, u] : uses) {
    if (u.backup < kShared) backup_sizes[u.backup]->unique += u.stored_len;
    if (u.vm < kShared) vm_sizes[u.vm]->unique += u.stored_len;
  }
  report.repo.unreferenced = report.repo.stored - report.repo.referenced;
  return report;
}

}  // namespace vmvault::store
