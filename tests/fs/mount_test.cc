#include "fs/mount.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

TEST(MountTest, ValidateMountpoint) {
  testing::TempDir tmp;
  EXPECT_TRUE(ValidateMountpoint(tmp.path()).ok());
  Status missing = ValidateMountpoint(tmp.path() + "/nope");
  EXPECT_TRUE(missing.IsNotFound());
  EXPECT_NE(missing.message().find("does not exist"), std::string::npos);
  std::ofstream(tmp.path() + "/file") << "x";
  Status file = ValidateMountpoint(tmp.path() + "/file");
  EXPECT_EQ(file.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(file.message().find("not a directory"), std::string::npos);
  Status full = ValidateMountpoint(tmp.path());
  EXPECT_EQ(full.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(full.message().find("not empty"), std::string::npos);
  EXPECT_FALSE(ValidateMountpoint("").ok());
}

TEST(MountTest, RunMountRefusesBadInputBeforeMounting) {
  testing::TempDir tmp;
  const std::string mnt = tmp.path() + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  MountOptions o;
  o.foreground = true;
  o.repo_path = tmp.path() + "/no-repo";
  o.mountpoint = mnt;
  Status s = RunMount(o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("repository"), std::string::npos) << s.ToString();

  o.mountpoint = tmp.path() + "/missing";
  EXPECT_TRUE(RunMount(o).IsNotFound());
}

TEST(MountTest, CheckRepositoryKeepsTheStoreStatus) {
#if defined(__SANITIZE_THREAD__)
  // RocksDB's threads outlive Repository::Init in this process, and ThreadSanitizer
  // cannot follow a child of a multi-threaded fork that starts threads (RocksDB's, in
  // CheckRepository's child). fs_integration_test checks the same path through the
  // mount, whose process has no threads when it forks.
  GTEST_SKIP() << "ThreadSanitizer does not support a multi-threaded fork that starts "
                  "threads; MountTest in fs_integration_test covers this under it";
#endif
  testing::TempDir tmp;
  Status missing = CheckRepository(tmp.path() + "/none");
  EXPECT_TRUE(missing.IsNotFound()) << missing.ToString();
  const std::string repo = tmp.path() + "/repo";
  ASSERT_TRUE(store::Repository::Init(repo, testing::TestConfig()).ok());
  EXPECT_TRUE(CheckRepository(repo).ok());
}

}  // namespace
}  // namespace vmvault::fs
