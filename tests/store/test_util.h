// Helpers shared by the store tests: temporary directories and deterministic data.
#pragma once

#include "tests/temp_dir.h"

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "store/catalog.h"
#include "store/chunk_codec.h"
#include "store/repository.h"

namespace vmvault::store::testing {

using vmvault::testing::TempDir;

inline VmRecord Vm(std::string name) {
  VmRecord v;
  v.name = std::move(name);
  return v;
}

// Stores `plain` as a chunk of `repo` and returns its id.
inline ChunkId PutChunk(Repository* repo, const std::string& plain) {
  auto bytes =
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(plain.data()), plain.size());
  const ChunkId id = repo->hasher().Hash(bytes);
  std::string value;
  ChunkEncoder(1).Encode(bytes, &value);
  EXPECT_TRUE(repo->chunks().Put(id, value).ok());
  return id;
}

// Commits a one-disk backup of `vm` at `t` whose slots of `chunk_size` hold `ids` (zero
// ids are holes); the last slot is `tail` bytes short.
inline BackupRecord CommitBackup(Repository* repo, const std::string& vm, int64_t t,
                                 uint32_t chunk_size, const std::vector<ChunkId>& ids,
                                 uint64_t tail = 0) {
  BackupRecord b;
  b.vm = vm;
  b.time_us = t;
  DiskRecord d;
  d.name = "vda";
  d.chunk_size = chunk_size;
  d.virtual_size = ids.size() * chunk_size - tail;
  for (const ChunkId& id : ids) d.data_chunks += id.is_zero() ? 0 : 1;
  b.disks.push_back(d);
  EXPECT_TRUE(repo->catalog().CommitBackup(Vm(vm), &b, {ids}).ok());
  return b;
}

inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Compressible data: text-like repetition.
inline std::string TextBytes(size_t n, uint32_t seed) {
  std::string s;
  std::mt19937 rng(seed);
  while (s.size() < n) s += "line " + std::to_string(rng() % 1000) + " of some log file\n";
  s.resize(n);
  return s;
}

}  // namespace vmvault::store::testing
