// kill -9 of `vmvault ingest` at many points of its run: the repository must open,
// show only whole backups (one more exactly when the kill came after the commit),
// verify clean, and take the next ingest; gc then removes what the killed ingests
// stored without committing. The points are spread over the run by killing after a
// delay drawn from [0, the time a whole ingest takes) (gtest's --gtest_random_seed).
#include <signal.h>

#include <chrono>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {
namespace {

TEST(CrashTest, KillNineAnywhereLeavesOnlyWholeBackups) {
  TempDir tmp;
  const std::string repo = tmp / "repo";
  ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo, "--chunk-size", "64K"}).exit_code, 0);
  // 48 MiB of random data in a 64 MiB raw image: long enough to be killed mid-way.
  const std::string image = tmp / "vm.raw";
  ASSERT_EQ(Sh("truncate -s 64M " + image + " && head -c 48M /dev/urandom | dd of=" + image +
               " conv=notrunc status=none"),
            0);
  auto ingest = [&] {
    return std::vector<std::string>{VmvaultPath(), "ingest", "--repo", repo, "--file", image};
  };
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(RunCmd(ingest()).exit_code, 0);
  const auto whole = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - t0);

  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
  int killed_midway = 0;
  size_t expected_backups = 1;
  constexpr int kRounds = 12;
  for (int round = 0; round < kRounds; ++round) {
    // New data each round, so every ingest has chunks to store.
    ASSERT_EQ(Sh("head -c 4M /dev/urandom | dd of=" + image + " bs=1M seek=" +
                 std::to_string(4 * (round % 12)) + " conv=notrunc status=none"),
              0);
    Process p(ingest(), tmp / ("ingest." + std::to_string(round) + ".log"));
    const auto delay = std::chrono::microseconds(rng() % std::max<int64_t>(whole.count(), 1));
    std::this_thread::sleep_for(delay);
    if (p.Running()) p.Signal(SIGKILL);
    p.Stop(std::chrono::seconds(10));
    const bool killed = p.how_it_ended() == "signal 9";
    if (!killed) {
      ASSERT_EQ(p.how_it_ended(), "exit 0") << Slurp(p.log_path());
    }
    // The repository opens and lists only whole backups: one more when the ingest
    // committed (a kill after its commit, before it exited, counts too), else none.
    const nlohmann::json list = ListJson(repo);
    ASSERT_EQ(list.size(), 1u);
    const size_t now = list[0]["backups"].size();
    if (now == expected_backups + 1) {
      ++expected_backups;
      // The new backup holds the image as it is now.
      RunResult r = RunCmd({VmvaultPath(), "restore", "--repo", repo, "vm", "--to",
                            tmp / "restored.raw", "--force"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(CompareFiles(tmp / "restored.raw", image), "") << "round " << round;
    } else {
      EXPECT_TRUE(killed);
      EXPECT_EQ(now, expected_backups) << "round " << round;
      ++killed_midway;
    }
    RunResult v = RunCmd({VmvaultPath(), "verify", "--repo", repo});
    EXPECT_EQ(v.exit_code, 0) << "round " << round << ": " << v.err;
  }
  EXPECT_GE(killed_midway, kRounds / 3) << "too few kills landed before the commit";

  // The next ingest works and its backup reads back whole through a mount.
  ASSERT_EQ(RunCmd(ingest()).exit_code, 0);
  {
    Mount mount(repo, tmp / "mnt");
    ASSERT_TRUE(mount.ok());
    EXPECT_EQ(CompareFiles(mount.path() + "/vm/latest/vm.raw", image), "");
  }
  // What the killed ingests stored is garbage that gc collects; verify stays clean.
  RunResult gc = RunCmd({VmvaultPath(), "gc", "--repo", repo, "--json"});
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["missing_chunks"], 0);
  EXPECT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo}).exit_code, 0);
}

}  // namespace
}  // namespace vmvault::testing
