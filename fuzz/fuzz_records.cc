// The catalog's decoders on untrusted bytes: backup and VM records (the JSON a
// repository holds, shown as manifest.json), disk summaries, and index pages read back
// through Catalog::ReadIndexPage and ForEachIndexPage. A record that decodes must
// encode and decode to the same record; nothing may crash, leak or overflow.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "store/catalog.h"
#include "store/disk_summary.h"
#include "store/kv_engine.h"

using vmvault::fuzz::Check;
using namespace vmvault::store;

namespace {

void Records(std::string_view in) {
  if (auto b = DecodeBackupRecord(in); b.ok()) {
    auto again = DecodeBackupRecord(EncodeBackupRecord(*b));
    Check(again.ok() && EncodeBackupRecord(*again) == EncodeBackupRecord(*b));
    for (const DiskRecord& d : b->disks) {
      if (CheckDiskShape(d, "disk").ok()) Check(SlotCount(d) >= 1 || d.virtual_size == 0);
    }
  }
  if (auto v = DecodeVmRecord(in); v.ok()) {
    auto again = DecodeVmRecord(EncodeVmRecord(*v));
    Check(again.ok() && EncodeVmRecord(*again) == EncodeVmRecord(*v));
  }
  if (auto s = DecodeDiskSummary(in); s.ok()) {
    auto again = DecodeDiskSummary(EncodeDiskSummary(*s));
    Check(again.ok() && EncodeDiskSummary(*again) == EncodeDiskSummary(*s));
  }
}

// The first bytes choose the disk's shape and which page the rest is stored as.
void IndexPages(std::string_view in) {
  if (in.size() < 3) return;
  const uint32_t chunk_size = kMinChunkSize << (static_cast<uint8_t>(in[0]) % 7);
  const uint64_t pages = 1 + static_cast<uint8_t>(in[1]) % 3;
  const uint64_t page = static_cast<uint8_t>(in[2]) % (pages + 1);  // may lie past the end
  in.remove_prefix(3);

  MemKvEngine kv;
  Catalog catalog(&kv);
  BackupRecord b;
  b.vm = "fuzz";
  b.time_us = 1'790'000'000'000'000;
  DiskRecord d;
  d.name = "vda";
  d.chunk_size = chunk_size;
  d.virtual_size = pages * kIndexPageSlots * uint64_t{chunk_size} - 1;
  b.disks.push_back(d);
  VmRecord vm;
  vm.name = "fuzz";
  DiskIndex index(SlotCount(d));
  if (!catalog.CommitBackup(vm, &b, {index}).ok()) return;
  // Overwrite (or add) one stored page with the input, as damage on disk would.
  std::string key;
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>(b.id >> (8 * i)));
  for (int i = 3; i >= 0; --i) key.push_back(0);
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>(page >> (8 * i)));
  KvBatch batch;
  batch.Put(KvSpace::kIndex, key, in);
  if (!kv.Write(batch, true).ok()) return;

  std::vector<ChunkId> slots;
  for (uint64_t p = 0; p <= pages; ++p) {
    if (catalog.ReadIndexPage(b.id, 0, p, &slots).ok()) Check(slots.size() == kIndexPageSlots);
  }
  uint64_t seen = 0;
  (void)catalog.ForEachIndexPage(b.id, 0, d, [&](uint64_t p, const ChunkId*, size_t n) {
    Check(p < pages && n <= kIndexPageSlots);
    seen += n;
    return true;
  });
  Check(seen <= SlotCount(d));
  (void)catalog.ReadDiskSummary(b.id, 0, d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  Records(in);
  IndexPages(in);
  return 0;
}
