// kill -9 of `vmvault ingest` at many points of its run: the repository must open,
// show only whole backups (one more exactly when the kill came after the commit),
// verify clean, and take the next ingest; gc then removes what the killed ingests
// stored without committing. The points are spread over the run by killing after a
// delay drawn from [0, the time a whole ingest of a round takes) (gtest's
// --gtest_random_seed).
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
  auto new_data = [&](int at_mib) {
    return Sh("head -c 4M /dev/urandom | dd of=" + image + " bs=1M seek=" + std::to_string(at_mib) +
              " conv=notrunc status=none");
  };
  ASSERT_EQ(RunCmd(ingest()).exit_code, 0);
  // How long an ingest of the rounds below takes (4 MiB new, the rest known): much less
  // than the first one, which stored everything.
  ASSERT_EQ(new_data(44), 0);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(RunCmd(ingest()).exit_code, 0);
  const auto whole = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - t0);

  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
  int killed_midway = 0;
  size_t expected_backups = 2;
  constexpr int kRounds = 12;
  for (int round = 0; round < kRounds; ++round) {
    // New data each round, so every ingest has chunks to store.
    ASSERT_EQ(new_data(4 * (round % 12)), 0);
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

// The filesystem under the repository fills up mid-ingest: a clear "no space" error
// (exit 7), and the repository stays as it was: it opens, lists its backups, verifies
// clean, and takes a smaller ingest once there is room.
TEST(CrashTest, DiskFullMidIngestLeavesTheRepositoryIntact) {
  TempDir tmp;
  const std::string fs_image = tmp / "small.ext4";
  ASSERT_EQ(Sh("truncate -s 96M " + fs_image + " && mkfs.ext4 -q -F " + fs_image), 0);
  LoopMount small(fs_image, 0, tmp / "small", /*writable=*/true);
  ASSERT_TRUE(small.ok());
  const std::string repo = tmp / "small/repo";
  RunResult init = RunCmd({VmvaultPath(), "init", "--repo", repo});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  const std::string first = tmp / "first.raw";
  ASSERT_EQ(Sh("truncate -s 32M " + first + " && head -c 8M /dev/urandom | dd of=" + first +
               " conv=notrunc status=none"),
            0);
  ASSERT_EQ(RunCmd({VmvaultPath(), "ingest", "--repo", repo, "--file", first}).exit_code, 0);

  // 160 MiB of incompressible data cannot fit in what is left.
  const std::string big = tmp / "big.raw";
  ASSERT_EQ(Sh("head -c 160M /dev/urandom > " + big), 0);
  RunResult full = RunCmd({VmvaultPath(), "ingest", "--repo", repo, "--file", big});
  EXPECT_EQ(full.exit_code, 7) << full.err;
  EXPECT_NE(full.err.find("space"), std::string::npos) << full.err;

  const nlohmann::json list = ListJson(repo);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "first");
  EXPECT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo}).exit_code, 0);
  // gc gives back what the failed ingest stored; then a small ingest fits again.
  RunResult gc = RunCmd({VmvaultPath(), "gc", "--repo", repo});
  EXPECT_EQ(gc.exit_code, 0) << gc.err;
  ASSERT_EQ(Sh("head -c 4M /dev/urandom | dd of=" + first + " conv=notrunc status=none"), 0);
  RunResult again = RunCmd({VmvaultPath(), "ingest", "--repo", repo, "--file", first});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(RunCmd({VmvaultPath(), "verify", "--repo", repo}).exit_code, 0);
}

}  // namespace
}  // namespace vmvault::testing
