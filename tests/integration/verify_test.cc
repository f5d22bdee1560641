// vmvault verify, end to end: a clean repository verifies and records it; a chunk
// damaged on disk (bytes flipped in RocksDB's blob file) is found, pinned to the backup
// and disk that need it, recorded, and reported with a non-zero exit.
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {
namespace {

constexpr int kExitRepo = 3;

TEST(VerifyCliTest, FindsRecordsAndReportsDamage) {
  TempDir tmp;
  const std::string repo = tmp / "repo";
  ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo, "--chunk-size", "64K"}).exit_code, 0);
  const std::string disk = tmp / "web.raw";
  ASSERT_EQ(Sh("truncate -s 16M " + disk + " && head -c 4194304 /dev/urandom | dd of=" + disk +
               " bs=1M seek=2 conv=notrunc status=none"), 0);
  ASSERT_EQ(RunCmd({VmvaultPath(), "ingest", "--repo", repo, "--file", disk, "--vm", "web"})
                .exit_code,
            0);

  RunResult clean = RunCmd({VmvaultPath(), "verify", "--repo", repo});
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_EQ(clean.err, "") << "quiet when not on a terminal";
  nlohmann::json list = ListJson(repo);
  const nlohmann::json& verified = list[0]["backups"][0]["verified"];
  ASSERT_TRUE(verified.is_object()) << list.dump();
  EXPECT_TRUE(verified["ok"].get<bool>());
  EXPECT_EQ(verified["chunks"].get<int>(), 64);  // 4 MiB of 64 KiB chunks

  // Flip 4 KiB in the middle of the blob file that holds the chunk values.
  std::string blob;
  for (const auto& e : std::filesystem::directory_iterator(repo + "/db")) {
    if (e.path().extension() == ".blob") blob = e.path();
  }
  ASSERT_FALSE(blob.empty());
  const auto size = std::filesystem::file_size(blob);
  ASSERT_EQ(Sh("head -c 4096 /dev/urandom | dd of=" + blob + " bs=1 seek=" +
               std::to_string(size / 2) + " conv=notrunc status=none"), 0);

  RunResult damaged = RunCmd({VmvaultPath(), "verify", "--repo", repo, "--json"});
  EXPECT_EQ(damaged.exit_code, kExitRepo) << damaged.err;
  const std::string backup = list[0]["backups"][0]["name"];
  EXPECT_NE(damaged.err.find("web/" + backup + ": disk web: "), std::string::npos) << damaged.err;
  const nlohmann::json report = nlohmann::json::parse(damaged.out);
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_EQ(report["backups"][0]["problems"].size(), 1u);
  list = ListJson(repo);
  EXPECT_FALSE(list[0]["backups"][0]["verified"]["ok"].get<bool>());
  EXPECT_EQ(list[0]["backups"][0]["verified"]["problems"].size(), 1u);

  // A sampled pass that misses the damage does not replace the recorded failure.
  // (0.001% of 64 chunks: it nearly always misses; if it hits, the record stays failed too.)
  RunCmd({VmvaultPath(), "verify", "--repo", repo, "--sample", "0.001"});
  list = ListJson(repo);
  EXPECT_FALSE(list[0]["backups"][0]["verified"]["ok"].get<bool>());

  // Bad arguments, and nothing to verify, are refused.
  EXPECT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo, "--sample", "0"}).exit_code, 5);
  EXPECT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo, "--since", "soon"}).exit_code, 5);
  EXPECT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo, "--vm", "nope"}).exit_code, 5);
  EXPECT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo, "--since", "1d"}).exit_code,
            kExitRepo);
  EXPECT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo, "--since", "2099-01-01"}).exit_code,
            5);
}

}  // namespace
}  // namespace vmvault::testing
