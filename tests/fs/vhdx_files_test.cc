// The VHDX view as real qemu-img sees it. Each shape is committed to an in-memory
// repository; its raw view and its VHDX view are written to sparse files through
// ViewImage (data extents only, then ftruncate), and qemu-img checks, compares and
// describes them. Needs qemu-img on PATH; labelled integration.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fs/chunk_cache.h"
#include "fs/data_map.h"
#include "fs/index_page_cache.h"
#include "fs/raw_view.h"
#include "fs/vhdx_view.h"
#include "fs/view_image.h"
#include "fs/view_reader.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs {
namespace {

using testing::DiskSpec;
using testing::TempDir;

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

// Runs `command` through the shell; its stdout lands in *out.
int RunShell(const TempDir& tmp, const std::string& command, std::string* out) {
  const std::string out_path = tmp / "cmd.out";
  const int status = std::system((command + " >'" + out_path + "' 2>&1").c_str());
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Writes the view's data extents to a new sparse file of the view's size.
Status WriteSparse(std::shared_ptr<const View> view, const ViewReader& reader,
                   const std::string& path) {
  VV_RETURN_IF_ERROR(view->Load());
  ViewImage image(view, &reader);
  VV_ASSIGN_OR_RETURN(std::vector<Extent> extents, image.Extents());
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) return Status::FromErrno(errno, path);
  std::vector<uint8_t> buf(4 * kMiB);
  Status s;
  for (const Extent& e : extents) {
    if (!e.data) continue;
    for (uint64_t off = e.offset; off < e.end() && s.ok(); off += buf.size()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), e.end() - off));
      s = image.ReadAt(off, std::span<uint8_t>(buf.data(), n));
      if (s.ok() &&
          ::pwrite(fd, buf.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) {
        s = Status::FromErrno(errno, path);
      }
    }
  }
  if (s.ok() && ::ftruncate(fd, static_cast<off_t>(image.size())) != 0) {
    s = Status::FromErrno(errno, path);
  }
  ::close(fd);
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
  if (std::system("qemu-img --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no qemu-img";
  const Shape& shape = GetParam();
  const uint32_t cs = shape.chunk_size;
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(cs));
  auto b =
      testing::CommitDisks(repo.get(), testing::MakeVm("vm"), testing::TestTime(), {shape.disk});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const store::BackupRecord backup = *b;
  IndexPageCache pages(&repo->catalog(), 16 << 20);
  ChunkCache cache(&repo->chunks(), 64 << 20, cs);
  ThreadPool pool(2);
  ViewReader reader(&cache, &pool);
  auto raw = std::make_shared<RawView>(&pages, backup.id, 0, backup.disks[0]);
  store::Catalog* catalog = &repo->catalog();
  auto vhdx = std::make_shared<VhdxView>(
      raw,
      [catalog, &pages, backup] {
        return DataMap::Load(*catalog, &pages, backup.id, 0, backup.disks[0]);
      },
      backup.id);

  TempDir tmp;
  const std::string raw_path = tmp / "disk.raw";
  const std::string vhdx_path = tmp / "disk.vhdx";
  ASSERT_TRUE(WriteSparse(raw, reader, raw_path).ok());
  const Status written = WriteSparse(vhdx, reader, vhdx_path);
  ASSERT_TRUE(written.ok()) << written.ToString();

  std::string out;
  EXPECT_EQ(RunShell(tmp, "qemu-img check -f vhdx '" + vhdx_path + "'", &out), 0) << out;
  EXPECT_NE(out.find("No errors were found"), std::string::npos) << out;

  ASSERT_EQ(RunShell(tmp, "qemu-img info --output=json -f vhdx '" + vhdx_path + "'", &out), 0)
      << out;
  const auto info = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(info.is_discarded()) << out;
  EXPECT_EQ(info.value("virtual-size", uint64_t{1}), (shape.disk.size + 511) / 512 * 512) << out;
  EXPECT_EQ(info.value("format", ""), "vhdx");
  EXPECT_EQ(info.value("cluster-size", uint64_t{0}), std::max<uint64_t>(kMiB, cs)) << out;

  if (shape.whole_compare) {
    EXPECT_EQ(
        RunShell(tmp, "qemu-img compare -f raw -F vhdx '" + raw_path + "' '" + vhdx_path + "'",
                 &out),
        0)
        << out;
  }
  // Windows read out by qemu itself (qemu-img dd), against the raw file. qemu-img dd
  // counts `count` from the start of the input, skipped blocks included.
  for (uint64_t w : shape.windows) {
    const std::string part = tmp / "window.raw";
    ASSERT_EQ(RunShell(tmp,
                       "qemu-img dd -f vhdx -O raw bs=1M skip=" + std::to_string(w / kMiB) +
                           " count=" + std::to_string(w / kMiB + 2) + " if='" + vhdx_path +
                           "' of='" + part + "'",
                       &out),
              0)
        << out;
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
