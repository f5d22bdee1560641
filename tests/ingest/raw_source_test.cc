// OpenRawSource against real files and the real qemu-img: what it reads, what it
// refuses, and that QEMU sees the same image locks as with `qemu-nbd --read-only`.
#include <fcntl.h>
#include <unistd.h>

#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "base/file_util.h"
#include "ingest/command_runner.h"
#include "ingest/image_source.h"
#include "ingest/nbd_image.h"
#include "ingest/qemu_img.h"
#include "ingest/subprocess.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

using testing::TempDir;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

class RawSourceTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ / name;
    EXPECT_TRUE(WriteFileAtomic(path, bytes, 0644).ok());
    return path;
  }
  ImageInfo Probe(const std::string& path, bool force_share = false) {
    auto info = ProbeImage(runner_, path, "raw", force_share);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : ImageInfo{};
  }
  // Whether `qemu-img resize` (which needs QEMU's resize permission) can grow `path`.
  bool QemuCanResize(const std::string& path, std::string* why = nullptr) {
    auto out = RunProcess({"qemu-img", "resize", "-q", "-f", "raw", path, "+64K"});
    EXPECT_TRUE(out.ok());
    if (why != nullptr && out.ok()) *why = out->stderr_text;
    return out.ok() && out->exit_code == 0;
  }

  TempDir dir_;
  RealCommandRunner runner_;
};

TEST_F(RawSourceTest, ReadsTheFileAndQemusRoundingAsZeros) {
  const std::string bytes = RandomBytes(300000, 1);  // not a multiple of 512
  const std::string path = Write("odd.raw", bytes);
  const ImageInfo info = Probe(path);
  ASSERT_EQ(info.virtual_size, 300032u);  // qemu rounds up to 512
  auto source = OpenRawSource(info);
  ASSERT_TRUE(source.ok()) << source.status().ToString();

  // Two readers on two threads, each reading the whole image in odd-sized pieces.
  std::string got[2];
  std::thread threads[2];
  for (int t = 0; t < 2; ++t) {
    threads[t] = std::thread([&, t] {
      auto reader = (*source)->OpenReader();
      ASSERT_TRUE(reader.ok());
      ASSERT_EQ((*reader)->size(), info.virtual_size);
      got[t].resize(info.virtual_size);
      const uint64_t step = t == 0 ? 4096 : 77777;
      for (uint64_t off = 0; off < info.virtual_size; off += step) {
        const uint64_t n = std::min(step, info.virtual_size - off);
        ASSERT_TRUE((*reader)
                        ->ReadAt(off, std::span<uint8_t>(
                                          reinterpret_cast<uint8_t*>(got[t].data()) + off, n))
                        .ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const std::string expected = bytes + std::string(32, '\0');
  EXPECT_TRUE(got[0] == expected);
  EXPECT_TRUE(got[1] == expected);
}

TEST_F(RawSourceTest, AFileThatShrankWhileReadIsAnError) {
  const std::string path = Write("disk.raw", RandomBytes(1 << 20, 2));
  auto source = OpenRawSource(Probe(path));
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ASSERT_EQ(::truncate(path.c_str(), 4096), 0);
  auto reader = (*source)->OpenReader();
  ASSERT_TRUE(reader.ok());
  std::string buf(65536, '\0');
  const Status s =
      (*reader)->ReadAt(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
  EXPECT_EQ(s.code(), StatusCode::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("shrank"), std::string::npos) << s.ToString();
}

TEST_F(RawSourceTest, AFileThatChangedSizeSinceItWasProbedIsRefused) {
  const std::string path = Write("disk.raw", RandomBytes(1 << 20, 3));
  const ImageInfo info = Probe(path);
  ASSERT_EQ(::truncate(path.c_str(), 2 << 20), 0);
  auto source = OpenRawSource(info);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(source.status().message().find("changed since it was probed"), std::string::npos)
      << source.status().ToString();
}

TEST_F(RawSourceTest, HoldsTheImageLockQemuNbdReadOnlyHolds) {
  const std::string path = Write("disk.raw", RandomBytes(1 << 20, 4));
  ImageInfo info = Probe(path);
  {
    auto source = OpenRawSource(info);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    std::string why;
    EXPECT_FALSE(QemuCanResize(path, &why)) << "qemu-img resize succeeded while the image is read";
    EXPECT_NE(why.find("lock"), std::string::npos) << why;
    // Like qemu-nbd --read-only, it shares writing (a running VM's snapshot backup relies
    // on the caller, not the lock, to keep writes away).
    auto write = RunProcess({"qemu-io", "-f", "raw", "-c", "write 0 4k", path});
    ASSERT_TRUE(write.ok());
    EXPECT_EQ(write->exit_code, 0) << write->stderr_text;
  }
  EXPECT_TRUE(QemuCanResize(path)) << "the lock outlived the source";

  // With force_share nothing is locked, as qemu-nbd with locking off.
  info = Probe(path, /*force_share=*/true);
  auto shared = OpenRawSource(info);
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  EXPECT_TRUE(QemuCanResize(path));
}

TEST_F(RawSourceTest, RefusesAnImageAnotherProcessResizes) {
  const std::string path = Write("disk.raw", RandomBytes(1 << 20, 5));
  const ImageInfo info = Probe(path);
  // What a QEMU holding the resize permission locks: byte 100 + 3 (BLK_PERM_RESIZE).
  const int other = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  struct flock fl{};
  fl.l_type = F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 103;
  fl.l_len = 1;
  ASSERT_EQ(::fcntl(other, F_OFD_SETLK, &fl), 0);
  auto source = OpenRawSource(info);
  EXPECT_FALSE(source.ok());
  EXPECT_NE(source.status().message().find("in use by another process"), std::string::npos)
      << source.status().ToString();
  ::close(other);
  EXPECT_TRUE(OpenRawSource(info).ok());
}

TEST_F(RawSourceTest, SourceOpenerReadsRawDirectlyAndOtherFormatsThroughQemuNbd) {
  const std::string raw = Write("disk.raw", RandomBytes(1 << 20, 6));
  const std::string qcow2 = dir_ / "disk.qcow2";
  auto made = RunProcess({"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2});
  ASSERT_TRUE(made.ok());
  ASSERT_EQ(made->exit_code, 0) << made->stderr_text;
  SourceOpener opener;
  for (const auto& [path, format] : {std::pair{raw, "raw"}, std::pair{qcow2, "qcow2"}}) {
    auto info = ProbeImage(runner_, path, format, false);
    ASSERT_TRUE(info.ok());
    auto source = opener.Open(*info, 1);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    auto reader = (*source)->OpenReader();
    ASSERT_TRUE(reader.ok());
    std::string buf(1 << 20, '\0');
    ASSERT_TRUE((*reader)
                    ->ReadAt(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()),
                                                   buf.size()))
                    .ok());
    EXPECT_TRUE(buf == RandomBytes(1 << 20, 6)) << format;
    // Only the qcow2 image is read over NBD (from a qemu-nbd).
    EXPECT_EQ(dynamic_cast<NbdImage*>(reader->get()) != nullptr, std::string(format) == "qcow2")
        << format;
  }
}

}  // namespace
}  // namespace vmvault::ingest
