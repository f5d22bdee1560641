#include "store/verify.h"

#include <gtest/gtest.h>

#include "store/chunk_codec.h"
#include "test_util.h"

namespace vmvault::store {
namespace {

constexpr uint32_t kCs = 64 << 10;

class VerifyTest : public ::testing::Test {
 protected:
  VerifyTest() : kv_(std::make_shared<MemKvEngine>()) {
    RepoConfig config;
    config.chunk_size = kCs;
    repo_ = Repository::OpenInMemory(config, kv_);
  }

  ChunkId Put(const std::string& plain) { return testing::PutChunk(repo_.get(), plain); }

  // A one-disk backup of `vm` whose slots hold `ids` (zero ids are holes); the last slot
  // is `tail` bytes short.
  BackupRecord Commit(const std::string& vm, int64_t t, const std::vector<ChunkId>& ids,
                      uint64_t tail = 0) {
    return testing::CommitBackup(repo_.get(), vm, t, kCs, ids, tail);
  }

  std::shared_ptr<MemKvEngine> kv_;
  std::unique_ptr<Repository> repo_;
};

constexpr int64_t kT0 = 1'795'231'800'000'000;

TEST_F(VerifyTest, CleanRepositoryReadsEveryDistinctChunkOnce) {
  const ChunkId a = Put(testing::RandomBytes(kCs, 1)), b = Put(testing::RandomBytes(kCs, 2)),
                c = Put(testing::TextBytes(kCs, 3));
  Commit("web", kT0, {a, b, ChunkId(), a});
  Commit("web", kT0 + 86'400'000'000, {a, c});
  Commit("db", kT0, {c});
  auto report = Verify(*repo_, {.seed = 1});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok());
  EXPECT_EQ(report->backups.size(), 3u);
  EXPECT_EQ(report->distinct_chunks, 3u);
  EXPECT_EQ(report->chunks_read, 3u);
  EXPECT_EQ(report->bytes_read, 3 * kCs);
  EXPECT_EQ(report->backups[0].backup.vm, "db");
  EXPECT_EQ(report->backups[1].chunks, 2u);

  auto only_web = Verify(*repo_, {.vm = "web", .since_us = kT0 + 1});
  ASSERT_TRUE(only_web.ok());
  ASSERT_EQ(only_web->backups.size(), 1u);
  EXPECT_EQ(only_web->backups[0].backup.time_us, kT0 + 86'400'000'000);
  EXPECT_TRUE(Verify(*repo_, {.vm = "nope"}).status().IsNotFound());
}

TEST_F(VerifyTest, DamageIsPinnedToTheBackupsAndDisksThatNeedIt) {
  const ChunkId shared = Put(testing::RandomBytes(kCs, 1));
  const ChunkId lost = Put(testing::RandomBytes(kCs, 2));
  const ChunkId fine = Put(testing::RandomBytes(kCs, 3));
  Commit("web", kT0, {shared, fine});
  Commit("web", kT0 + 1'000'000, {fine, shared, shared});
  Commit("db", kT0, {lost, fine});
  Commit("mail", kT0, {fine});
  // One chunk's stored bytes rot; another disappears.
  std::string value;
  ASSERT_TRUE(repo_->chunks().ReadRaw(shared, &value).ok());
  value[value.size() / 2] ^= 0x40;
  KvBatch rot;
  rot.Put(KvSpace::kChunks, std::string_view(reinterpret_cast<const char*>(shared.bytes.data()), 16),
          value);
  ASSERT_TRUE(kv_->Write(rot, true).ok());
  ASSERT_TRUE(repo_->chunks().Delete(lost).ok());

  auto report = Verify(*repo_, {});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  std::map<std::string, std::vector<std::string>> problems;
  for (const BackupVerdict& v : report->backups) {
    problems[v.backup.vm + "/" + v.backup.name()] = v.problems;
  }
  ASSERT_EQ(problems.size(), 4u);
  const auto& web1 = problems["web/2026-11-21T033000Z"];
  ASSERT_EQ(web1.size(), 1u);
  EXPECT_NE(web1[0].find("disk vda: 1 chunk slot cannot be read"), std::string::npos) << web1[0];
  const auto& web2 = problems["web/2026-11-21T033001Z"];
  ASSERT_EQ(web2.size(), 1u);
  EXPECT_NE(web2[0].find("2 chunk slots"), std::string::npos) << web2[0];
  const auto& db = problems["db/2026-11-21T033000Z"];
  ASSERT_EQ(db.size(), 1u);
  EXPECT_NE(db[0].find(lost.hex()), std::string::npos) << db[0];
  EXPECT_TRUE(problems["mail/2026-11-21T033000Z"].empty());

  // A sample re-reads fewer chunks but still finds the missing one.
  auto sample = Verify(*repo_, {.vm = "db", .sample_percent = 1, .seed = 7});
  ASSERT_TRUE(sample.ok());
  EXPECT_FALSE(sample->ok());
  EXPECT_LT(sample->chunks_read, sample->distinct_chunks);
}

TEST_F(VerifyTest, IndexThatContradictsItsRecordOrSummaryIsAProblem) {
  const ChunkId a = Put(testing::RandomBytes(kCs, 1));
  BackupRecord b = Commit("web", kT0, {a, ChunkId(), ChunkId()});
  // The index page loses its only data slot: the record and the summary say one.
  std::string key;
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((b.id >> (8 * i)) & 0xff));
  key.append(12, '\0');
  KvBatch batch;
  batch.Put(KvSpace::kIndex, key, std::string(3 * 16, '\0'));
  ASSERT_TRUE(kv_->Write(batch, true).ok());
  auto report = Verify(*repo_, {});
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->backups.size(), 1u);
  const auto& p = report->backups[0].problems;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_NE(p[0].find("0 data chunks, the record says 1"), std::string::npos) << p[0];
  EXPECT_NE(p[1].find("summary does not match"), std::string::npos) << p[1];
  EXPECT_NE(p[1].find("page 0 holds 0 data chunks, the summary says 1"), std::string::npos)
      << p[1];
}

TEST_F(VerifyTest, ChunkShorterThanASlotNeedsIsAProblem) {
  const ChunkId full = Put(testing::RandomBytes(kCs, 1));
  const ChunkId short_one = Put(testing::RandomBytes(1000, 2));
  Commit("ok", kT0, {full, short_one}, kCs - 1000);  // the short chunk ends the disk: fine
  Commit("bad", kT0, {short_one, full});             // a full slot names it: not restorable
  for (double sample : {100.0, 0.0001}) {
    SCOPED_TRACE(sample);
    auto report = Verify(*repo_, {.sample_percent = sample, .seed = 3});
    ASSERT_TRUE(report.ok());
    ASSERT_EQ(report->backups.size(), 2u);
    EXPECT_EQ(report->backups[0].backup.vm, "bad");
    ASSERT_EQ(report->backups[0].problems.size(), 1u);
    EXPECT_NE(report->backups[0].problems[0].find("holds 1000 bytes, a slot needs 65536"),
              std::string::npos)
        << report->backups[0].problems[0];
    EXPECT_TRUE(report->backups[1].problems.empty()) << report->backups[1].problems[0];
  }
}

TEST_F(VerifyTest, ResultsAreRecordedPerBackup) {
  BackupRecord b = Commit("web", kT0, {Put("x")});
  EXPECT_FALSE(repo_->catalog().GetVerification(b.id)->has_value());
  const uint64_t gen = *repo_->catalog().Generation();
  VerifyRecord r;
  r.time_us = kT0 + 5;
  r.ok = false;
  r.sample_percent = 10;
  r.chunks = 1;
  r.problems = {"disk vda: gone"};
  ASSERT_TRUE(repo_->catalog().RecordVerification(b.id, r).ok());
  auto back = repo_->catalog().GetVerification(b.id);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->problems, r.problems);
  EXPECT_FALSE((*back)->ok);
  EXPECT_EQ((*back)->sample_percent, 10);
  EXPECT_EQ(*repo_->catalog().Generation(), gen + 1) << "mounts see it";
}

}  // namespace
}  // namespace vmvault::store
