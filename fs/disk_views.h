// DiskViews: the views of one disk of a backup, built the way the mount shows them and
// the way restore writes them: the raw view, the qcow2 and VHDX images laid over it,
// and the partition windows. The qcow2, VHDX and partition views share one DataMap,
// loaded from the disk summary the first time any of them is used (fs/view.h,
// View::Load); building a DiskViews does no I/O.
//
// The catalog and the page cache are not owned and must outlive the views. The views
// are immutable and thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "base/partition_table.h"
#include "fs/data_map.h"
#include "fs/index_page_cache.h"
#include "fs/view.h"
#include "store/catalog.h"

namespace vmvault::fs {

struct DiskViews {
  struct PartitionView {
    Partition partition;
    std::shared_ptr<const View> view;
  };
  std::shared_ptr<const View> raw;
  std::shared_ptr<const View> qcow2;
  std::shared_ptr<const View> vhdx;
  // The partitions recorded at ingest that lie on the disk, in number order.
  std::vector<PartitionView> partitions;
};

// The identity of a disk's image views (VHDX ids, VMDK CID): the same for the same
// repository, backup and disk, in the mount and in a restore, and different across
// repositories. `repo_seed` is RepoSeed(the repository's config id).
uint64_t RepoSeed(std::string_view repo_id);
uint64_t DiskIdentity(uint64_t repo_seed, uint64_t backup_id, uint32_t disk);

// The views of disk `disk` (its position in b.disks). `identity` seeds the identifiers
// the images carry (VHDX disk and file ids), so the same backup gives the same bytes.
DiskViews MakeDiskViews(const store::Catalog* catalog, IndexPageCache* pages,
                        const store::BackupRecord& b, uint32_t disk, uint64_t identity);

}  // namespace vmvault::fs
