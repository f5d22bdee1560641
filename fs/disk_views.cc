#include "fs/disk_views.h"

#include <xxhash.h>

#include "fs/lazy.h"
#include "fs/qcow2_view.h"
#include "fs/raw_view.h"
#include "fs/slice_view.h"
#include "fs/vhdx_view.h"

namespace vmvault::fs {

uint64_t RepoSeed(std::string_view repo_id) {
  return XXH3_64bits(repo_id.data(), repo_id.size());
}

uint64_t DiskIdentity(uint64_t repo_seed, uint64_t backup_id, uint32_t disk) {
  return XXH3_64bits_withSeed(&backup_id, sizeof(backup_id), repo_seed + disk);
}

DiskViews MakeDiskViews(const store::Catalog* catalog, IndexPageCache* pages,
                        const store::BackupRecord& b, uint32_t disk, uint64_t identity) {
  const store::DiskRecord& d = b.disks[disk];
  DiskViews v;
  v.raw = std::make_shared<RawView>(pages, b.id, disk, d);
  // What a DataMap needs of the record: not its partitions or paths.
  store::DiskRecord shape;
  shape.virtual_size = d.virtual_size;
  shape.chunk_size = d.chunk_size;
  auto map = std::make_shared<Lazy<DataMap>>([catalog, pages, id = b.id, disk, shape] {
    return DataMap::Load(*catalog, pages, id, disk, shape);
  });
  auto load_map = [map] { return map->GetShared(); };
  v.qcow2 = std::make_shared<Qcow2View>(v.raw, load_map);
  v.vhdx = std::make_shared<VhdxView>(v.raw, load_map, identity);
  for (const Partition& p : d.partitions) {
    if (p.offset > d.virtual_size || p.length > d.virtual_size - p.offset) continue;
    v.partitions.push_back({p, std::make_shared<SliceView>(v.raw, p.offset, p.length, load_map)});
  }
  return v;
}

}  // namespace vmvault::fs
