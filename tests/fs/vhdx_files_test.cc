// The VHDX view as real qemu-img sees it. Each shape is committed to an in-memory
// repository; its raw view and its VHDX view are written to sparse files (data extents
// only, view_file_util.h), and qemu-img checks, compares and describes them. Needs
// qemu-img on PATH; labelled integration.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fs/vhdx_view.h"
#include "tests/fs/fs_test_util.h"
#include "tests/fs/view_file_util.h"
#include "tests/fs/view_test_util.h"

namespace vmvault::fs {
namespace {

using testing::CommandResult;
using testing::CommittedDisk;
using testing::DiskSpec;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;
using testing::WriteSparseFile;

constexpr uint64_t kMiB = 1 << 20;

struct Shape {
  std::string label;
  uint32_t chunk_size = 0;
  DiskSpec disk;
  bool whole_compare = true;           // false: too big for qemu-img compare; read windows instead
  std::vector<uint64_t> windows = {};  // 1 MiB-aligned guest offsets to read 2 MiB at
};

// Names the shape in test listings instead of dumping its bytes.
void PrintTo(const Shape& shape, std::ostream* os) { *os << shape.label; }

std::vector<Shape> Shapes() {
  std::vector<Shape> s;
  auto add = [&](std::string label, uint32_t cs, uint64_t size,
                 std::function<bool(uint64_t)> data) {
    Shape shape;
    shape.label = std::move(label);
    shape.chunk_size = cs;
    shape.disk.size = size;
    shape.disk.seed = s.size() + 5;
    shape.disk.has_data = std::move(data);
    s.push_back(std::move(shape));
    return &s.back();
  };
  add("sparse_64k", 64 << 10, 300 * kMiB,
      [](uint64_t slot) { return slot % 97 == 3 || slot == 4799 || (slot >= 40 && slot < 70); });
  add("full_256k", 256 << 10, 12 * kMiB + 3 * (256 << 10), [](uint64_t) { return true; });
  add("single_chunk_1m", 1 << 20, 1 << 20, [](uint64_t) { return true; });
  add("not_multiple_64k", 64 << 10, 5 * (64 << 10) + 1, [](uint64_t slot) { return slot != 2; });
  add("not_multiple_4m", 4 << 20, 2 * (4 << 20) + (1 << 20) + 777,
      [](uint64_t slot) { return slot != 0; });
  add("empty_64k", 64 << 10, 0, [](uint64_t) { return true; });
  const uint64_t tb4 = 4ull << 40;
  const uint64_t last = tb4 / kMiB - 1;
  Shape* big = add("sparse_4tib_1m", 1 << 20, tb4, [last](uint64_t slot) {
    return slot == 0 || slot == 1'000'003 || slot == 3'333'333 || slot == last;
  });
  big->whole_compare = false;
  big->windows = {0, 1'000'002 * kMiB, 3'333'332 * kMiB, 2'000'000 * kMiB, last * kMiB - kMiB};
  return s;
}

std::string ReadFileRange(const std::string& path, uint64_t off, uint64_t len) {
  std::string s(len, '\0');
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return {};
  const ssize_t n = ::pread(fd, s.data(), len, static_cast<off_t>(off));
  ::close(fd);
  s.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return s;
}

class VhdxFilesTest : public ::testing::TestWithParam<Shape> {};

TEST_P(VhdxFilesTest, QemuImgChecksComparesAndSizesIt) {
  if (RunCommand("qemu-img --version").exit_code != 0) GTEST_SKIP() << "no qemu-img";
  const Shape& shape = GetParam();
  const uint32_t cs = shape.chunk_size;
  const CommittedDisk disk(cs, shape.disk, {.reader_threads = 2});
  ASSERT_TRUE(disk.status.ok()) << disk.status.ToString();
  auto vhdx = std::make_shared<VhdxView>(disk.raw, disk.MapLoader(), disk.backup.id);

  TempDir tmp;
  const std::string raw_path = tmp / "disk.raw";
  const std::string vhdx_path = tmp / "disk.vhdx";
  ASSERT_TRUE(WriteSparseFile(disk.raw, *disk.reader, raw_path).ok());
  const auto written = WriteSparseFile(vhdx, *disk.reader, vhdx_path);
  ASSERT_TRUE(written.ok()) << written.status().ToString();

  const CommandResult check = RunCommand("qemu-img check -f vhdx " + ShellQuote(vhdx_path));
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("No errors were found"), std::string::npos) << check.output;

  const CommandResult info =
      RunCommand("qemu-img info --output=json -f vhdx " + ShellQuote(vhdx_path));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  const auto json = nlohmann::json::parse(info.output, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(json.is_discarded()) << info.output;
  EXPECT_EQ(json.value("virtual-size", uint64_t{1}), (shape.disk.size + 511) / 512 * 512)
      << info.output;
  EXPECT_EQ(json.value("format", ""), "vhdx");
  EXPECT_EQ(json.value("cluster-size", uint64_t{0}), std::max<uint64_t>(kMiB, cs)) << info.output;

  if (shape.whole_compare) {
    const CommandResult compare = RunCommand("qemu-img compare -f raw -F vhdx " +
                                             ShellQuote(raw_path) + " " + ShellQuote(vhdx_path));
    EXPECT_EQ(compare.exit_code, 0) << compare.output;
  }
  // Windows read out by qemu itself (qemu-img dd), against the raw file. qemu-img dd
  // counts `count` from the start of the input, skipped blocks included.
  for (uint64_t w : shape.windows) {
    const std::string part = tmp / "window.raw";
    const CommandResult dd =
        RunCommand("qemu-img dd -f vhdx -O raw bs=1M skip=" + std::to_string(w / kMiB) +
                   " count=" + std::to_string(w / kMiB + 2) + " if=" + ShellQuote(vhdx_path) +
                   " of=" + ShellQuote(part));
    ASSERT_EQ(dd.exit_code, 0) << dd.output;
    ASSERT_EQ(ReadFileRange(part, 0, 4 * kMiB).size(), 2 * kMiB);
    EXPECT_TRUE(ReadFileRange(part, 0, 2 * kMiB) == ReadFileRange(raw_path, w, 2 * kMiB))
        << "window at " << w;
    ::unlink(part.c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, VhdxFilesTest, ::testing::ValuesIn(Shapes()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace vmvault::fs
