// Image-format views checked by the real tools: each view is written to a sparse file
// and handed to qemu-img (check, compare against the raw view, info) and used as the
// backing file of a qcow2 overlay that qemu-io writes to.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fs/chunk_cache.h"
#include "fs/data_map.h"
#include "fs/index_page_cache.h"
#include "fs/qcow2_view.h"
#include "fs/raw_view.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"
#include "tests/fs/view_file_util.h"

namespace vmvault::fs {
namespace {

using testing::CommandResult;
using testing::CommitDisks;
using testing::DiskSpec;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

struct FileCase {
  std::string label;
  uint32_t chunk_size = 64 << 10;
  DiskSpec disk;
  bool overlay = true;  // also use the image as a backing file
};

void PrintTo(const FileCase& c, std::ostream* os) { *os << c.label; }

std::vector<FileCase> Cases() {
  std::vector<FileCase> cases;
  auto add = [&](std::string label, uint32_t cs, uint64_t size, std::function<bool(uint64_t)> data,
                 bool overlay = true) {
    FileCase c;
    c.label = std::move(label);
    c.chunk_size = cs;
    c.disk.size = size;
    c.disk.seed = cases.size() + 3;
    c.disk.has_data = std::move(data);
    c.overlay = overlay;
    cases.push_back(std::move(c));
  };
  constexpr uint32_t k64K = 64 << 10;
  constexpr uint32_t k256K = 256 << 10;
  constexpr uint32_t k1M = 1 << 20;
  constexpr uint32_t k4M = 4 << 20;
  add("sparse_64k", k64K, 300ull << 20, [](uint64_t s) { return s % 97 == 3 || s == 4799; });
  add("sparse_l2_ranges_64k", k64K, 3ull << 30,
      [](uint64_t s) { return s == 8191 || s == 8192 || s == 40000 || s == 49151; });
  add("full_256k", k256K, 40ull * k256K + 1000, [](uint64_t) { return true; });
  add("single_chunk_1m", k1M, k1M, [](uint64_t) { return true; });
  add("not_multiple_64k", k64K, 5ull * k64K + 1, [](uint64_t s) { return s != 2; });
  // The last 4 MiB slot holds 1 MiB + 3 bytes: only its first 2 MiB cluster is mapped.
  add("not_multiple_small_tail_4m", k4M, 3ull * k4M + k1M + 3, [](uint64_t) { return true; });
  add("not_multiple_large_tail_4m", k4M, 2ull * k4M + 3 * k1M, [](uint64_t s) { return s != 0; });
  add("tiny_not_sector_multiple", k64K, 1000, [](uint64_t) { return true; });
  const auto all = [](uint64_t) { return true; };
  add("empty", k64K, 0, all, /*overlay=*/false);
  add("sparse_4t_4m", k4M, 4ull << 40, [](uint64_t s) {
    return s == 0 || s == 1 || s == 131071 || s == 131072 || s == 700000 || s == (1ull << 20) - 1;
  });
  return cases;
}

class ViewFilesTest : public ::testing::TestWithParam<FileCase> {
 protected:
  void SetUp() override {
    if (RunCommand("qemu-img --version").exit_code != 0) GTEST_SKIP() << "no qemu-img";
    const FileCase& c = GetParam();
    repo_ = store::Repository::OpenInMemory(testing::TestConfig(c.chunk_size));
    auto b = CommitDisks(repo_.get(), testing::MakeVm("vm1"), testing::TestTime(), {c.disk});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backup_ = *b;
    pages_ = std::make_unique<IndexPageCache>(&repo_->catalog(), 4 << 20);
    cache_ = std::make_unique<ChunkCache>(&repo_->chunks(), 32 << 20, c.chunk_size);
    reader_ = std::make_unique<ViewReader>(cache_.get(), nullptr);
    raw_ = std::make_shared<RawView>(pages_.get(), backup_.id, 0, backup_.disks[0]);
    store::Catalog* catalog = &repo_->catalog();
    IndexPageCache* pages = pages_.get();
    const uint64_t id = backup_.id;
    const store::DiskRecord rec = backup_.disks[0];
    qcow2_ = std::make_shared<Qcow2View>(
        raw_, [catalog, pages, id, rec] { return DataMap::Load(*catalog, pages, id, 0, rec); });
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
  std::unique_ptr<store::Repository> repo_;
  store::BackupRecord backup_;
  std::unique_ptr<IndexPageCache> pages_;
  std::unique_ptr<ChunkCache> cache_;
  std::unique_ptr<ViewReader> reader_;
  std::shared_ptr<RawView> raw_;
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

std::vector<FileCase> BackingCases() {
  std::vector<FileCase> out;
  for (FileCase& c : Cases()) {
    if (c.overlay) out.push_back(std::move(c));
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, ViewFilesTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.label; });
INSTANTIATE_TEST_SUITE_P(Shapes, ViewFilesBackingTest, ::testing::ValuesIn(BackingCases()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace vmvault::fs
