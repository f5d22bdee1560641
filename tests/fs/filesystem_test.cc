#include "fs/filesystem.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "store/gc.h"
#include "store/vm_state.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

using testing::CommitDisks;
using testing::DiskSpec;
using testing::MakeVm;
using testing::TestTime;

constexpr uint32_t kCs = 64 << 10;

class FilesystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = store::Repository::OpenInMemory(testing::TestConfig(kCs));
    disk_.size = 40 * kCs + 100;
    disk_.has_data = [](uint64_t slot) { return slot < 20 || slot == 30 || slot == 40; };
    auto b = CommitDisks(repo_.get(), MakeVm("web"), TestTime(), {disk_});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    clock_.Set(TestTime(100));
    FilesystemOptions o;
    o.clock = &clock_;
    o.uid = 1234;
    o.gid = 55;
    o.prefetch_threads = 2;
    o.readahead_bytes = 4 * kCs;
    auto fs = Filesystem::Create(repo_.get(), o);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(fs).value();
  }

  uint64_t Ino(std::string_view path) {
    const Node* n = fs_->tree()->FindPath(path);
    return n == nullptr ? 0 : n->ino;
  }

  std::unique_ptr<store::Repository> repo_;
  DiskSpec disk_;
  FakeClock clock_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(FilesystemTest, LookupAndGetAttr) {
  auto vm = fs_->Lookup(kRootInode, "web");
  ASSERT_TRUE(vm.ok());
  EXPECT_TRUE(S_ISDIR(vm->attr.st_mode));
  EXPECT_EQ(vm->attr.st_mode & 0777, 0555u);
  EXPECT_EQ(vm->attr.st_nlink, 3u);  // ., and one period directory
  EXPECT_EQ(vm->attr.st_uid, 1234u);
  EXPECT_EQ(vm->attr.st_gid, 55u);
  EXPECT_DOUBLE_EQ(vm->entry_timeout, 1.0);
  EXPECT_EQ(vm->attr.st_mtim.tv_sec, TestTime() / 1'000'000);

  const std::string dir = "/web/2026-11/2026-11-21T033000Z";
  auto file = fs_->Lookup(Ino(dir), "vda.raw");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(S_ISREG(file->attr.st_mode));
  EXPECT_EQ(file->attr.st_mode & 0777, 0444u);
  EXPECT_EQ(static_cast<uint64_t>(file->attr.st_size), disk_.size);
  EXPECT_EQ(file->attr.st_blocks, static_cast<blkcnt_t>((22 * kCs) / 512));  // 22 data slots
  EXPECT_EQ(file->attr.st_mtim.tv_sec, TestTime() / 1'000'000);
  EXPECT_DOUBLE_EQ(file->attr_timeout, 86400.0);
  EXPECT_EQ(file->attr.st_ino, Ino(dir + "/vda.raw"));

  auto attr = fs_->GetAttr(file->attr.st_ino);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->attr.st_size, file->attr.st_size);

  auto latest = fs_->Lookup(Ino("/web"), "latest");
  ASSERT_TRUE(latest.ok());
  EXPECT_TRUE(S_ISLNK(latest->attr.st_mode));
  EXPECT_EQ(*fs_->ReadLink(latest->attr.st_ino), "2026-11/2026-11-21T033000Z");
  EXPECT_FALSE(fs_->ReadLink(file->attr.st_ino).ok());

  auto missing = fs_->Lookup(kRootInode, "nope");
  EXPECT_EQ(missing.status().ToErrno(), ENOENT);
  EXPECT_EQ(fs_->GetAttr(999).status().ToErrno(), ENOENT);
  EXPECT_EQ(fs_->Lookup(file->attr.st_ino, "x").status().ToErrno(), ENOENT);
}

TEST_F(FilesystemTest, ReadDirListsDotEntriesAndChildren) {
  auto entries = fs_->ReadDir(Ino("/web"));
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].name, ".");
  EXPECT_EQ((*entries)[1].name, "..");
  EXPECT_EQ((*entries)[1].ino, kRootInode);
  EXPECT_EQ((*entries)[2].name, "2026-11");
  EXPECT_EQ((*entries)[2].mode, static_cast<uint32_t>(S_IFDIR | 0555));
  EXPECT_EQ((*entries)[3].name, "latest");
  EXPECT_TRUE(S_ISLNK((*entries)[3].mode));
  EXPECT_FALSE(fs_->ReadDir(Ino("/web/latest")).ok());
}

TEST_F(FilesystemTest, WritesAreReadOnly) {
  const uint64_t ino = Ino("/web/2026-11/2026-11-21T033000Z/vda.raw");
  for (int flags : {O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC}) {
    auto f = fs_->Open(ino, flags);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().ToErrno(), EROFS);
  }
  EXPECT_TRUE(fs_->Open(ino, O_RDONLY).ok());
  EXPECT_FALSE(fs_->Open(Ino("/web"), O_RDONLY).ok());
  EXPECT_EQ(fs_->Open(4242, O_RDONLY).status().ToErrno(), ENOENT);
}

TEST_F(FilesystemTest, ReadsAndSeeks) {
  auto f = fs_->Open(Ino("/web/2026-11/2026-11-21T033000Z/vda.raw"), O_RDONLY);
  ASSERT_TRUE(f.ok());
  OpenFile* file = f->get();
  ReadResult r;
  ASSERT_TRUE(fs_->Read(file, kCs - 10, 2 * kCs, &r).ok());
  EXPECT_TRUE(r.ToString() == testing::ExpectedBytes(disk_, kCs, kCs - 10, 2 * kCs));

  auto seek = [&](uint64_t off, int whence) { return *fs_->Lseek(file, off, whence); };
  EXPECT_EQ(seek(0, SEEK_DATA), std::optional<uint64_t>(0));
  EXPECT_EQ(seek(5, SEEK_HOLE), std::optional<uint64_t>(20 * kCs));
  EXPECT_EQ(seek(20 * kCs, SEEK_DATA), std::optional<uint64_t>(30 * kCs));
  EXPECT_EQ(seek(30 * kCs + 1, SEEK_HOLE), std::optional<uint64_t>(31 * kCs));
  EXPECT_EQ(seek(31 * kCs, SEEK_DATA), std::optional<uint64_t>(40 * kCs));
  EXPECT_EQ(seek(40 * kCs, SEEK_HOLE), std::optional<uint64_t>(disk_.size));
  EXPECT_EQ(seek(disk_.size, SEEK_DATA), std::nullopt);  // ENXIO
  EXPECT_EQ(seek(disk_.size, SEEK_HOLE), std::nullopt);
  EXPECT_EQ(seek(7, SEEK_SET), std::optional<uint64_t>(7));
  EXPECT_EQ(seek(0, SEEK_END), std::optional<uint64_t>(disk_.size));
  EXPECT_FALSE(fs_->Lseek(file, 0, 42).ok());
}

TEST_F(FilesystemTest, SequentialReadsPrefetchAhead) {
  auto f = fs_->Open(Ino("/web/2026-11/2026-11-21T033000Z/vda.raw"), O_RDONLY);
  ASSERT_TRUE(f.ok());
  for (uint64_t off = 0; off < 2 * kCs; off += kCs / 2) {
    ReadResult r;
    ASSERT_TRUE(fs_->Read(f->get(), off, kCs / 2, &r).ok());
  }
  // The second sequential read asks for the 4-chunk window after it: slots 1..4.
  const std::string slot4 = testing::SlotBytes(disk_, 4, kCs);
  const store::ChunkId id4 =
      repo_->hasher().Hash({reinterpret_cast<const uint8_t*>(slot4.data()), slot4.size()});
  for (int i = 0; i < 400 && fs_->cache().stats().entries < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(fs_->cache().stats().entries, 5u);
  EXPECT_TRUE(fs_->cache().ContainsOrPending(id4));
}

TEST_F(FilesystemTest, XattrsAndStatFs) {
  const uint64_t vm = Ino("/web");
  EXPECT_EQ(**fs_->GetXattr(vm, "user.vmvault.tier"), "hot");
  EXPECT_EQ(**fs_->GetXattr(vm, "user.vmvault.origin"), "qemu:///system/web");
  EXPECT_FALSE(fs_->GetXattr(vm, "user.other")->has_value());
  auto names = fs_->ListXattr(vm);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 3u);
  EXPECT_TRUE(fs_->ListXattr(kRootInode)->empty());
  // The schedule's state, once it has one: read when asked, listed only then.
  EXPECT_FALSE(fs_->GetXattr(vm, "user.vmvault.state")->has_value());
  store::VmStateRecord rec;
  rec.state = store::VmState::kBackupNecessary;
  ASSERT_TRUE(store::PutVmStates(repo_->kv(), {{"web", rec}}).ok());
  EXPECT_EQ(**fs_->GetXattr(vm, "user.vmvault.state"), "BACKUP_NECESSARY");
  EXPECT_EQ(fs_->ListXattr(vm)->size(), 4u);
  EXPECT_EQ(fs_->ListXattr(vm)->back(), "user.vmvault.state");
  EXPECT_FALSE(fs_->GetXattr(Ino("/web/latest"), "user.vmvault.state")->has_value());
  const struct statvfs s = fs_->StatFs();
  EXPECT_EQ(s.f_bfree, 0u);
  EXPECT_EQ(s.f_bavail, 0u);
  EXPECT_GE(s.f_blocks * s.f_frsize, disk_.size);
  EXPECT_GT(s.f_files, 5u);
  EXPECT_EQ(s.f_namemax, 255u);
}

TEST_F(FilesystemTest, NewBackupsAppearAfterTheRefreshInterval) {
  const uint64_t old_file = Ino("/web/2026-11/2026-11-21T033000Z/vda.raw");
  auto f = fs_->Open(old_file, O_RDONLY);
  ASSERT_TRUE(f.ok());
  auto b = CommitDisks(repo_.get(), MakeVm("web"), TestTime(60), {disk_});
  ASSERT_TRUE(b.ok());
  auto db = CommitDisks(repo_.get(), MakeVm("db"), TestTime(60), {disk_});
  ASSERT_TRUE(db.ok());

  clock_.Advance(500'000);  // not stale yet: the snapshot stays
  EXPECT_FALSE(fs_->Lookup(kRootInode, "db").ok());
  clock_.Advance(1'000'000);
  auto found = fs_->Lookup(kRootInode, "db");
  ASSERT_TRUE(found.ok());
  auto period = fs_->ReadDir(Ino("/web/2026-11"));
  ASSERT_TRUE(period.ok());
  EXPECT_EQ(period->size(), 4u);
  EXPECT_EQ(*fs_->ReadLink(Ino("/web/latest")), "2026-11/2026-11-21T033100Z");
  // Old inode numbers still hold, and an open file keeps reading.
  EXPECT_EQ(Ino("/web/2026-11/2026-11-21T033000Z/vda.raw"), old_file);
  ReadResult r;
  ASSERT_TRUE(fs_->Read(f->get(), 0, 100, &r).ok());
  EXPECT_TRUE(r.ToString() == testing::ExpectedBytes(disk_, kCs, 0, 100));
}

TEST_F(FilesystemTest, BackupContentsDoNotTriggerRefresh) {
  const uint64_t file = Ino("/web/2026-11/2026-11-21T033000Z/vda.raw");
  auto before = fs_->tree();
  clock_.Advance(10'000'000);
  ASSERT_TRUE(fs_->GetAttr(file).ok());
  EXPECT_EQ(fs_->tree(), before);
  // The root does trigger a refresh, but an unchanged catalog keeps the tree...
  ASSERT_TRUE(fs_->GetAttr(kRootInode).ok());
  EXPECT_EQ(fs_->tree(), before);
  // ...and a changed one replaces it.
  ASSERT_TRUE(CommitDisks(repo_.get(), MakeVm("db"), TestTime(60), {disk_}).ok());
  clock_.Advance(10'000'000);
  ASSERT_TRUE(fs_->GetAttr(kRootInode).ok());
  EXPECT_NE(fs_->tree(), before);
}


TEST_F(FilesystemTest, APrunedBackupLeavesTheTreeAtTheNextRefresh) {
  auto second = CommitDisks(repo_.get(), MakeVm("web"), TestTime(60), {disk_});
  ASSERT_TRUE(second.ok());
  clock_.Advance(2'000'000);
  ASSERT_TRUE(fs_->Refresh(/*force=*/false).ok());
  const uint64_t period = Ino("/web/2026-11");
  // A backup directory's name is looked up again after the short timeout, so the
  // kernel learns soon that it is gone; its contents keep the long one.
  auto dir = fs_->Lookup(period, "2026-11-21T033000Z");
  ASSERT_TRUE(dir.ok());
  EXPECT_DOUBLE_EQ(dir->entry_timeout, 1.0);
  EXPECT_DOUBLE_EQ(dir->attr_timeout, 86400.0);
  auto file = fs_->Lookup(dir->attr.st_ino, "vda.raw");
  ASSERT_TRUE(file.ok());
  EXPECT_DOUBLE_EQ(file->entry_timeout, 86400.0);
  auto f = fs_->Open(file->attr.st_ino, O_RDONLY);
  ASSERT_TRUE(f.ok());
  ReadResult before;
  ASSERT_TRUE(fs_->Read(f->get(), 0, disk_.size, &before).ok());

  const store::BackupRecord first = repo_->catalog().ListBackups("web")->front();
  ASSERT_TRUE(repo_->catalog().DeleteBackups({first.id}).ok());
  clock_.Advance(1'500'000);
  EXPECT_TRUE(fs_->Lookup(period, "2026-11-21T033000Z").status().IsNotFound());
  EXPECT_TRUE(fs_->GetAttr(dir->attr.st_ino).status().IsNotFound());
  auto listed = fs_->ReadDir(period);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 3u);  // ., .. and the second backup
  EXPECT_EQ((*listed)[2].name, "2026-11-21T033100Z");
  EXPECT_EQ(*fs_->ReadLink(Ino("/web/latest")), "2026-11/2026-11-21T033100Z");
  // The open file still reads its bytes: its index page is cached, its chunks stay.
  ReadResult after;
  ASSERT_TRUE(fs_->Read(f->get(), 0, disk_.size, &after).ok());
  EXPECT_TRUE(after.ToString() == before.ToString());
  EXPECT_TRUE(after.ToString() == testing::ExpectedBytes(disk_, kCs, 0, disk_.size));
}

TEST_F(FilesystemTest, AnOpenFileOfAPrunedBackupNeverReadsZerosForAPageThatIsGone) {
  // No index page stays cached: every read asks the catalog.
  FilesystemOptions o;
  o.clock = &clock_;
  o.index_cache_bytes = 0;
  o.prefetch_threads = 0;
  auto fs = Filesystem::Create(repo_.get(), o);
  ASSERT_TRUE(fs.ok());
  const uint64_t ino = Ino("/web/2026-11/2026-11-21T033000Z/vda.raw");
  auto f = (*fs)->Open(ino, O_RDONLY);
  ASSERT_TRUE(f.ok());
  ReadResult r;
  ASSERT_TRUE((*fs)->Read(f->get(), 0, 100, &r).ok());
  EXPECT_TRUE(r.ToString() == testing::ExpectedBytes(disk_, kCs, 0, 100));

  const store::BackupRecord b = repo_->catalog().ListBackups("web")->front();
  ASSERT_TRUE(repo_->catalog().DeleteBackups({b.id}).ok());
  // Slot 25 is a hole and slot 3 data: neither may come back as zeros now.
  for (uint64_t offset : {3 * uint64_t{kCs}, 25 * uint64_t{kCs}}) {
    ReadResult gone;
    const Status s = (*fs)->Read(f->get(), offset, 100, &gone);
    EXPECT_TRUE(s.IsNotFound()) << offset << ": " << s.ToString();
  }
  EXPECT_TRUE((*fs)->Lseek(f->get(), 0, SEEK_HOLE).status().IsNotFound());
}

// The index pages stay cached, the chunks do not: after prune and gc, a read of the
// removed backup finds its chunk gone, which is ENOENT (not EIO: nothing is damaged).
// A chunk that goes missing under a backup that still exists stays damage.
TEST_F(FilesystemTest, AChunkGcRemovedUnderAnOpenFileOfAPrunedBackupIsNotFound) {
  FilesystemOptions o;
  o.clock = &clock_;
  o.cache_bytes = 0;
  o.prefetch_threads = 0;
  auto fs = Filesystem::Create(repo_.get(), o);
  ASSERT_TRUE(fs.ok());
  auto f = (*fs)->Open(Ino("/web/2026-11/2026-11-21T033000Z/vda.raw"), O_RDONLY);
  ASSERT_TRUE(f.ok());
  ReadResult r;
  ASSERT_TRUE((*fs)->Read(f->get(), 3 * uint64_t{kCs}, 100, &r).ok());

  // Damage first: the chunk of slot 3 deleted while the backup exists.
  const store::BackupRecord backup = repo_->catalog().ListBackups("web")->front();
  std::vector<store::ChunkId> page;
  ASSERT_TRUE(repo_->catalog().ReadIndexPage(backup.id, 0, 0, &page).ok());
  const store::ChunkId id = page[3];
  ASSERT_FALSE(id.is_zero());
  std::string value;
  ASSERT_TRUE(repo_->chunks().ReadRaw(id, &value).ok());
  ASSERT_TRUE(repo_->chunks().Delete(id).ok());
  ReadResult damaged;
  EXPECT_TRUE((*fs)->Read(f->get(), 3 * uint64_t{kCs}, 100, &damaged).IsCorruption());
  ASSERT_TRUE(repo_->chunks().Put(id, value).ok());

  // Then the backup is pruned and its chunks collected.
  ASSERT_TRUE(repo_->catalog().DeleteBackups({backup.id}).ok());
  auto gc = store::CollectGarbage(*repo_, {});
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  ASSERT_GT(gc->deleted_chunks, 0u);
  ReadResult gone;
  const Status s = (*fs)->Read(f->get(), 3 * uint64_t{kCs}, 100, &gone);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_EQ(gone.size(), 0u);
}

}  // namespace
}  // namespace vmvault::fs
