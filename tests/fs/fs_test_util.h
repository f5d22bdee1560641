// Helpers shared by the fs tests: deterministic disks committed straight through the
// store API (fs cannot use ingest), and temporary directories.
#pragma once

#include "tests/temp_dir.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "store/catalog.h"
#include "store/chunk_codec.h"
#include "store/repository.h"

namespace vmvault::fs::testing {

using vmvault::testing::TempDir;

// A disk whose bytes are a function of (seed, slot): data slots hold pseudo-random
// bytes (with a zero stretch in every fifth), hole slots hold zeros.
struct DiskSpec {
  std::string name = "vda";
  uint64_t size = 0;
  uint64_t seed = 1;
  std::function<bool(uint64_t slot)> has_data = [](uint64_t) { return true; };
  // Slots with equal (slot % dedup_period) share their bytes (0: none do).
  uint64_t dedup_period = 0;
  std::vector<Partition> partitions;  // recorded as found at ingest
  std::string source_path;            // recorded; "" is /images/<name>.img
};

inline uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The `len` bytes of data slot `slot` (len <= chunk size).
inline std::string SlotBytes(const DiskSpec& d, uint64_t slot, size_t len) {
  const uint64_t key = d.dedup_period != 0 ? slot % d.dedup_period : slot;
  std::string s(len, '\0');
  uint64_t state = SplitMix(d.seed * 1000003 + key);
  for (size_t i = 0; i < len; i += 8) {
    state = SplitMix(state);
    std::memcpy(s.data() + i, &state, std::min<size_t>(8, len - i));
  }
  if (key % 5 == 0) std::memset(s.data(), 0, std::min<size_t>(len, 1000));
  if (key % 5 == 0 && len > 1000) s[1000] = 'x';  // never all zero
  return s;
}

inline uint64_t SlotCount(uint64_t size, uint32_t chunk_size) {
  return (size + chunk_size - 1) / chunk_size;
}

inline bool SlotHasData(const DiskSpec& d, uint64_t slot) { return d.has_data(slot); }

// The bytes of [off, off + len) of the disk, cut at its end.
inline std::string ExpectedBytes(const DiskSpec& d, uint32_t cs, uint64_t off, size_t len) {
  std::string out;
  const uint64_t end = std::min(d.size, off + len);
  while (off < end) {
    const uint64_t slot = off / cs;
    const uint64_t slot_start = slot * cs;
    const size_t slot_len = static_cast<size_t>(std::min<uint64_t>(cs, d.size - slot_start));
    const size_t n = static_cast<size_t>(std::min<uint64_t>(end, slot_start + slot_len) - off);
    if (SlotHasData(d, slot)) {
      out += SlotBytes(d, slot, slot_len).substr(off - slot_start, n);
    } else {
      out.append(n, '\0');
    }
    off += n;
  }
  return out;
}

// Stores the chunks of `disks` and commits them as one backup. The chunk of the last,
// partial slot holds only the bytes inside the disk.
inline Result<store::BackupRecord> CommitDisks(store::Repository* repo, const store::VmRecord& vm,
                                               int64_t time_us, const std::vector<DiskSpec>& disks,
                                               std::optional<uint64_t> parent = std::nullopt,
                                               std::string config = "",
                                               std::string config_kind = "") {
  const uint32_t cs = repo->config().chunk_size;
  store::ChunkEncoder encoder(1);
  store::BackupRecord b;
  b.vm = vm.name;
  b.time_us = time_us;
  b.tier = vm.tier;
  b.method = "offline";
  b.parent_id = parent;
  b.host = "testhost";
  b.duration_us = 1'500'000;
  b.config = std::move(config);
  b.config_kind = std::move(config_kind);
  std::vector<store::DiskIndex> indexes;
  for (const DiskSpec& d : disks) {
    store::DiskRecord rec;
    rec.name = d.name;
    rec.virtual_size = d.size;
    rec.chunk_size = cs;
    rec.source_format = "raw";
    rec.source_path = d.source_path.empty() ? "/images/" + d.name + ".img" : d.source_path;
    rec.partitions = d.partitions;
    store::DiskIndex index(SlotCount(d.size, cs));
    std::string value;
    for (uint64_t slot = 0; slot < index.size(); ++slot) {
      if (!SlotHasData(d, slot)) continue;
      const size_t len = static_cast<size_t>(std::min<uint64_t>(cs, d.size - slot * cs));
      const std::string bytes = SlotBytes(d, slot, len);
      const std::span<const uint8_t> plain(reinterpret_cast<const uint8_t*>(bytes.data()), len);
      const store::ChunkId id = repo->hasher().Hash(plain);
      encoder.Encode(plain, &value);
      VV_RETURN_IF_ERROR(repo->chunks().Put(id, value));
      index[slot] = id;
      ++rec.data_chunks;
      rec.allocated_bytes += len;
      rec.bytes_read += len;
      rec.stored_bytes += value.size();
    }
    b.disks.push_back(rec);
    indexes.push_back(std::move(index));
  }
  VV_RETURN_IF_ERROR(repo->catalog().CommitBackup(vm, &b, indexes));
  return b;
}

inline store::VmRecord MakeVm(std::string name, Period period = Period::kMonth) {
  store::VmRecord vm;
  vm.name = std::move(name);
  vm.tier = "hot";
  vm.period = period;
  vm.created_us = 1'700'000'000'000'000;
  vm.origin = "qemu:///system/" + vm.name;
  return vm;
}

// 2026-11-21T03:30:00Z plus `seconds`.
inline int64_t TestTime(int64_t seconds = 0) {
  return (int64_t{1795231800} + seconds) * 1'000'000;
}

inline store::RepoConfig TestConfig(uint32_t chunk_size = 64 << 10) {
  store::RepoConfig c;
  c.chunk_size = chunk_size;
  c.zstd_level = 1;
  c.id = "test";
  return c;
}

}  // namespace vmvault::fs::testing
