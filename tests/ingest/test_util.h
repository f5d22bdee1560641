// Helpers shared by the ingest tests: a temporary directory, recorded qemu-img output,
// an in-memory Image that counts its reads and can fail on purpose, an opener serving
// such images, a reader that rebuilds a backed-up disk from the catalog and the chunk
// store, and hooks that log how they were called.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/file_util.h"
#include "base/image.h"
#include "ingest/command_runner.h"
#include "tests/temp_dir.h"
#include "ingest/image_source.h"
#include "ingest/subprocess.h"
#include "store/catalog.h"
#include "store/repository.h"

namespace vmvault::ingest::testing {

using vmvault::testing::TempDir;

// A recording made by testdata/record.sh.
inline CommandOutput Recorded(const std::string& name) {
  const std::string base = std::string(VV_SOURCE_DIR) + "/tests/ingest/testdata/" + name;
  CommandOutput out;
  auto rc = ReadFile(base + ".rc");
  auto so = ReadFile(base + ".out");
  auto se = ReadFile(base + ".err");
  EXPECT_TRUE(rc.ok() && so.ok() && se.ok()) << "missing recording " << name;
  if (!rc.ok() || !so.ok() || !se.ok()) return out;
  out.exit_code = std::stoi(*rc);
  out.stdout_text = *so;
  out.stderr_text = *se;
  return out;
}

// Random bytes from a fixed seed.
inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

// The bytes of a disk, shared by every reader of it. Counts and records reads; can be
// told to fail every read that touches one offset.
struct MemDisk {
  std::string bytes;
  std::vector<Extent> extents;  // what qemu-img map would say; default all data
  std::optional<uint64_t> fail_at;
  std::atomic<int> readers_opened{0};
  std::mutex mu;
  std::vector<Extent> reads;  // GUARDED_BY(mu), as (offset, length)

  std::vector<Extent> Reads() {
    std::lock_guard<std::mutex> lock(mu);
    return reads;
  }
};

class MemImage final : public Image {
 public:
  explicit MemImage(MemDisk* disk) : disk_(disk) {}
  uint64_t size() const override { return disk_->bytes.size(); }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    if (offset + out.size() > disk_->bytes.size()) return Status::IOError("read past the end");
    {
      std::lock_guard<std::mutex> lock(disk_->mu);
      disk_->reads.push_back({offset, out.size(), true});
    }
    if (disk_->fail_at && *disk_->fail_at >= offset && *disk_->fail_at < offset + out.size()) {
      return Status::IOError("injected read failure");
    }
    std::memcpy(out.data(), disk_->bytes.data() + offset, out.size());
    return Status::OK();
  }

 private:
  MemDisk* disk_;
};

// Serves MemDisks by the path of the image.
class MemSourceOpener final : public ImageSourceOpener {
 public:
  void Add(const std::string& path, MemDisk* disk) { disks_[path] = disk; }
  int opens() const { return opens_; }

  Result<std::unique_ptr<ImageSource>> Open(const ImageInfo& info, int readers) override {
    ++opens_;
    last_readers_ = readers;
    auto it = disks_.find(info.path);
    if (it == disks_.end()) return Status::NotFound("MemSourceOpener: no disk for " + info.path);
    return std::unique_ptr<ImageSource>(new Source(it->second));
  }
  int last_readers() const { return last_readers_; }

 private:
  class Source final : public ImageSource {
   public:
    explicit Source(MemDisk* disk) : disk_(disk) {}
    Result<std::unique_ptr<Image>> OpenReader() override {
      disk_->readers_opened.fetch_add(1);
      return std::unique_ptr<Image>(new MemImage(disk_));
    }

   private:
    MemDisk* disk_;
  };
  std::map<std::string, MemDisk*> disks_;
  int opens_ = 0;
  int last_readers_ = 0;
};

// Runs `argv`, which must succeed.
inline void MustRun(const std::vector<std::string>& argv) {
  auto out = RunProcess(argv);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->exit_code, 0) << FormatCommand(argv) << ": " << out->stderr_text;
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes a hook script at `path` that appends "EVENT ARGS... STATUS" to `log` and exits
// with `status`; returns `path`.
inline std::string LoggingHook(const std::string& path, const std::string& log, int status) {
  std::ofstream(path) << "#!/bin/sh\necho \"$VMVAULT_EVENT $* $VMVAULT_STATUS\" >> " << log
                      << "\nexit " << status << "\n";
  MustRun({"chmod", "755", path});
  return path;
}

// A new repository on disk at `path` with `chunk_size` chunks, open for writing.
inline std::unique_ptr<store::Repository> MakeRepository(const std::string& path,
                                                         uint32_t chunk_size) {
  store::RepoConfig config;
  config.chunk_size = chunk_size;
  EXPECT_TRUE(store::Repository::Init(path, config).ok());
  auto repo = store::Repository::Open(path, store::RepoMode::kWrite);
  EXPECT_TRUE(repo.ok()) << repo.status().ToString();
  return repo.ok() ? std::move(repo).value() : nullptr;
}

// Rebuilds disk `disk` of a committed backup from its index pages and the chunks.
inline Result<std::string> ReadBackupDisk(const store::Repository& repo,
                                          const store::BackupRecord& backup, uint32_t disk) {
  const store::DiskRecord& d = backup.disks.at(disk);
  std::string out(d.virtual_size, '\0');
  const uint64_t slots = (d.virtual_size + d.chunk_size - 1) / d.chunk_size;
  std::vector<store::ChunkId> page;
  std::string plain;
  for (uint64_t slot = 0; slot < slots; ++slot) {
    if (slot % store::kIndexPageSlots == 0) {
      VV_RETURN_IF_ERROR(
          repo.catalog().ReadIndexPage(backup.id, disk, slot / store::kIndexPageSlots, &page));
    }
    const store::ChunkId& id = page.at(slot % store::kIndexPageSlots);
    if (id.is_zero()) continue;
    VV_RETURN_IF_ERROR(repo.chunks().Read(id, &plain));
    const uint64_t off = slot * d.chunk_size;
    const uint64_t len = std::min<uint64_t>(d.chunk_size, d.virtual_size - off);
    if (plain.size() != len) {
      return Status::Corruption("chunk of slot " + std::to_string(slot) + " has " +
                                std::to_string(plain.size()) + " bytes, expected " +
                                std::to_string(len));
    }
    std::memcpy(out.data() + off, plain.data(), len);
  }
  return out;
}

// The number of chunks stored in the repository.
inline size_t CountChunks(const store::Repository& repo) {
  size_t n = 0;
  Status s = repo.chunks().ForEach([&](const store::ChunkId&, const store::ChunkMeta&) {
    ++n;
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return n;
}

}  // namespace vmvault::ingest::testing
