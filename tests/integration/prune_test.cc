// vmvault prune, end to end: a mounted backup that prune removes (an open file keeps
// its bytes, the directory goes, the others stay equal), --dry-run, the half rule with
// and without --force, the writer lock, the policy from the configuration file, and
// silence under cron, and a backup that takes over a removed backup's name. ingest has
// no way to set a backup's time, so these use --keep-last (and faketime for the same
// second); the period rules are unit-tested (tests/store/retention_test.cc).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kExitUsage = 2, kExitBusy = 4, kExitBadInput = 5;

class PruneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_ / "repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_, "--chunk-size", "64K"}).exit_code, 0);
  }

  // Backs the VM's image up `n` more times, with 1 MiB of new data before each (at MiB
  // `at`, else at a new MiB each time), and keeps a copy of the image as each backup
  // holds it (snapshots_[vm][i]).
  void Backups(const std::string& vm, int n, int at = -1) {
    const std::string image = tmp_ / (vm + ".raw");
    if (!std::filesystem::exists(image)) {
      ASSERT_EQ(Sh("truncate -s 16M " + image), 0);
    }
    for (int i = 0; i < n; ++i) {
      const size_t k = snapshots_[vm].size();
      ASSERT_EQ(Sh("head -c 1M /dev/urandom | dd of=" + image +
                   " bs=1M seek=" + std::to_string(at >= 0 ? at : k % 16) +
                   " conv=notrunc status=none"),
                0);
      const std::string copy = tmp_ / (vm + "." + std::to_string(k) + ".raw");
      ASSERT_EQ(Sh("cp --sparse=always " + image + " " + copy), 0);
      RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--file", image});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      snapshots_[vm].push_back(copy);
    }
  }

  RunResult Prune(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{VmvaultPath(), "prune", "--repo", repo_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCmd(argv);
  }

  // The VM's backups in `list --json`, oldest first.
  nlohmann::json BackupsOf(const std::string& vm) {
    for (const auto& v : ListJson(repo_)) {
      if (v["name"] == vm) return v["backups"];
    }
    return nlohmann::json::array();
  }

  std::vector<std::string> NamesOf(const std::string& vm) {
    std::vector<std::string> names;
    for (const auto& b : BackupsOf(vm)) names.push_back(b["name"]);
    return names;
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = tmp_ / name;
    std::ofstream(path) << text;
    return path;
  }

  TempDir tmp_;
  std::string repo_;
  std::map<std::string, std::vector<std::string>> snapshots_;
};

std::string ReadAll(int fd) {
  std::string out;
  char buf[1 << 16];
  for (off_t off = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n <= 0) {
      if (n < 0) out += "<read error " + std::to_string(errno) + ">";
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
}

TEST_F(PruneTest, AnOpenFileKeepsItsBytesWhileThePrunedBackupLeavesTheMount) {
  ASSERT_NO_FATAL_FAILURE(Backups("web", 4));
  const nlohmann::json backups = BackupsOf("web");
  ASSERT_EQ(backups.size(), 4u);
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  auto dir = [&](size_t i) { return mount.path() + "/" + backups[i]["path"].get<std::string>(); };
  const std::string oldest = dir(0) + "/web.raw";
  const int fd = ::open(oldest.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << oldest;
  const std::string before = ReadAll(fd);
  EXPECT_TRUE(before == Slurp(snapshots_["web"][0]));

  RunResult r = Prune({"--keep-last", "2"});  // 2 of 4: half is allowed
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string kept2 = backups[2]["name"], kept3 = backups[3]["name"];
  EXPECT_THAT(NamesOf("web"), ::testing::ElementsAre(kept2, kept3));

  // The open file still reads the same bytes, from FUSE rather than the page cache.
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  EXPECT_TRUE(ReadAll(fd) == before);
  ::close(fd);

  // The pruned directories are gone within a few seconds (the kernel asks again after
  // the short entry timeout, the mount rebuilds its tree at most once a second).
  struct stat st;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    gone = ::stat(dir(0).c_str(), &st) != 0 && errno == ENOENT && ::stat(dir(1).c_str(), &st) != 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(gone) << dir(0) << " is still there";
  EXPECT_EQ(::open(oldest.c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, ENOENT);
  const std::string period = std::filesystem::path(dir(0)).parent_path();
  std::vector<std::string> listed;
  for (const auto& e : std::filesystem::directory_iterator(period)) {
    listed.push_back(e.path().filename());
  }
  std::sort(listed.begin(), listed.end());
  EXPECT_THAT(listed, ::testing::ElementsAre(kept2, kept3));

  // The backups that stay still read as they were.
  EXPECT_EQ(CompareFiles(dir(2) + "/web.raw", snapshots_["web"][2]), "");
  EXPECT_EQ(CompareFiles(dir(3) + "/web.raw", snapshots_["web"][3]), "");
  EXPECT_EQ(CompareFiles(mount.path() + "/web/latest/web.raw", snapshots_["web"][3]), "");
}

// gc after prune: the repository shrinks on disk; through a mount that was serving
// before both, an open file of a removed backup reads its bytes or ENOENT, and an open
// file of a kept backup reads exactly its bytes (gc's compaction rewrote the blob files
// the mount's older database instance named).
TEST_F(PruneTest, GcAfterPruneShrinksTheRepositoryAndOpenFilesNeverReadOtherBytes) {
  ASSERT_NO_FATAL_FAILURE(Backups("web", 4, /*at=*/3));
  const nlohmann::json backups = BackupsOf("web");
  ASSERT_EQ(backups.size(), 4u);
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  auto file = [&](size_t i) {
    return mount.path() + "/" + backups[i]["path"].get<std::string>() + "/web.raw";
  };
  const int removed_fd = ::open(file(0).c_str(), O_RDONLY);
  const int kept_fd = ::open(file(3).c_str(), O_RDONLY);
  ASSERT_GE(removed_fd, 0);
  ASSERT_GE(kept_fd, 0);
  const std::string removed_before = ReadAll(removed_fd);
  ASSERT_TRUE(removed_before == Slurp(snapshots_["web"][0]));

  ASSERT_EQ(Prune({"--keep-last", "2"}).exit_code, 0);
  // A dry run counts and deletes nothing; beside another writer, gc is busy.
  RunResult dry = RunCmd({VmvaultPath(), "gc", "--repo", repo_, "--dry-run", "--json"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_TRUE(nlohmann::json::parse(dry.out)["dry_run"].get<bool>());
  EXPECT_EQ(nlohmann::json::parse(dry.out)["deleted_chunks"], 32);
  EXPECT_EQ(RunCmd({"flock", repo_ + "/lock", VmvaultPath(), "gc", "--repo", repo_}).exit_code,
            kExitBusy);
  RunResult gc = RunCmd({VmvaultPath(), "gc", "--repo", repo_, "--json"});
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  const nlohmann::json stats = nlohmann::json::parse(gc.out);
  // Backups 0 and 1 each held 1 MiB of their own (16 chunks of 64 KiB) that the
  // later ones overwrote in place.
  EXPECT_EQ(stats["deleted_chunks"], 32);
  EXPECT_EQ(stats["missing_chunks"], 0);
  EXPECT_LT(stats["disk_bytes_after"].get<uint64_t>() + (1u << 20),
            stats["disk_bytes_before"].get<uint64_t>())
      << gc.out;

  // From FUSE, not the page cache.
  ASSERT_EQ(::posix_fadvise(removed_fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  ASSERT_EQ(::posix_fadvise(kept_fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  const std::string removed_after = ReadAll(removed_fd);
  const size_t cut = removed_after.find("<read error");
  if (cut != std::string::npos) {
    EXPECT_EQ(removed_after.substr(cut), "<read error " + std::to_string(ENOENT) + ">");
    EXPECT_TRUE(removed_before.compare(0, cut, removed_after, 0, cut) == 0)
        << "bytes before the error differ";
  } else {
    EXPECT_TRUE(removed_after == removed_before);
  }
  EXPECT_TRUE(ReadAll(kept_fd) == Slurp(snapshots_["web"][3]));
  ::close(removed_fd);
  ::close(kept_fd);
  EXPECT_EQ(CompareFiles(file(2), snapshots_["web"][2]), "");

  // A second gc finds nothing; verify finds every remaining backup whole.
  RunResult again = RunCmd({VmvaultPath(), "gc", "--repo", repo_, "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["deleted_chunks"], 0);
  RunResult verify = RunCmd({VmvaultPath(), "verify", "--repo", repo_});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
}

// A backup made in the same second as one that prune removed takes over its name: after
// a clock went back, here faketime. The mount must show the new backup's bytes under
// that name, not the pages the kernel still caches for the removed one (keep_cache):
// the new backup's files get other inode numbers.
TEST_F(PruneTest, ABackupTakingOverARemovedBackupsNameReadsItsOwnBytes) {
  const std::string image = tmp_ / "web.raw";
  auto ingest = [&](char fill, bool in_january) {
    ASSERT_EQ(Sh("head -c 4M /dev/zero | tr '\\0' '" + std::string(1, fill) + "' > " + image), 0);
    std::vector<std::string> argv = {VmvaultPath(), "ingest", "--repo", repo_, "--file", image};
    if (in_january) {
      argv.insert(argv.begin(), {"env", "FAKETIME_DONT_FAKE_MONOTONIC=1", "faketime", "-f",
                                 "@2026-01-01 00:00:00"});
    }
    RunResult r = RunCmd(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  const std::string name = "2026-01-01T000000Z";
  ASSERT_NO_FATAL_FAILURE(ingest('A', /*in_january=*/true));
  const std::string first = Slurp(image);
  ASSERT_NO_FATAL_FAILURE(ingest('B', /*in_january=*/false));
  ASSERT_EQ(NamesOf("web").size(), 2u);
  ASSERT_EQ(NamesOf("web")[0], name);
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string file = mount.path() + "/web/2026-01/" + name + "/web.raw";
  struct stat before;
  ASSERT_EQ(::stat(file.c_str(), &before), 0) << file;
  ASSERT_TRUE(Slurp(file) == first);  // now in the page cache

  RunResult pruned = Prune({"--keep-last", "1"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.err;
  ASSERT_EQ(NamesOf("web").size(), 1u);
  ASSERT_NO_FATAL_FAILURE(ingest('C', /*in_january=*/true));
  ASSERT_EQ(NamesOf("web").size(), 2u);
  ASSERT_EQ(NamesOf("web")[0], name);
  const std::string third = Slurp(image);

  // Within a few seconds (the short entry timeout of backup directories, the mount's
  // tree rebuilt at most once a second) the name shows the new backup.
  struct stat after;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool renumbered = false;
  while (!renumbered && std::chrono::steady_clock::now() < deadline) {
    renumbered = ::stat(file.c_str(), &after) == 0 && after.st_ino != before.st_ino;
    if (!renumbered) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(renumbered) << file << " kept inode " << before.st_ino;
  EXPECT_TRUE(Slurp(file) == third) << "the removed backup's bytes were read";
}

TEST_F(PruneTest, DryRunSaysWhatWouldGoAndRemovesNothing) {
  ASSERT_NO_FATAL_FAILURE(Backups("web", 3));
  const std::vector<std::string> names = NamesOf("web");

  RunResult text = Prune({"--dry-run", "--keep-last", "2"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("would remove  " + names[0] + "  no rule keeps it"));
  EXPECT_THAT(text.out, HasSubstr("keep          " + names[1] + "  last 2"));
  EXPECT_THAT(text.out, HasSubstr("keep          " + names[2] + "  last 1"));
  EXPECT_THAT(text.out, HasSubstr("dry run: kept 2, would remove 1 backup of 1 VM"));

  RunResult js = Prune({"-n", "--keep-last", "2", "--json"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  const nlohmann::json report = nlohmann::json::parse(js.out);
  EXPECT_TRUE(report["dry_run"].get<bool>());
  EXPECT_EQ(report["removed"], 1);
  EXPECT_EQ(report["kept"], 2);
  const nlohmann::json& vm = report["vms"][0];
  EXPECT_EQ(vm["name"], "web");
  EXPECT_EQ(vm["policy"], "keep-last 2");
  EXPECT_EQ(vm["policy_from"], "command line");
  ASSERT_EQ(vm["removed"].size(), 1u);
  EXPECT_EQ(vm["removed"][0]["name"], names[0]);
  EXPECT_TRUE(vm["removed"][0]["rule"].is_null());
  ASSERT_EQ(vm["kept"].size(), 2u);
  EXPECT_EQ(vm["kept"][1]["rule"], "last 1");
  EXPECT_EQ(vm["kept"][1]["path"].get<std::string>().rfind("web/", 0), 0u);

  // A dry run takes no lock: it works beside a writer.
  RunResult beside = RunCmd({"flock", repo_ + "/lock", VmvaultPath(), "prune", "--repo", repo_,
                             "--dry-run", "--keep-last", "1", "--force"});
  EXPECT_EQ(beside.exit_code, 0) << beside.err;
  EXPECT_EQ(NamesOf("web"), names);
}

TEST_F(PruneTest, MoreThanHalfOfAVmIsRefusedWithoutForce) {
  ASSERT_NO_FATAL_FAILURE(Backups("small", 2));
  ASSERT_NO_FATAL_FAILURE(Backups("big", 3));
  const std::vector<std::string> big = NamesOf("big");

  // small loses 1 of 2 (half: allowed); big would lose 2 of 3 and keeps them all.
  RunResult r = Prune({"--keep-last", "1"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_THAT(r.err, HasSubstr("VM big: the policy (keep-last 1) would remove 2 of its 3 backups, "
                               "more than half; nothing was removed"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_THAT(r.err, Not(HasSubstr("VM small")));
  EXPECT_EQ(NamesOf("small").size(), 1u);
  EXPECT_EQ(NamesOf("big").size(), 3u);

  // A dry run says the same, with the same exit status.
  RunResult dry = Prune({"--dry-run", "--keep-last", "1", "--vm", "big"});
  EXPECT_EQ(dry.exit_code, kExitBadInput);
  EXPECT_THAT(dry.out, HasSubstr("refused: 2 of 3 would go"));

  RunResult forced = Prune({"--keep-last", "1", "--force", "--vm", "big"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(NamesOf("big").size(), 1u);
  EXPECT_EQ(NamesOf("big"), std::vector<std::string>{big.back()});
}

TEST_F(PruneTest, ASecondWriterIsBusyAndRemovesNothing) {
  ASSERT_NO_FATAL_FAILURE(Backups("web", 2));
  RunResult r = RunCmd(
      {"flock", repo_ + "/lock", VmvaultPath(), "prune", "--repo", repo_, "--keep-last", "1"});
  EXPECT_EQ(r.exit_code, kExitBusy) << r.err;
  EXPECT_THAT(r.err, HasSubstr("busy"));
  EXPECT_EQ(NamesOf("web").size(), 2u);
}

TEST_F(PruneTest, ThePolicyComesFromTheConfigurationFileWhenNoOptionGivesOne) {
  ASSERT_NO_FATAL_FAILURE(Backups("web", 2));
  ASSERT_NO_FATAL_FAILURE(Backups("db", 2));

  // Neither the command line nor a file gives a rule: a usage error, nothing removed.
  RunResult none = Prune({"--config", tmp_ / "missing.toml"});
  EXPECT_EQ(none.exit_code, kExitBadInput);
  EXPECT_THAT(none.err, HasSubstr("no retention policy"));
  EXPECT_THAT(none.err, HasSubstr("--keep-last"));
  const std::string empty = Write("empty.toml", "[schedule]\nconcurrency = 1\n");
  RunResult no_rule = Prune({"--config", empty});
  EXPECT_EQ(no_rule.exit_code, kExitBadInput);
  EXPECT_THAT(no_rule.err, HasSubstr("no retention policy: " + empty));
  RunResult env = RunCmd({VmvaultPath(), "prune", "--repo", repo_},
                         {"VMVAULT_CONFIG=" + (tmp_ / "missing.toml")});
  EXPECT_EQ(env.exit_code, kExitBadInput);
  EXPECT_EQ(NamesOf("web").size(), 2u);
  EXPECT_EQ(NamesOf("db").size(), 2u);

  // A policy on the command line and a file to read it from: which one?
  EXPECT_EQ(Prune({"--config", empty, "--keep-last", "1"}).exit_code, kExitUsage);
  EXPECT_EQ(Prune({"--keep-daily", "-1"}).exit_code, kExitUsage);
  EXPECT_EQ(Prune({"--max-count", "0"}).exit_code, kExitUsage);
  RunResult short_age = Prune({"--max-age", "10m"});
  EXPECT_EQ(short_age.exit_code, kExitUsage);
  EXPECT_THAT(short_age.err, HasSubstr("too short"));
  EXPECT_EQ(Prune({"--vm", "nope", "--keep-last", "1"}).exit_code, kExitBadInput);

  // Only web has a policy; db keeps everything under the built-in default.
  const std::string config = Write("config.toml", "[retention.vm.\"web\"]\nkeep-last = 1\n");
  RunResult r = Prune({"--config", config, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json report = nlohmann::json::parse(r.out);
  ASSERT_EQ(report["vms"].size(), 2u);
  EXPECT_EQ(report["vms"][0]["name"], "db");
  EXPECT_EQ(report["vms"][0]["policy"], "keep everything");
  EXPECT_EQ(report["vms"][0]["policy_from"], "built-in default");
  EXPECT_EQ(report["vms"][1]["policy_from"], config + ":1");
  EXPECT_EQ(NamesOf("web").size(), 1u);
  EXPECT_EQ(NamesOf("db").size(), 2u);
}

TEST_F(PruneTest, QuietUnderCron) {
  ASSERT_NO_FATAL_FAILURE(Backups("web", 3));
  // As under cron: stdout and stderr are files, so a good prune prints nothing.
  RunResult r = Prune({"--keep-last", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(NamesOf("web").size(), 2u);
  // -q silences a dry run's listing too.
  RunResult q = Prune({"-q", "--dry-run", "--keep-last", "1"});
  EXPECT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(q.out, "");
}

}  // namespace
}  // namespace vmvault::testing
