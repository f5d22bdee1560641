#include "store/gc.h"

#include <sys/stat.h>

#include <filesystem>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace vmvault::store {
namespace {

using ChunkSet = std::unordered_set<ChunkId, ChunkIdHash>;

// Deletes in batches of this many chunks (two keys each).
constexpr size_t kDeleteBatch = 4096;

// Every chunk id any backup's index names.
Status MarkReferenced(const Catalog& catalog, ChunkSet* referenced, uint64_t* backups,
                      bool progress) {
  VV_ASSIGN_OR_RETURN(const std::vector<VmRecord> vms, catalog.ListVms());
  std::vector<BackupRecord> all;
  for (const VmRecord& vm : vms) {
    VV_ASSIGN_OR_RETURN(std::vector<BackupRecord> list, catalog.ListBackups(vm.name));
    for (BackupRecord& b : list) all.push_back(std::move(b));
  }
  Progress bar("gc: reading indexes", all.size(), progress);
  for (const BackupRecord& b : all) {
    for (uint32_t d = 0; d < b.disks.size(); ++d) {
      VV_RETURN_IF_ERROR(CheckDiskShape(b.disks[d], fmt::format("disk {} of backup {}",
                                                                b.disks[d].name, b.name())));
      VV_RETURN_IF_ERROR(catalog.ForEachIndexPage(
          b.id, d, b.disks[d], [&](uint64_t, const ChunkId* ids, size_t n) {
            for (size_t i = 0; i < n; ++i) {
              if (!ids[i].is_zero()) referenced->insert(ids[i]);
            }
            return true;
          }));
    }
    bar.Add(1);
  }
  bar.Finish();
  *backups = all.size();
  return Status::OK();
}

}  // namespace

uint64_t DiskUsage(const std::string& path) {
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

Result<GcStats> CollectGarbage(Repository& repo, const GcOptions& options) {
  if (!repo.writable()) return Status::ReadOnly("gc needs the repository open for writing");
  GcStats stats;
  const bool on_disk = !repo.path().empty();
  stats.disk_bytes_before = on_disk ? DiskUsage(repo.path()) : 0;
  // Room to write deletes and compact, also when a failed ingest filled the filesystem;
  // the reserve is made again at the end, after the space came back.
  if (on_disk && !options.dry_run) ReleaseReserve(repo.path());
  struct RemakeReserve {
    const Repository& repo;
    bool armed;
    void Now() {
      if (!armed) return;
      armed = false;
      if (Status s = MakeReserve(repo.path()); !s.ok()) {
        spdlog::warn("{} (gc will have less room next time the filesystem is full)",
                     s.ToString());
      }
    }
    ~RemakeReserve() { Now(); }
  } remake{repo, on_disk && !options.dry_run};

  ChunkSet referenced;
  VV_RETURN_IF_ERROR(
      MarkReferenced(repo.catalog(), &referenced, &stats.backups, options.progress));
  stats.referenced_chunks = referenced.size();

  // Sweep: collect first, delete after, so the scan never sees its own deletes.
  std::vector<ChunkId> garbage;
  VV_RETURN_IF_ERROR(repo.chunks().ForEach([&](const ChunkId& id, const ChunkMeta& meta) {
    ++stats.stored_chunks;
    if (referenced.erase(id) == 0) {
      garbage.push_back(id);
      stats.deleted_bytes += meta.stored_len;
    }
    return true;
  }));
  stats.missing_chunks = referenced.size();  // what is left was never found
  stats.deleted_chunks = garbage.size();
  if (options.dry_run || garbage.empty()) {
    stats.disk_bytes_after = stats.disk_bytes_before;
    return stats;
  }

  Progress bar("gc: deleting chunks", garbage.size(), options.progress);
  for (size_t i = 0; i < garbage.size(); i += kDeleteBatch) {
    const size_t end = std::min(garbage.size(), i + kDeleteBatch);
    VV_RETURN_IF_ERROR(repo.chunks().DeleteMany({garbage.data() + i, end - i}));
    bar.Add(end - i);
  }
  bar.Finish();
  // Durable before anything depends on the chunks being gone, then mounts reopen.
  VV_RETURN_IF_ERROR(repo.kv().Flush());
  VV_RETURN_IF_ERROR(repo.catalog().BumpGeneration());
  if (options.compact) {
    VV_RETURN_IF_ERROR(repo.kv().Compact(KvSpace::kChunkMeta));
    VV_RETURN_IF_ERROR(repo.kv().Compact(KvSpace::kChunks));
  }
  remake.Now();
  stats.disk_bytes_after = on_disk ? DiskUsage(repo.path()) : 0;
  return stats;
}

}  // namespace vmvault::store
