#include "fs/view_export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "fs/qcow2_view.h"
#include "tests/fs/view_test_util.h"

namespace vmvault::fs {
namespace {

std::string FileBytes(const std::string& path) {
  std::string s;
  const int fd = ::open(path.c_str(), O_RDONLY);
  char buf[1 << 16];
  for (ssize_t n; fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0;) s.append(buf, n);
  if (fd >= 0) ::close(fd);
  return s;
}

// Views exported to files come out byte for byte, sparse, and with the right size.
TEST(ViewExportTest, FilesGetTheViewsBytesAndKeepItsHoles) {
  constexpr uint32_t kCs = 64 << 10;
  testing::DiskSpec d;
  d.size = 300 * kCs + 4097;
  d.has_data = [](uint64_t slot) { return slot % 50 == 0 || slot == 300; };
  testing::CommittedDisk disk(kCs, d, {.reader_threads = 2});
  ASSERT_TRUE(disk.status.ok()) << disk.status.ToString();
  testing::TempDir tmp;
  const std::shared_ptr<const View> qcow2 =
      std::make_shared<Qcow2View>(disk.raw, disk.MapLoader());
  for (const auto& [name, view] :
       std::vector<std::pair<std::string, std::shared_ptr<const View>>>{{"raw", disk.raw},
                                                                        {"qcow2", qcow2}}) {
    SCOPED_TRACE(name);
    const std::string path = tmp.path() + "/out." + name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    Progress progress("export", 0, false);
    auto stats = ExportView(view, *disk.reader, fd, {.device = false, .progress = &progress});
    ::close(fd);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    ReadResult want;
    ASSERT_TRUE(disk.reader->Read(*view, 0, view->size(), &want).ok());
    EXPECT_EQ(FileBytes(path), want.ToString());
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), view->size());
    EXPECT_LE(stats->bytes_written, view->allocated_bytes());
    EXPECT_LE(static_cast<uint64_t>(st.st_blocks) * 512, view->allocated_bytes() + (1 << 20));
    EXPECT_EQ(stats->bytes_zeroed, 0u);
  }
}

}  // namespace
}  // namespace vmvault::fs
