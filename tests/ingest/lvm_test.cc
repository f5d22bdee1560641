// --lvm orchestration with a FakeCommandRunner (this kernel has no device-mapper, so LVM
// snapshots cannot be made here), plus the real `dmsetup version` giving a clear error.
#include "ingest/lvm.h"

#include <gtest/gtest.h>

#include "ingest/command_runner.h"
#include "ingest/fake_command_runner.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

class LvmTest : public ::testing::Test {
 protected:
  void SetUp() override { repo_ = store::Repository::OpenInMemory({}); }
  Result<store::BackupRecord> Run(const std::string& volume) {
    LvmIngestOptions opts;
    opts.volume = volume;
    return IngestLvmVolume(*repo_, opts, runner_, clock_, opener_);
  }
  std::unique_ptr<store::Repository> repo_;
  FakeCommandRunner runner_;
  testing::MemSourceOpener opener_;
  FakeClock clock_{1'700'000'000'000'000};
};

TEST_F(LvmTest, NoDeviceMapperFailsBeforeTouchingAnything) {
  runner_.Expect({"dmsetup", "version"}, 1, "",
                 "/dev/mapper/control: open failed: No such device\n");
  auto r = Run("vg0/web");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("device-mapper"), std::string::npos);
  EXPECT_EQ(runner_.calls().size(), 1u);
}

TEST_F(LvmTest, BadVolumeNamesAreRefused) {
  for (const char* v : {"web", "vg0/", "/web", "vg0/we b", "vg0/-x", "vg0/../x"}) {
    auto r = Run(v);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << v;
  }
  EXPECT_TRUE(runner_.calls().empty());
}

TEST_F(LvmTest, TheSnapshotIsRemovedEvenWhenTheBackupFails) {
  runner_.Expect({"dmsetup", "version"}, 0, "Library version: 1.02\n");
  runner_.Expect({"lvcreate", "--snapshot", "--name", "vmvault-snap-web", "--extents",
                  "10%ORIGIN", "vg0/web"},
                 0, "  Logical volume \"vmvault-snap-web\" created.\n");
  runner_.Expect({"lvremove", "--force", "vg0/vmvault-snap-web"}, 0, "");
  // The snapshot device does not exist here, so reading it fails.
  auto r = Run("vg0/web");
  ASSERT_FALSE(r.ok());
  const auto calls = runner_.calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), (std::vector<std::string>{"lvremove", "--force", "vg0/vmvault-snap-web"}));
  EXPECT_TRUE(repo_->catalog().ListVms()->empty());
}

TEST_F(LvmTest, ALeftoverSnapshotIsNamedInTheError) {
  runner_.Expect({"dmsetup", "version"}, 0, "");
  runner_.Expect({"lvcreate", "--snapshot", "--name", "vmvault-snap-web", "--extents",
                  "10%ORIGIN", "vg0/web"},
                 5, "", "  Logical Volume \"vmvault-snap-web\" already exists in volume group \"vg0\"\n");
  auto r = Run("vg0/web");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("already exists"), std::string::npos);
  EXPECT_EQ(runner_.calls().size(), 2u);  // nothing to remove: it was not ours
}

TEST(DeviceMapperTest, TheRealCheckAnswersClearly) {
  RealCommandRunner runner;
  Status s = CheckDeviceMapper(runner);
  // This kernel has no device-mapper; where one exists the check passes.
  if (!s.ok()) {
    EXPECT_EQ(s.code(), StatusCode::kUnsupported);
    EXPECT_NE(s.message().find("device-mapper"), std::string::npos) << s.ToString();
  }
}

}  // namespace
}  // namespace vmvault::ingest
