// Real FUSE mounts of a real on-disk repository. Each test commits backups with a
// writer, runs fs_mount_helper (RunMount) in a child process, and checks the mount
// with ordinary system calls.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "store/verify.h"
#include "store/vm_state.h"
#include "tests/fs/mount_fixture.h"
#include "tests/fs/view_file_util.h"

namespace vmvault::fs::testing {
namespace {

TEST_F(MountTest, TreeAttributesAndXattrs) {
  Mount();
  EXPECT_EQ(List(mnt_), (std::set<std::string>{".", "..", "web"}));
  EXPECT_EQ(List(mnt_ + "/web"), (std::set<std::string>{".", "..", "2026-11", "latest"}));
  char target[256] = {};
  ASSERT_GT(readlink((mnt_ + "/web/latest").c_str(), target, sizeof target - 1), 0);
  EXPECT_EQ(std::string(target), "2026-11/" + first_.name());
  const std::string dir = BackupDir(first_);
  EXPECT_EQ(List(dir), (std::set<std::string>{".", "..", "manifest.json", "vda.qcow2", "vda.raw", "vda.vhdx",
                                  "vda.vmdk"}));
  // Through the symlink too.
  EXPECT_EQ(List(mnt_ + "/web/latest"), List(dir));

  struct stat st;
  ASSERT_EQ(stat((dir + "/vda.raw").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), disk_.size);
  EXPECT_EQ(st.st_mtim.tv_sec, TestTime() / 1'000'000);
  EXPECT_EQ(st.st_blocks, static_cast<blkcnt_t>(13 * kCs / 512));
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  ASSERT_EQ(stat((mnt_ + "/web").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, TestTime() / 1'000'000);

  const std::string manifest = ReadAll(dir + "/manifest.json");
  EXPECT_NE(manifest.find("\"vm\": \"web\""), std::string::npos) << manifest;
  EXPECT_NE(manifest.find("\"file\": \"vda.raw\""), std::string::npos);

  char value[128] = {};
  ssize_t n = getxattr((mnt_ + "/web").c_str(), "user.vmvault.tier", value, sizeof value);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(value, n), "hot");
  n = getxattr((mnt_ + "/web").c_str(), "user.vmvault.origin", value, sizeof value);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(value, n), "qemu:///system/web");
  EXPECT_EQ(getxattr((mnt_ + "/web").c_str(), "user.nope", value, sizeof value), -1);
  EXPECT_EQ(errno, ENODATA);

  EXPECT_EQ(stat((mnt_ + "/nope").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  struct statvfs vfs;
  ASSERT_EQ(statvfs(mnt_.c_str(), &vfs), 0);
  EXPECT_TRUE(vfs.f_flag & ST_RDONLY);
  EXPECT_EQ(vfs.f_bavail, 0u);
}

// The schedule's state of a VM shows as user.vmvault.state on its directory, read when
// asked: the schedule writes states without a new backup, so no tree rebuild shows them.
TEST_F(MountTest, TheVmStateXattrFollowsTheSchedule) {
  Mount();
  const std::string vm = mnt_ + "/web";
  char value[64] = {};
  EXPECT_EQ(getxattr(vm.c_str(), "user.vmvault.state", value, sizeof value), -1);
  EXPECT_EQ(errno, ENODATA);  // never scheduled
  auto state_is = [&](std::string_view want) {
    // A bound against hanging: the mount looks again at most once a second.
    for (int i = 0; i < 100; ++i) {
      const ssize_t n = getxattr(vm.c_str(), "user.vmvault.state", value, sizeof value);
      if (n > 0 && std::string_view(value, n) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  for (store::VmState s : {store::VmState::kClean, store::VmState::kArchived}) {
    store::VmStateRecord rec;
    rec.state = s;
    ASSERT_TRUE(store::PutVmStates(writer_->kv(), {{"web", rec}}).ok());
    EXPECT_TRUE(state_is(store::VmStateName(s))) << store::VmStateName(s);
  }
  char names[512] = {};
  const ssize_t n = listxattr(vm.c_str(), names, sizeof names);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(names, n).find(std::string("user.vmvault.state") + '\0'),
            std::string::npos);
}

TEST_F(MountTest, BytesMatchAndSeekDataHoleWork) {
  Mount();
  const std::string path = BackupDir(first_) + "/vda.raw";
  const std::string all = ReadAll(path);
  ASSERT_EQ(all.size(), disk_.size);
  EXPECT_TRUE(all == ExpectedBytes(disk_, kCs, 0, disk_.size));

  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::string buf(3 * kCs, '\0');
      for (int i = 0; i < 100; ++i) {
        const uint64_t off = rng() % disk_.size;
        const size_t len = 1 + rng() % buf.size();
        const ssize_t n = pread(fd, buf.data(), len, static_cast<off_t>(off));
        if (n < 0 || buf.compare(0, n, ExpectedBytes(disk_, kCs, off, len)) != 0) bad++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);

  EXPECT_EQ(lseek(fd, 0, SEEK_DATA), 0);
  EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), 8 * kCs);
  EXPECT_EQ(lseek(fd, 8 * kCs, SEEK_DATA), 20 * kCs);
  EXPECT_EQ(lseek(fd, 21 * kCs + 5, SEEK_HOLE), 24 * kCs);
  EXPECT_EQ(lseek(fd, 24 * kCs, SEEK_DATA), 40 * kCs);
  EXPECT_EQ(lseek(fd, 40 * kCs, SEEK_HOLE), static_cast<off_t>(disk_.size));
  EXPECT_EQ(lseek(fd, static_cast<off_t>(disk_.size), SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  close(fd);
}

// The mount leaves the holes at the end of a page-cache read out of its reply, for the
// kernel to fill with zeros (fs/fuse_ops.cc). Every way of reading must still see the
// disk's bytes and its whole size: buffered reads, mmap, O_DIRECT reads (which take a
// short read for the end of the file) and a loop device reading with direct I/O. The
// disk ends in a whole 1 MiB read of holes.
TEST_F(MountTest, HolesReadAsZerosThroughEveryKindOfRead) {
  DiskSpec sparse;
  sparse.size = 64 * kCs;  // 4 MiB
  sparse.seed = 7;
  sparse.has_data = [](uint64_t slot) { return slot == 0 || slot == 17 || slot == 33; };
  auto b = CommitDisks(writer_.get(), MakeVm("sparse"), TestTime(), {sparse});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Mount();
  const std::string path = BackupDir(*b, "sparse") + "/vda.raw";
  const std::string want = ExpectedBytes(sparse, kCs, 0, sparse.size);
  auto size_of = [&] {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  };

  EXPECT_TRUE(ReadAll(path) == want);
  ASSERT_EQ(size_of(), sparse.size);   // a short reply did not end the file early (nor may
                                       // the mmap below meet the end: SIGBUS)
  EXPECT_TRUE(ReadAll(path) == want);  // from the page cache

  {
    const int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    void* map = mmap(nullptr, sparse.size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    ASSERT_NE(map, MAP_FAILED);
    EXPECT_TRUE(std::string_view(static_cast<const char*>(map), sparse.size) == want);
    munmap(map, sparse.size);
  }

  // Direct reads, each of one whole MiB: not one may come back short.
  auto read_direct = [&](const std::string& file) {
    const int fd = open(file.c_str(), O_RDONLY | O_DIRECT);
    EXPECT_GE(fd, 0) << file << ": " << std::strerror(errno);
    if (fd < 0) return std::string();
    void* buf = nullptr;
    EXPECT_EQ(posix_memalign(&buf, 4096, 1 << 20), 0);
    std::string got;
    for (uint64_t off = 0; off < sparse.size; off += 1 << 20) {
      const ssize_t n = pread(fd, buf, 1 << 20, static_cast<off_t>(off));
      EXPECT_EQ(n, 1 << 20) << file << " at " << off;
      if (n <= 0) break;
      got.append(static_cast<const char*>(buf), n);
    }
    free(buf);
    close(fd);
    return got;
  };
  EXPECT_TRUE(read_direct(path) == want);

  const CommandResult attach =
      RunCommand("losetup -f --show -r --direct-io=on " + ShellQuote(path));
  ASSERT_EQ(attach.exit_code, 0) << attach.output;
  struct Detach {  // before the mount goes, whatever fails
    std::string loop;
    ~Detach() { EXPECT_EQ(RunCommand("losetup -d " + loop).exit_code, 0) << loop; }
  } detach{attach.output.substr(0, attach.output.find('\n'))};
  ASSERT_EQ(detach.loop.rfind("/dev/loop", 0), 0u) << attach.output;
  const CommandResult dio = RunCommand("losetup -n -O DIO " + detach.loop);
  EXPECT_NE(dio.output.find('1'), std::string::npos) << "no direct I/O: " << dio.output;
  EXPECT_TRUE(read_direct(detach.loop) == want);
}

TEST_F(MountTest, WritesFailWithErofs) {
  Mount();
  const std::string dir = BackupDir(first_);
  const std::string path = dir + "/vda.raw";
  for (int flags : {O_RDWR, O_WRONLY}) {
    errno = 0;
    EXPECT_EQ(open(path.c_str(), flags), -1);
    EXPECT_EQ(errno, EROFS);
  }
  EXPECT_EQ(open((dir + "/new").c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(mkdir((mnt_ + "/x").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(unlink(path.c_str()), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(truncate(path.c_str(), 0), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(setxattr((mnt_ + "/web").c_str(), "user.x", "1", 1, 0), -1);
  EXPECT_EQ(errno, EROFS);
}

TEST_F(MountTest, InodesSurviveARemount) {
  const std::vector<std::string> rel = {"", "/web", "/web/latest", "/web/2026-11",
                                        "/web/2026-11/" + first_.name(),
                                        "/web/2026-11/" + first_.name() + "/vda.raw",
                                        "/web/2026-11/" + first_.name() + "/manifest.json"};
  auto inodes = [&] {
    std::vector<ino_t> out;
    for (const std::string& r : rel) {
      struct stat st;
      EXPECT_EQ(lstat((mnt_ + r).c_str(), &st), 0) << r;
      out.push_back(st.st_ino);
    }
    return out;
  };
  Mount();
  const std::vector<ino_t> before = inodes();
  Unmount();
  ASSERT_FALSE(IsMounted(mnt_));
  Mount();
  EXPECT_EQ(inodes(), before);
  EXPECT_EQ(before[0], 1u);
}

TEST_F(MountTest, NewBackupAppearsWhileMounted) {
  Mount();
  ASSERT_EQ(List(mnt_ + "/web/2026-11").size(), 3u);
  DiskSpec d2 = disk_;
  d2.seed = 99;
  auto b = CommitDisks(writer_.get(), MakeVm("web"), TestTime(60), {d2}, first_.id);
  ASSERT_TRUE(b.ok());
  auto db = CommitDisks(writer_.get(), MakeVm("db"), TestTime(60), {d2});
  ASSERT_TRUE(db.ok());
  const std::string path = BackupDir(*b) + "/vda.raw";
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    struct stat st;
    seen = stat(path.c_str(), &st) == 0;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(seen) << "the new backup did not appear within 10 s";
  EXPECT_TRUE(ReadAll(path) == ExpectedBytes(d2, kCs, 0, d2.size));
  EXPECT_TRUE(List(mnt_).count("db"));
  char target[256] = {};
  for (int i = 0; i < 50; ++i) {
    std::fill(std::begin(target), std::end(target), 0);
    readlink((mnt_ + "/web/latest").c_str(), target, sizeof target - 1);
    if (std::string(target) == "2026-11/" + b->name()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(std::string(target), "2026-11/" + b->name());
}

// A verify changes what a backup's manifest.json says. The running mount shows the new
// text whole (the kernel keeps a file's size for its inode number, so the changed file
// gets another one), and a reader that opened the old text reads that to its end.
TEST_F(MountTest, AManifestShowsAVerifyMadeWhileMounted) {
  Mount();
  const std::string path = BackupDir(first_) + "/manifest.json";
  const std::string before = ReadAll(path);
  ASSERT_NE(before.find("\"verified\": null"), std::string::npos) << before;
  const int old_fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(old_fd, 0);
  // A reader in the backup directory looks the name up there, not from the root.
  const int dir_fd = open(BackupDir(first_).c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir_fd, 0);
  auto read_in_dir = [&] {
    std::string text;
    const int fd = openat(dir_fd, "manifest.json", O_RDONLY);
    if (fd < 0) return text;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    close(fd);
    return text;
  };
  ASSERT_EQ(read_in_dir(), before);

  store::VerifyRecord v;
  v.time_us = TestTime(60);
  v.chunks = 13;
  ASSERT_TRUE(writer_->catalog().RecordVerification(first_.id, v).ok());
  std::string after;
  for (int i = 0; i < 100; ++i) {
    after = read_in_dir();
    if (after != before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  close(dir_fd);
  ASSERT_NE(after, before) << "the verify did not show within 10 s";
  EXPECT_EQ(ReadAll(path), after);
  const auto j = nlohmann::json::parse(after, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << after;
  EXPECT_EQ(j["verified"]["chunks"], 13) << after;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), after.size());

  std::string old_text(before.size() + 100, '\0');
  const ssize_t n = pread(old_fd, old_text.data(), old_text.size(), 0);
  close(old_fd);
  ASSERT_GE(n, 0);
  old_text.resize(static_cast<size_t>(n));
  EXPECT_EQ(old_text, before);
}

TEST_F(MountTest, CorruptChunkGivesEioForItsRangeOnly) {
  // Overwrite the stored value of slot 2 with a valid encoding of other bytes.
  const std::string bytes = testing::SlotBytes(disk_, 2, kCs);
  const store::ChunkId id = writer_->hasher().Hash(
      {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  std::string other(kCs, 'q'), value;
  store::ChunkEncoder(1).Encode({reinterpret_cast<const uint8_t*>(other.data()), other.size()},
                                &value);
  store::KvBatch batch;
  batch.Put(store::KvSpace::kChunks, id.key(), value);
  ASSERT_TRUE(writer_->kv().Write(batch, true).ok());

  Mount();
  const std::string path = BackupDir(first_) + "/vda.raw";
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string buf(4096, '\0');
  errno = 0;
  EXPECT_EQ(pread(fd, buf.data(), buf.size(), 2 * kCs + 8192), -1);
  EXPECT_EQ(errno, EIO);
  for (uint64_t off : {uint64_t{0}, uint64_t{kCs}, 3 * uint64_t{kCs} + 4096, 20 * uint64_t{kCs}}) {
    ASSERT_EQ(pread(fd, buf.data(), buf.size(), static_cast<off_t>(off)), 4096) << off;
    EXPECT_TRUE(buf == ExpectedBytes(disk_, kCs, off, 4096)) << off;
  }
  close(fd);
}

}  // namespace

// A damaged index page, the second of three of a 512 MiB disk, through the engine:
// `damage` rewrites its key and value into the batch. verify names the backup, the
// disk and the page, and the mount answers EIO for exactly the range the page covers,
// never zeros, while the rest of the disk reads as it was.
void MountTest::CheckIndexPageDamage(
    const std::function<void(const std::string& key, const std::string& value,
                             store::KvBatch* batch)>& damage) {
  DiskSpec big;
  big.name = "big";
  constexpr uint64_t kPage = uint64_t{store::kIndexPageSlots} * kCs;  // bytes a page covers
  big.size = 2 * kPage + 10 * kCs;                                     // three pages
  big.seed = 5;
  big.has_data = [](uint64_t slot) { return slot % 700 == 3 || slot % 4096 == 4095; };
  auto b = CommitDisks(writer_.get(), MakeVm("bulk"), TestTime(60), {big});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  // The second page of that disk: its key ends in the page number.
  std::string key, value;
  ASSERT_TRUE(writer_->kv()
                  .Scan(store::KvSpace::kIndex, "",
                        [&](std::string_view k, std::string_view v) {
                          if (v.size() == store::kIndexPageSlots * 16 && k.size() >= 8 &&
                              k.substr(k.size() - 8) == std::string("\0\0\0\0\0\0\0\1", 8)) {
                            key = k;
                            value = v;
                          }
                          return true;
                        })
                  .ok());
  ASSERT_FALSE(key.empty());
  store::KvBatch batch;
  damage(key, value, &batch);
  ASSERT_TRUE(writer_->kv().Write(batch, true).ok());

  auto report = store::Verify(*writer_, {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->ok());
  for (const store::BackupVerdict& v : report->backups) {
    if (v.backup.id != b->id) {
      EXPECT_TRUE(v.problems.empty()) << v.backup.vm;
      continue;
    }
    ASSERT_FALSE(v.problems.empty());
    const std::string& named = v.problems.back();
    EXPECT_NE(named.find("big"), std::string::npos) << named;
    EXPECT_NE(named.find("page 1"), std::string::npos) << named;
  }

  Mount();
  const std::string path = BackupDir(*b, "bulk") + "/big.raw";
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string buf(4096, '\0');
  // Every read inside the page's range fails: data slots, holes, its first and last bytes.
  for (uint64_t off : {kPage, kPage + 3 * kCs, kPage + 5 * kCs + 4096, kPage + 703 * kCs,
                       2 * kPage - 4096}) {
    errno = 0;
    EXPECT_EQ(pread(fd, buf.data(), buf.size(), static_cast<off_t>(off)), -1) << off;
    EXPECT_EQ(errno, EIO) << off;
  }
  // A read across the page's start stops short at it, or fails; never zeros past it.
  const ssize_t across = pread(fd, buf.data(), buf.size(), static_cast<off_t>(kPage - 2048));
  EXPECT_TRUE(across == -1 || across == 2048) << across;
  if (across == 2048) {
    EXPECT_TRUE(buf.substr(0, 2048) == ExpectedBytes(big, kCs, kPage - 2048, 2048));
  }
  // The pages before and after read byte for byte, data and holes alike.
  for (uint64_t off : {uint64_t{0}, 3 * uint64_t{kCs}, 4095 * uint64_t{kCs},
                       kPage - 4096, 2 * kPage, 2 * kPage + 3 * kCs, big.size - 4096}) {
    ASSERT_EQ(pread(fd, buf.data(), buf.size(), static_cast<off_t>(off)), 4096) << off;
    EXPECT_TRUE(buf == ExpectedBytes(big, kCs, off, 4096)) << off;
  }
  close(fd);
  // The compacted views refuse the page too, and the other backup is untouched.
  for (const char* image : {"/big.qcow2", "/big.vhdx"}) {
    fd = open((BackupDir(*b, "bulk") + image).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << image;
    std::string all(1 << 20, '\0');
    bool failed = false;
    for (off_t off = 0; !failed; off += static_cast<off_t>(all.size())) {
      const ssize_t n = pread(fd, all.data(), all.size(), off);
      if (n <= 0) {
        failed = n < 0;
        break;
      }
    }
    EXPECT_TRUE(failed) << image << " read through the damaged page";
    close(fd);
  }
  EXPECT_TRUE(ReadAll(BackupDir(first_) + "/vda.raw") == ExpectedBytes(disk_, kCs, 0, disk_.size));
}

namespace {

// Cut short, as a torn or corrupted value would be.
TEST_F(MountTest, CorruptIndexPageGivesEioForItsRangeOnly) {
  CheckIndexPageDamage([](const std::string& key, const std::string& value, store::KvBatch* b) {
    b->Put(store::KvSpace::kIndex, key, value.substr(0, 100 * 16));
  });
}

// Gone as a whole while the backup's record stays: the summary stored at commit says
// the page held data, so it is not a page of holes.
TEST_F(MountTest, DeletedIndexPageGivesEioForItsRangeOnly) {
  CheckIndexPageDamage([](const std::string& key, const std::string&, store::KvBatch* b) {
    b->Delete(store::KvSpace::kIndex, key);
  });
}

// Chunks that RocksDB has flushed out of its memtable (into blob files) are read
// through a different path than the write-ahead log the follower replays.
TEST_F(MountTest, ReadsFlushedChunks) {
  ASSERT_TRUE(writer_->kv().Compact(store::KvSpace::kChunks).ok());
  ASSERT_TRUE(writer_->kv().Compact(store::KvSpace::kIndex).ok());
  Mount();
  const std::string path = BackupDir(first_) + "/vda.raw";
  EXPECT_TRUE(ReadAll(path) == ExpectedBytes(disk_, kCs, 0, disk_.size));
}

TEST_F(MountTest, MemoryStaysBoundedWithTheDefaultCache) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer shadow memory and quarantine make RSS meaningless; the release "
                  "build runs this test";
#endif
  DiskSpec big;
  big.name = "big";
  big.size = 160ull << 20;  // well over the 64 MiB chunk cache
  big.seed = 7;
  auto b = CommitDisks(writer_.get(), MakeVm("bulk"), TestTime(), {big});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Mount();
  const std::string path = BackupDir(*b, "bulk") + "/big.raw";
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<std::thread> readers;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      std::string buf(1 << 20, '\0');
      // Each reader streams the whole disk from its own starting point.
      for (uint64_t i = 0; i < big.size >> 20; ++i) {
        const uint64_t off = (((i + 40 * t) % (big.size >> 20)) << 20);
        if (pread(fd, buf.data(), buf.size(), static_cast<off_t>(off)) != 1 << 20) bad++;
      }
    });
  }
  for (auto& r : readers) r.join();
  close(fd);
  EXPECT_EQ(bad.load(), 0);
  const uint64_t peak = PeakRss(child_);
  EXPECT_GT(peak, 0u);
  EXPECT_LT(peak, 256ull << 20) << "peak RSS " << (peak >> 20) << " MiB";
  std::printf("mount peak RSS: %llu MiB\n", static_cast<unsigned long long>(peak >> 20));
}

TEST_F(MountTest, DaemonizesUnlessForeground) {
  Mount(/*foreground=*/false);
  EXPECT_FALSE(PidsMentioning(mnt_).empty());
  const std::string path = BackupDir(first_) + "/vda.raw";
  EXPECT_TRUE(ReadAll(path) == ExpectedBytes(disk_, kCs, 0, disk_.size));
  ASSERT_EQ(std::system(("fusermount3 -u '" + mnt_ + "'").c_str()), 0);
  for (int i = 0; i < 300 && !PidsMentioning(mnt_).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(PidsMentioning(mnt_).empty()) << "the daemon did not exit after unmount";
}

TEST_F(MountTest, RelativePathsWorkInTheForegroundAndInTheBackground) {
  for (bool foreground : {true, false}) {
    Mount(foreground, /*relative=*/true);
    EXPECT_TRUE(ReadAll(BackupDir(first_) + "/vda.raw") ==
                ExpectedBytes(disk_, kCs, 0, disk_.size));
    Unmount();
    EXPECT_FALSE(IsMounted(mnt_));
  }
}

TEST_F(MountTest, SigtermUnmountsCleanly) {
  Mount();
  ASSERT_EQ(kill(child_, SIGTERM), 0);
  int status = 0;
  for (int i = 0; i < 500 && waitpid(child_, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  child_ = -1;
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(MountTest, ABackgroundMountThatCannotComeUpSaysWhy) {
  // The repository opens (so the pre-fork check passes) but its catalog does not read:
  // the child fails after the fork, and the command must still fail with its reason.
  store::KvBatch bad;
  bad.Put(store::KvSpace::kCatalog, "vm/zz-broken", "{not json");
  ASSERT_TRUE(writer_->kv().Write(bad, /*sync=*/true).ok());
  const std::string cmd = std::string(VV_MOUNT_HELPER) + " '" + repo_path_ + "' '" + mnt_ +
                          "' 2>" + tmp_.path() + "/err";
  const int rc = std::system(cmd.c_str());
  EXPECT_NE(rc, 0);
  EXPECT_NE(ReadAll(tmp_.path() + "/err").find("VM record does not decode"), std::string::npos)
      << ReadAll(tmp_.path() + "/err");
  EXPECT_FALSE(IsMounted(mnt_));
  for (int i = 0; i < 300 && !PidsMentioning(mnt_).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(PidsMentioning(mnt_).empty()) << "the failed mount left a process behind";
}

TEST_F(MountTest, HelperReportsANonEmptyMountpoint) {
  std::ofstream(mnt_ + "/junk") << "x";
  const std::string cmd = std::string(VV_MOUNT_HELPER) + " '" + repo_path_ + "' '" + mnt_ +
                          "' -f 2>" + tmp_.path() + "/err";
  const int rc = std::system(cmd.c_str());
  EXPECT_NE(rc, 0);
  EXPECT_NE(ReadAll(tmp_.path() + "/err").find("not empty"), std::string::npos);
  EXPECT_FALSE(IsMounted(mnt_));
}

}  // namespace
}  // namespace vmvault::fs::testing
