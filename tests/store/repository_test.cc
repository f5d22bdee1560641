#include "store/repository.h"

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

#include "base/file_util.h"
#include "store/chunk_codec.h"
#include "test_util.h"

namespace vmvault::store {
namespace {

// Opens `repo` for writing and commits one backup of `vm` without disks.
Status CommitEmptyBackup(const std::string& repo, const std::string& vm) {
  VV_ASSIGN_OR_RETURN(auto w, Repository::Open(repo, RepoMode::kWrite));
  BackupRecord b;
  b.vm = vm;
  b.time_us = 1;
  return w->catalog().CommitBackup(testing::Vm(vm), &b, {});
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(RepositoryTest, InitCreatesPrivateVersionedRepository) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  RepoConfig c;
  c.chunk_size = 256 << 10;
  ASSERT_TRUE(Repository::Init(repo, c).ok());
  EXPECT_EQ(ModeOf(repo), 0700u);
  EXPECT_EQ(ModeOf(repo + "/secret"), 0600u);
  auto text = ReadFile(repo + "/vmvault.json");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("\"version\": 2"), std::string::npos);
  auto r = Repository::Open(repo, RepoMode::kReadOnly);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->config().chunk_size, 256u << 10);
  EXPECT_EQ(Repository::Init(repo, c).code(), StatusCode::kAlreadyExists);
}

TEST(RepositoryTest, RejectsBadChunkSizes) {
  testing::TempDir tmp;
  for (uint32_t cs : {0u, 4096u, 100000u, 8u << 20}) {
    RepoConfig c;
    c.chunk_size = cs;
    EXPECT_EQ(Repository::Init(tmp.path() + "/r", c).code(), StatusCode::kInvalidArgument) << cs;
  }
}

TEST(RepositoryTest, MissingRepositoryIsNotFoundWithAHint) {
  testing::TempDir tmp;
  auto r = Repository::Open(tmp.path() + "/nope", RepoMode::kReadOnly);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_NE(r.status().message().find("vmvault init"), std::string::npos);
  auto empty = Repository::Open(tmp.path(), RepoMode::kReadOnly);
  EXPECT_TRUE(empty.status().IsNotFound());
}

TEST(RepositoryTest, WrongFormatVersionIsRefused) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(Repository::Init(repo, {}).ok());
  auto text = ReadFile(repo + "/vmvault.json");
  std::string t = *text;
  t.replace(t.find("\"version\": 2"), 12, "\"version\": 99");
  ASSERT_TRUE(WriteFileAtomic(repo + "/vmvault.json", t, 0600).ok());
  auto r = Repository::Open(repo, RepoMode::kWrite);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("version 99"), std::string::npos);
}

TEST(RepositoryTest, SecondWriterIsBusy) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(Repository::Init(repo, {}).ok());
  auto w1 = Repository::Open(repo, RepoMode::kWrite);
  ASSERT_TRUE(w1.ok());
  auto w2 = Repository::Open(repo, RepoMode::kWrite);
  ASSERT_FALSE(w2.ok());
  EXPECT_EQ(w2.status().code(), StatusCode::kBusy);
  // Readers do not need the lock.
  EXPECT_TRUE(Repository::Open(repo, RepoMode::kReadOnly).ok());
  w1->reset();
  EXPECT_TRUE(Repository::Open(repo, RepoMode::kWrite).ok());
}

TEST(RepositoryTest, ReadOnlyDirectoryRefusesWriters) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(Repository::Init(repo, {}).ok());
  ASSERT_EQ(::chmod(repo.c_str(), 0500), 0);
  auto w = Repository::Open(repo, RepoMode::kWrite);
  EXPECT_EQ(w.status().code(), StatusCode::kReadOnly) << w.status().ToString();
  EXPECT_TRUE(Repository::Open(repo, RepoMode::kReadOnly).ok());
  ASSERT_EQ(::chmod(repo.c_str(), 0700), 0);
}

TEST(RepositoryTest, FollowerSeesNewBackupsAfterRefresh) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(Repository::Init(repo, {}).ok());
  auto writer = Repository::Open(repo, RepoMode::kWrite);
  ASSERT_TRUE(writer.ok());
  auto follower = Repository::Open(repo, RepoMode::kFollow);
  ASSERT_TRUE(follower.ok()) << follower.status().ToString();
  EXPECT_TRUE((*follower)->catalog().ListVms()->empty());

  BackupRecord b;
  b.vm = "vm1";
  b.time_us = 1795231800LL * 1'000'000;
  ASSERT_TRUE((*writer)->catalog().CommitBackup(testing::Vm("vm1"), &b, {}).ok());
  ASSERT_TRUE((*follower)->Refresh().ok());
  auto vms = (*follower)->catalog().ListVms();
  ASSERT_TRUE(vms.ok());
  ASSERT_EQ(vms->size(), 1u);
  EXPECT_EQ((*vms)[0].name, "vm1");
  // A follower cannot write.
  BackupRecord c = b;
  EXPECT_EQ((*follower)->catalog().CommitBackup(testing::Vm("vm1"), &c, {}).code(),
            StatusCode::kReadOnly);
}

TEST(RepositoryTest, DataSurvivesReopen) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(Repository::Init(repo, {}).ok());
  ASSERT_TRUE(CommitEmptyBackup(repo, "vm").ok());
  auto r = Repository::Open(repo, RepoMode::kReadOnly);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->catalog().ListBackups("vm")->size(), 1u);
}


// Chunks that RocksDB has moved from the memtable into blob files must read back
// through a follower (the mount), before and after a refresh.
TEST(RepositoryTest, FollowerReadsFlushedChunks) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(Repository::Init(repo, {}).ok());
  auto writer = Repository::Open(repo, RepoMode::kWrite);
  ASSERT_TRUE(writer.ok());
  auto put = [&](uint32_t seed) {
    const std::string plain = testing::RandomBytes(256 << 10, seed);
    auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(plain.data()),
                                          plain.size());
    const ChunkId id = (*writer)->hasher().Hash(bytes);
    std::string value;
    ChunkEncoder(3).Encode(bytes, &value);
    EXPECT_TRUE((*writer)->chunks().Put(id, value).ok());
    return std::make_pair(id, plain);
  };
  auto first = put(1);
  BackupRecord b;
  b.vm = "vm";
  b.time_us = 1;
  ASSERT_TRUE((*writer)->catalog().CommitBackup(testing::Vm("vm"), &b, {}).ok());
  ASSERT_TRUE((*writer)->kv().Compact(KvSpace::kChunks).ok());

  auto follower = Repository::Open(repo, RepoMode::kFollow);
  ASSERT_TRUE(follower.ok()) << follower.status().ToString();
  std::string out;
  ASSERT_TRUE((*follower)->chunks().Read(first.first, &out).ok());
  EXPECT_EQ(out, first.second);

  auto second = put(2);
  ASSERT_TRUE((*writer)->catalog().CommitBackup(testing::Vm("vm"), &b, {}).ok());
  ASSERT_TRUE((*writer)->kv().Compact(KvSpace::kChunks).ok());
  EXPECT_TRUE((*follower)->chunks().Read(second.first, &out).IsNotFound());
  ASSERT_TRUE((*follower)->Refresh().ok());
  ASSERT_TRUE((*follower)->chunks().Read(second.first, &out).ok());
  EXPECT_EQ(out, second.second);
  ASSERT_TRUE((*follower)->chunks().Read(first.first, &out).ok());
  EXPECT_EQ(out, first.second);
}


// Chunks are written without the log; the commit's flush must make them durable.
TEST(RepositoryTest, CommittedChunksSurviveReopen) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(Repository::Init(repo, {}).ok());
  const std::string plain = testing::TextBytes(200000, 9);
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(plain.data()),
                                        plain.size());
  ChunkId id;
  {
    auto w = Repository::Open(repo, RepoMode::kWrite);
    ASSERT_TRUE(w.ok());
    id = (*w)->hasher().Hash(bytes);
    std::string value;
    ChunkEncoder(3).Encode(bytes, &value);
    ASSERT_TRUE((*w)->chunks().Put(id, value).ok());
    BackupRecord b;
    b.vm = "vm";
    b.time_us = 1;
    b.disks.resize(1);
    b.disks[0].chunk_size = 256 << 10;
    b.disks[0].virtual_size = plain.size();
    ASSERT_TRUE((*w)->catalog().CommitBackup(testing::Vm("vm"), &b, {{id}}).ok());
  }
  auto r = Repository::Open(repo, RepoMode::kReadOnly);
  ASSERT_TRUE(r.ok());
  std::string out;
  ASSERT_TRUE((*r)->chunks().Read(id, &out).ok());
  EXPECT_EQ(out, plain);
  std::vector<ChunkId> page;
  ASSERT_TRUE((*r)->catalog().ReadIndexPage(1, 0, 0, &page).ok());
  EXPECT_EQ(page[0], id);
}


// A refresh that cannot open the database (here: moved away) is an error, and the
// follower keeps serving what it had.
TEST(RepositoryTest, FailedRefreshKeepsTheOldView) {
  testing::TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(Repository::Init(repo, {}).ok());
  ASSERT_TRUE(CommitEmptyBackup(repo, "vm").ok());
  auto follower = Repository::Open(repo, RepoMode::kFollow);
  ASSERT_TRUE(follower.ok());
  std::filesystem::rename(repo + "/db", repo + "/db.away");
  EXPECT_FALSE((*follower)->Refresh().ok());
  EXPECT_EQ((*follower)->catalog().ListVms()->size(), 1u);
  auto again = Repository::Open(repo, RepoMode::kReadOnly);
  EXPECT_EQ(again.status().code(), StatusCode::kCorruption);
  std::filesystem::rename(repo + "/db.away", repo + "/db");
  EXPECT_TRUE((*follower)->Refresh().ok());
}

}  // namespace
}  // namespace vmvault::store
