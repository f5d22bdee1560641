// Image-format views checked by the real tools: each view is written to a sparse file
// and handed to qemu-img (check, compare against the raw view, info) and used as the
// backing file of a qcow2 overlay that qemu-io writes to.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fs/qcow2_view.h"
#include "fs/raw_view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"
#include "tests/fs/view_file_util.h"
#include "tests/fs/view_test_util.h"

namespace vmvault::fs {
namespace {

using testing::CommandResult;
using testing::CommittedDisk;
using testing::CommittedDiskOptions;
using testing::DiskSpec;
using testing::MakeShape;
using testing::NumberSeeds;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;
using testing::ViewShape;

std::vector<ViewShape> Cases() {
  constexpr uint32_t k64K = 64 << 10;
  constexpr uint32_t k256K = 256 << 10;
  constexpr uint32_t k1M = 1 << 20;
  constexpr uint32_t k4M = 4 << 20;
  const auto all = [](uint64_t) { return true; };
  std::vector<ViewShape> c;
  c.push_back(MakeShape("sparse_64k", k64K, 300ull << 20,
                        [](uint64_t s) { return s % 97 == 3 || s == 4799; }));
  c.push_back(MakeShape("sparse_l2_ranges_64k", k64K, 3ull << 30, [](uint64_t s) {
    return s == 8191 || s == 8192 || s == 40000 || s == 49151;
  }));
  c.push_back(MakeShape("full_256k", k256K, 40ull * k256K + 1000, all));
  c.push_back(MakeShape("single_chunk_1m", k1M, k1M, all));
  c.push_back(
      MakeShape("not_multiple_64k", k64K, 5ull * k64K + 1, [](uint64_t s) { return s != 2; }));
  // The last 4 MiB slot holds 1 MiB + 3 bytes: only its first 2 MiB cluster is mapped.
  c.push_back(MakeShape("not_multiple_small_tail_4m", k4M, 3ull * k4M + k1M + 3, all));
  c.push_back(MakeShape("not_multiple_large_tail_4m", k4M, 2ull * k4M + 3 * k1M,
                        [](uint64_t s) { return s != 0; }));
  c.push_back(MakeShape("tiny_not_sector_multiple", k64K, 1000, all));
  c.push_back(MakeShape("empty", k64K, 0, all));
  c.push_back(MakeShape("sparse_4t_4m", k4M, 4ull << 40, [](uint64_t s) {
    return s == 0 || s == 1 || s == 131071 || s == 131072 || s == 700000 || s == (1ull << 20) - 1;
  }));
  NumberSeeds(&c, 3);
  return c;
}

class ViewFilesTest : public ::testing::TestWithParam<ViewShape> {
 protected:
  void SetUp() override {
    if (RunCommand("qemu-img --version").exit_code != 0) GTEST_SKIP() << "no qemu-img";
    disk_ = std::make_unique<CommittedDisk>(
        GetParam().chunk_size, GetParam().disk,
        CommittedDiskOptions{.page_cache_bytes = 4 << 20, .chunk_cache_bytes = 32 << 20});
    ASSERT_TRUE(disk_->status.ok()) << disk_->status.ToString();
    raw_ = disk_->raw;
    reader_ = disk_->reader.get();
    qcow2_ = std::make_shared<Qcow2View>(raw_, disk_->MapLoader());
    raw_path_ = dir_ / "disk.raw";
    qcow2_path_ = dir_ / "disk.qcow2";
    auto raw_written = testing::WriteSparseFile(raw_, *reader_, raw_path_);
    ASSERT_TRUE(raw_written.ok()) << raw_written.status().ToString();
    auto written = testing::WriteSparseFile(qcow2_, *reader_, qcow2_path_);
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    EXPECT_EQ(*written, qcow2_->allocated_bytes());
  }

  static std::string FileBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  TempDir dir_;
  std::unique_ptr<CommittedDisk> disk_;
  std::shared_ptr<RawView> raw_;
  const ViewReader* reader_ = nullptr;
  std::shared_ptr<Qcow2View> qcow2_;
  std::string raw_path_;
  std::string qcow2_path_;
};

TEST_P(ViewFilesTest, Qcow2PassesQemuImgCheckCompareAndInfo) {
  const DiskSpec& d = GetParam().disk;
  const std::string q = ShellQuote(qcow2_path_);

  const CommandResult check = RunCommand("qemu-img check -f qcow2 " + q);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("No errors were found on the image."), std::string::npos)
      << check.output;
  EXPECT_EQ(check.output.find("eak"), std::string::npos) << check.output;  // Leaked, leaks

  const CommandResult compare =
      RunCommand("qemu-img compare -f raw -F qcow2 " + ShellQuote(raw_path_) + " " + q);
  EXPECT_EQ(compare.exit_code, 0) << compare.output;
  EXPECT_NE(compare.output.find("Images are identical."), std::string::npos) << compare.output;

  const CommandResult info = RunCommand("qemu-img info -f qcow2 --output=json " + q);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  const auto json = nlohmann::json::parse(info.output, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(json.is_discarded()) << info.output;
  // qemu counts whole sectors: the image's virtual size is the disk's, rounded up to 512.
  EXPECT_EQ(json.value("virtual-size", uint64_t{1}), (d.size + 511) / 512 * 512) << info.output;
  EXPECT_EQ(json.value("cluster-size", uint64_t{0}),
            Qcow2View::ClusterSizeFor(GetParam().chunk_size));
  EXPECT_FALSE(json.contains("backing-filename")) << info.output;
}

// Shapes qemu-io can write an overlay of (not the empty disk).
class ViewFilesBackingTest : public ViewFilesTest {};

TEST_P(ViewFilesBackingTest, Qcow2WorksAsABackingFile) {
  const DiskSpec& d = GetParam().disk;
  const std::string overlay = dir_ / "overlay.qcow2";
  const std::string before = FileBytes(qcow2_path_);
  const CommandResult create =
      RunCommand("qemu-img create -q -f qcow2 -b " + ShellQuote(qcow2_path_) + " -F qcow2 " +
                 ShellQuote(overlay));
  ASSERT_EQ(create.exit_code, 0) << create.output;

  const uint64_t image_size = (d.size + 511) / 512 * 512;
  const uint64_t len = std::min<uint64_t>(64 << 10, image_size);
  const std::string n = std::to_string(len);
  const CommandResult write =
      RunCommand("qemu-io -f qcow2 -c 'write -P 0xab 0 " + n + "' " + ShellQuote(overlay));
  ASSERT_EQ(write.exit_code, 0) << write.output;
  EXPECT_NE(write.output.find("wrote " + n + "/" + n + " bytes"), std::string::npos)
      << write.output;
  EXPECT_TRUE(FileBytes(qcow2_path_) == before) << "the backing file changed";

  const CommandResult read =
      RunCommand("qemu-io -f qcow2 -c 'read -P 0xab 0 " + n + "' " + ShellQuote(overlay));
  EXPECT_EQ(read.exit_code, 0) << read.output;
  EXPECT_EQ(read.output.find("Pattern verification failed"), std::string::npos) << read.output;
  EXPECT_NE(read.output.find("read " + n + "/" + n + " bytes"), std::string::npos) << read.output;

  // Everywhere else the overlay reads the backup: compare with the raw disk plus the write.
  const std::string expected = dir_ / "expected.raw";
  auto copied = testing::WriteSparseFile(raw_, *reader_, expected);
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  {
    const std::string pattern(len, '\xab');
    std::fstream f(expected, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.write(pattern.data(), static_cast<std::streamsize>(len));
  }
  const CommandResult compare = RunCommand("qemu-img compare -f qcow2 -F raw " +
                                           ShellQuote(overlay) + " " + ShellQuote(expected));
  EXPECT_EQ(compare.exit_code, 0) << compare.output;
}

std::vector<ViewShape> BackingCases() {
  std::vector<ViewShape> out;
  for (ViewShape& c : Cases()) {
    if (c.disk.size > 0) out.push_back(std::move(c));
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, ViewFilesTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.label; });
INSTANTIATE_TEST_SUITE_P(Shapes, ViewFilesBackingTest, ::testing::ValuesIn(BackingCases()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace vmvault::fs
