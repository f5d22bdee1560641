// The raw view, end to end: images of every common format are ingested with the
// vmvault binary, the repository is mounted with FUSE, and the raw view is compared
// byte for byte with `qemu-img convert -O raw` of the source.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {
namespace {

class RawViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root for FUSE and loop devices";
    repo_ = tmp_ / "repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_}).exit_code, 0);
  }

  RunResult Ingest(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{VmvaultPath(), "ingest", "--repo", repo_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCmd(argv);
  }

  // A 37 MiB + 64 KiB raw disk: random data at unaligned places, text, and holes.
  std::string MakeRawSource(const std::string& name) {
    const std::string raw = tmp_ / name;
    EXPECT_EQ(Sh("truncate -s 37M " + raw + " && truncate -s +64K " + raw), 0);
    EXPECT_EQ(Sh("head -c 65536 /dev/urandom | dd of=" + raw + " conv=notrunc status=none"), 0);
    EXPECT_EQ(Sh("head -c 1572864 /dev/urandom | dd of=" + raw +
                 " bs=4096 seek=769 conv=notrunc status=none"), 0);  // 3 MiB + 4 KiB
    EXPECT_EQ(Sh("yes 'guest log line' | head -c 2000000 | dd of=" + raw +
                 " bs=512 seek=40960 conv=notrunc status=none"), 0);  // 20 MiB
    EXPECT_EQ(Sh("head -c 65536 /dev/urandom | dd of=" + raw +
                 " bs=65536 seek=592 conv=notrunc status=none"), 0);  // the last 64 KiB
    return raw;
  }

  TempDir tmp_;
  std::string repo_;
};

class RawViewFormatTest : public RawViewTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(RawViewFormatTest, MatchesQemuImgConvert) {
  const std::string format = GetParam();
  const std::string raw = MakeRawSource("source.raw");
  const std::string image = tmp_ / ("disk." + format);
  ASSERT_EQ(RunCmd({"qemu-img", "convert", "-O", format, raw, image}).exit_code, 0);
  const std::string expected = tmp_ / "expected.raw";
  ASSERT_EQ(RunCmd({"qemu-img", "convert", "-O", "raw", image, expected}).exit_code, 0);

  RunResult r = Ingest({"--file", image, "--vm", "vm-" + format});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string view = mount.path() + "/vm-" + format + "/latest/disk.raw";
  struct stat st;
  ASSERT_EQ(::stat(view.c_str(), &st), 0);
  // vpc rounds the size up to its CHS geometry; the others keep it exactly.
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), std::filesystem::file_size(expected));
  if (format != "vpc") {
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), (37ull << 20) + (64 << 10));
  }
  EXPECT_EQ(CompareFiles(view, expected), "");
}

INSTANTIATE_TEST_SUITE_P(Formats, RawViewFormatTest,
                         ::testing::Values("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc"));

TEST_F(RawViewTest, SeveralFilesMakeOneBackupWithSeveralDisks) {
  const std::string a = MakeRawSource("system.raw");
  const std::string b = tmp_ / "data.qcow2";
  ASSERT_EQ(RunCmd({"qemu-img", "convert", "-O", "qcow2", MakeRawSource("data.raw"), b}).exit_code, 0);
  RunResult r = Ingest({"--file", a, "--file", b, "--vm", "two-disks"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto list = ListJson(repo_);
  ASSERT_EQ(list.size(), 1u);
  ASSERT_EQ(list[0]["backups"].size(), 1u);
  EXPECT_EQ(list[0]["backups"][0]["disks"].size(), 2u);

  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  EXPECT_EQ(CompareFiles(mount.path() + "/two-disks/latest/system.raw", a), "");
  const std::string expected = tmp_ / "data-expected.raw";
  ASSERT_EQ(RunCmd({"qemu-img", "convert", "-O", "raw", b, expected}).exit_code, 0);
  EXPECT_EQ(CompareFiles(mount.path() + "/two-disks/latest/data.raw", expected), "");
}

TEST_F(RawViewTest, GuestFileReadableByLoopMountingTheRawView) {
  // An MBR disk whose first partition, at 1 MiB, holds an ext4 filesystem with files.
  const std::string guest = tmp_ / "guest";
  ASSERT_EQ(Sh("mkdir -p " + guest + "/etc && echo 'hello from the guest' > " + guest +
               "/etc/motd && head -c 3000000 /dev/urandom > " + guest + "/blob"), 0);
  const std::string part = tmp_ / "part.ext4", disk = tmp_ / "disk.raw";
  ASSERT_EQ(Sh("truncate -s 40M " + part + " && mkfs.ext4 -q -F -d " + guest + " " + part), 0);
  ASSERT_EQ(Sh("truncate -s 48M " + disk + " && echo 'start=2048, type=83' | sfdisk -q " + disk +
               " && dd if=" + part + " of=" + disk +
               " bs=1M seek=1 conv=notrunc,sparse status=none"), 0);
  const std::string image = tmp_ / "guest-vm.qcow2";
  ASSERT_EQ(RunCmd({"qemu-img", "convert", "-O", "qcow2", disk, image}).exit_code, 0);
  ASSERT_EQ(Ingest({"--file", image}).exit_code, 0);

  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string view = mount.path() + "/guest-vm/latest/guest-vm.raw";
  LoopMount loop(view, 1 << 20, tmp_ / "guestfs");
  ASSERT_TRUE(loop.ok());
  EXPECT_EQ(Slurp(tmp_ / "guestfs/etc/motd"), "hello from the guest\n");
  EXPECT_EQ(Slurp(tmp_ / "guestfs/blob"), Slurp(guest + "/blob"));
}

TEST_F(RawViewTest, SecondIngestAfterASmallChangeStoresAboutTheChangedBytes) {
  // 64 MiB of incompressible data, so stored bytes track changed bytes.
  const std::string disk = tmp_ / "busy.raw";
  ASSERT_EQ(Sh("head -c 64M /dev/urandom > " + disk), 0);
  ASSERT_EQ(Ingest({"--file", disk}).exit_code, 0);
  const uint64_t before = DiskUsage(repo_);

  // Change 2 MiB: 1 MiB at 10 MiB and 1 MiB at 30.5 MiB (which straddles 1 MiB chunks).
  ASSERT_EQ(Sh("head -c 1M /dev/urandom | dd of=" + disk +
               " bs=1M seek=10 conv=notrunc status=none"), 0);
  ASSERT_EQ(Sh("head -c 1M /dev/urandom | dd of=" + disk +
               " bs=512K seek=61 conv=notrunc status=none"), 0);
  RunResult r = Ingest({"--file", disk});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const uint64_t after = DiskUsage(repo_);

  auto list = ListJson(repo_);
  ASSERT_EQ(list[0]["backups"].size(), 2u);
  const auto& second = list[0]["backups"][1];
  const uint64_t chunk = second["disks"][0]["chunk_size"];
  const uint64_t new_stored = second["new_stored_bytes"];
  // The chunks the two changed ranges touch are new; no other chunk is.
  auto touched = [&](uint64_t begin, uint64_t end) { return (end - 1) / chunk - begin / chunk + 1; };
  const uint64_t new_chunks = touched(10ull << 20, 11ull << 20) + touched(61ull << 19, 63ull << 19);
  EXPECT_EQ(second["disks"][0]["new_chunks"], new_chunks);
  EXPECT_GE(new_stored, 2ull << 20);
  EXPECT_LE(new_stored, new_chunks * (chunk + 64));
  // And the repository on disk grew by about that much, not by the disk's size.
  EXPECT_LT(after - std::min(after, before), new_chunks * chunk + (16ull << 20))
      << "before " << before << " after " << after;

  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  EXPECT_EQ(CompareFiles(mount.path() + "/busy/latest/busy.raw", disk), "");
}

}  // namespace
}  // namespace vmvault::testing
