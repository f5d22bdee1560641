// The image views of a backup, end to end. Beside every <disk>.raw, a backup directory
// of the mount shows
//   <disk>.qcow2        a qcow2 v3 image of the disk, without a backing file;
//   <disk>.vhdx         a dynamic VHDX image of the disk;
//   <disk>.vmdk         a monolithicFlat VMDK descriptor whose extent is "<disk>.raw";
//   <disk>.part<N>.raw  one file per partition of an MBR or GPT disk, numbered as Linux
//                       numbers them (GPT: entry index + 1; MBR: 1-4, logicals from 5).
// Disks of several shapes are ingested with the vmvault binary and the views are read
// through a real FUSE mount by qemu-img, qemu-io, a QEMU guest booting from an overlay
// whose backing file is the mounted qcow2, and the kernel (loop mounts of partitions).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "views_fixture.h"

namespace vmvault::testing {
namespace {

namespace fs = std::filesystem;

// The byte ranges of a local sparse file that hold data: its 4 KiB blocks that are not
// all zeros, found through SEEK_DATA / SEEK_HOLE. (qemu-img allocates the first block of
// the files it creates, so allocation alone would count zeros.)
std::vector<std::pair<uint64_t, uint64_t>> NonZeroRanges(const std::string& path) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ranges;
  std::string block(4096, '\0');
  const std::string zeros(4096, '\0');
  off_t pos = 0;
  for (;;) {
    const off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) break;
    const off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole <= data) break;
    for (off_t at = data; at < hole; at += 4096) {
      const ssize_t n = ::pread(fd, block.data(), 4096, at);
      if (n <= 0) break;
      if (block.compare(0, static_cast<size_t>(n), zeros, 0, static_cast<size_t>(n)) == 0) {
        continue;
      }
      const uint64_t begin = static_cast<uint64_t>(at), end = begin + static_cast<uint64_t>(n);
      if (!ranges.empty() && ranges.back().second == begin) {
        ranges.back().second = end;
      } else {
        ranges.emplace_back(begin, end);
      }
    }
    pos = hole;
  }
  ::close(fd);
  return ranges;
}

uint64_t TotalLength(const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  uint64_t total = 0;
  for (const auto& [begin, end] : ranges) total += end - begin;
  return total;
}

// What a VHDX file says about itself, read per the VHDX 1.0 specification: the region
// table at 192 KiB locates the metadata (block size, flags, sizes) and the block
// allocation table.
struct VhdxLayout {
  std::string error;  // "" when the file parsed
  uint64_t virtual_size = 0;
  uint32_t block_size = 0;
  uint32_t logical_sector_size = 0;
  bool leave_blocks_allocated = false;   // set in fixed VHDX files
  bool has_parent = false;               // set in differencing VHDX files
  std::vector<uint64_t> present_blocks;  // payload blocks the BAT maps, ascending
};

using Guid = std::array<uint8_t, 16>;  // as stored: the first three fields little-endian
constexpr Guid kBatRegion = {0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
                             0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08};
constexpr Guid kMetadataRegion = {0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B,
                                  0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E};
constexpr Guid kFileParameters = {0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D,
                                  0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B};
constexpr Guid kVirtualDiskSize = {0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48,
                                   0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8};
constexpr Guid kLogicalSectorSize = {0x1D, 0xBF, 0x41, 0x81, 0x6F, 0xA9, 0x09, 0x47,
                                     0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F};

bool GuidAt(const std::string& buf, size_t at, const Guid& guid) {
  return std::memcmp(buf.data() + at, guid.data(), guid.size()) == 0;
}

VhdxLayout ReadVhdxLayout(const std::string& path) {
  VhdxLayout out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    out.error = "cannot open " + path;
    return out;
  }
  auto read_at = [fd](uint64_t offset, uint64_t length) {
    std::string buf(length, '\0');
    const ssize_t n = ::pread(fd, buf.data(), length, static_cast<off_t>(offset));
    buf.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return buf;
  };
  const std::string ident = read_at(0, 8);
  const std::string regions = read_at(192 << 10, 64 << 10);
  uint64_t bat_offset = 0, bat_length = 0, meta_offset = 0, meta_length = 0;
  if (ident != "vhdxfile") {
    out.error = "no vhdxfile signature";
  } else if (regions.size() < (64 << 10) || regions.compare(0, 4, "regi") != 0) {
    out.error = "no region table at 192 KiB";
  } else {
    const uint64_t count = std::min<uint64_t>(LoadLe(regions, 8, 4), 2047);
    for (uint64_t i = 0; i < count; ++i) {
      const size_t e = 16 + i * 32;
      if (GuidAt(regions, e, kBatRegion)) {
        bat_offset = LoadLe(regions, e + 16, 8);
        bat_length = LoadLe(regions, e + 24, 4);
      } else if (GuidAt(regions, e, kMetadataRegion)) {
        meta_offset = LoadLe(regions, e + 16, 8);
        meta_length = LoadLe(regions, e + 24, 4);
      }
    }
    if (bat_length == 0 || meta_length == 0) out.error = "no BAT or metadata region";
  }
  const std::string meta = out.error.empty() ? read_at(meta_offset, meta_length) : "";
  if (out.error.empty() && (meta.size() < 32 || meta.compare(0, 8, "metadata") != 0)) {
    out.error = "no metadata table";
  }
  if (out.error.empty()) {
    const uint64_t count = LoadLe(meta, 10, 2);
    for (uint64_t i = 0; i < count && 32 + (i + 1) * 32 <= meta.size(); ++i) {
      const size_t e = 32 + i * 32;
      const uint64_t item = LoadLe(meta, e + 16, 4);
      if (item + 8 > meta.size()) continue;
      if (GuidAt(meta, e, kFileParameters)) {
        out.block_size = static_cast<uint32_t>(LoadLe(meta, item, 4));
        const uint64_t flags = LoadLe(meta, item + 4, 4);
        out.leave_blocks_allocated = flags & 1;
        out.has_parent = flags & 2;
      } else if (GuidAt(meta, e, kVirtualDiskSize)) {
        out.virtual_size = LoadLe(meta, item, 8);
      } else if (GuidAt(meta, e, kLogicalSectorSize)) {
        out.logical_sector_size = static_cast<uint32_t>(LoadLe(meta, item, 4));
      }
    }
    if (out.block_size == 0 || out.logical_sector_size == 0 || out.virtual_size == 0) {
      out.error = "metadata lacks block size, sector size or disk size";
    }
  }
  if (out.error.empty()) {
    // One sector bitmap entry follows every `chunk_ratio` payload entries.
    const uint64_t chunk_ratio = (uint64_t{1} << 23) * out.logical_sector_size / out.block_size;
    const uint64_t blocks = (out.virtual_size + out.block_size - 1) / out.block_size;
    const std::string bat = read_at(bat_offset, bat_length);
    for (uint64_t block = 0; block < blocks && out.error.empty(); ++block) {
      const uint64_t entry = block + block / chunk_ratio;
      if ((entry + 1) * 8 > bat.size()) {
        out.error = "BAT too short for block " + std::to_string(block);
        break;
      }
      const uint64_t state = LoadLe(bat, entry * 8, 8) & 7;
      if (state == 6 || state == 7) out.present_blocks.push_back(block);  // (partially) present
    }
  }
  ::close(fd);
  return out;
}

// Compares a VHDX image with the raw file it should equal, reading only the blocks its
// BAT maps: qemu 7.2 has no block status for VHDX, so `qemu-img compare` would read every
// byte of a multi-TiB image. Mapped blocks are compared by `qemu-img compare` on a raw
// slice of both files; every non-zero block of `expected` must lie in mapped blocks (the
// others read as zeros in a dynamic VHDX without parent). "" when equal.
std::string CompareVhdxByBlocks(const std::string& expected, const std::string& vhdx,
                                const VhdxLayout& layout) {
  if (!layout.error.empty()) return layout.error;
  if (layout.has_parent) return "the VHDX has a parent";
  std::vector<std::pair<uint64_t, uint64_t>> mapped;  // [begin, end) byte ranges
  for (uint64_t block : layout.present_blocks) {
    const uint64_t begin = block * layout.block_size;
    const uint64_t end = std::min(begin + layout.block_size, layout.virtual_size);
    if (!mapped.empty() && mapped.back().second == begin) {
      mapped.back().second = end;
    } else {
      mapped.emplace_back(begin, end);
    }
  }
  if (mapped.size() > 64) return "too many mapped ranges to compare one by one";
  for (const auto& [begin, end] : mapped) {
    const std::string slice =
        "driver=raw,offset=" + std::to_string(begin) + ",size=" + std::to_string(end - begin);
    std::string diff =
        QemuImg({"compare", "--image-opts", slice + ",file.driver=file,file.filename=" + expected,
                 slice + ",file.driver=vhdx,file.file.filename=" + vhdx});
    if (!diff.empty()) return diff;
  }
  for (const auto& [begin, end] : NonZeroRanges(expected)) {
    uint64_t pos = begin;
    for (const auto& [mb, me] : mapped) {
      if (mb <= pos && pos < me) pos = std::min(end, me);
    }
    if (pos < end) {
      return "data at byte " + std::to_string(pos) + " of the source is in no mapped block";
    }
  }
  return "";
}

// The disk a descriptor's extent lines name: {"RW 2048 FLAT \"vda.raw\" 0", ...}.
std::vector<std::string> VmdkExtents(const std::string& descriptor) {
  std::vector<std::string> extents;
  std::istringstream lines(descriptor);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("RW ", 0) == 0 || line.rfind("RDONLY ", 0) == 0) extents.push_back(line);
  }
  return extents;
}


// ---------------------------------------------------------------------------------------
// The qcow2, VHDX, VMDK and raw views of disks of several shapes hold the source disk.

struct Shape {
  const char* name;    // the VM's name, and the test's
  const char* format;  // of the source image, vda.<format>
  uint64_t size;       // virtual size
  const char* make;    // shell commands that make the source in the current directory
};

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.name; }

const Shape kShapes[] = {
    {"sparse", "qcow2", 64 * kMiB,
     "qemu-img create -q -f qcow2 vda.qcow2 64M && qemu-io -f qcow2 -c 'write -P 0x11 0 4k' "
     "-c 'write -P 0x22 1000k 8k' -c 'write -P 0x33 20M 300k' -c 'write -P 0x44 63M 1M' "
     "vda.qcow2 >/dev/null"},
    {"allocated", "raw", 8 * kMiB, "head -c 8M /dev/urandom > vda.raw"},
    {"one_chunk", "raw", kChunkSize, "head -c 64K /dev/urandom > vda.raw"},
    // 1 MiB + 4 KiB + 512: the last chunk is partial, and not a multiple of 4 KiB.
    {"odd_size", "raw", kMiB + 4096 + 512,
     "truncate -s 1053184 vda.raw && "
     "head -c 100K /dev/urandom | dd of=vda.raw bs=1K seek=300 conv=notrunc status=none && "
     "head -c 4608 /dev/urandom | dd of=vda.raw bs=1M seek=1 conv=notrunc status=none"},
    // 2 MiB clusters: qemu-img compare asks a qcow2 for block status one L2 slice at a
    // time (32 MiB with 64 KiB clusters) and the raw view for SEEK_DATA each time; with 2
    // MiB clusters that is 4096 FUSE round trips over 4 TiB instead of 131072.
    {"multi_tib", "qcow2", uint64_t{4} << 40,
     "qemu-img create -q -f qcow2 -o cluster_size=2M vda.qcow2 4T && qemu-io -f qcow2 "
     "-c 'write -P 0x5a 1G 1M' -c 'write -P 0x33 3T 64k' -c 'write -P 0x77 4398046445568 64k' "
     "vda.qcow2 >/dev/null"},
};

class ViewsTest : public ViewsFixture, public ::testing::WithParamInterface<Shape> {};

TEST_P(ViewsTest, EveryViewHoldsTheSourceDisk) {
  const Shape& shape = GetParam();
  const std::string format = shape.format;
  const std::string source = tmp_ / ("vda." + format);
  ASSERT_EQ(Sh("cd " + tmp_.path() + " && " + shape.make), 0);
  // The truth every view is compared with: the source as a local sparse raw file.
  const std::string expected = tmp_ / "expected.raw";
  ASSERT_EQ(QemuImg({"convert", "-f", format, "-O", "raw", source, expected}), "");
  ASSERT_EQ(fs::file_size(expected), shape.size);
  const uint64_t source_data = TotalLength(NonZeroRanges(expected));
  ASSERT_GT(source_data, 0u);

  Ingest({source}, shape.name);
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string dir = BackupDir(mount, shape.name);
  ASSERT_NE(dir, "");
  const std::string raw = View(dir, "vda", "raw"), qcow2 = View(dir, "vda", "qcow2");
  const std::string vhdx = View(dir, "vda", "vhdx"), vmdk = View(dir, "vda", "vmdk");
  for (const auto& view : {raw, qcow2, vhdx, vmdk}) ASSERT_TRUE(fs::exists(view)) << view;

  // The raw view holds the source.
  EXPECT_EQ(QemuImg({"compare", "-f", "raw", "-F", format, raw, source}), "");
  EXPECT_EQ(QemuImg({"compare", "-f", "raw", "-F", "raw", raw, expected}), "");
  // The other views are compared with the raw view, except on the multi-TiB disk: there
  // qemu-img would ask the raw view for SEEK_DATA once per qcow2 L2 slice (131072 FUSE
  // round trips with 64 KiB clusters), so they are compared with the local copy, which
  // equals the raw view (above).
  const bool small = shape.size <= (uint64_t{1} << 30);
  const std::string reference = small ? raw : expected;

  // qcow2: a consistent v3 image without backing file, no leaks, holding the disk.
  RunResult r = RunCmd({"qemu-img", "check", "-f", "qcow2", "--output=json", qcow2});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;  // 2: corruptions, 3: leaks
  const nlohmann::json check = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(check.is_object()) << r.out;
  if (check.is_object()) {
    EXPECT_EQ(check.value("check-errors", -1), 0) << r.out;
    EXPECT_EQ(check.value("corruptions", 0), 0) << r.out;
    EXPECT_EQ(check.value("leaks", 0), 0) << r.out;
  }
  nlohmann::json info = QemuImgJson({"info", "-f", "qcow2", qcow2});
  EXPECT_EQ(info.value("virtual-size", uint64_t{0}), shape.size) << info.dump();
  EXPECT_EQ(info.value("format", ""), "qcow2");
  EXPECT_FALSE(info.contains("backing-filename")) << info.dump();
  EXPECT_EQ(info["format-specific"]["data"].value("compat", ""), "1.1") << info.dump();
  EXPECT_EQ(QemuImg({"compare", "-f", "raw", "-F", "qcow2", reference, qcow2}), "");

  // VHDX: consistent, dynamic, holding the disk.
  EXPECT_EQ(QemuImg({"check", "-q", "-f", "vhdx", vhdx}), "");
  info = QemuImgJson({"info", "-f", "vhdx", vhdx});
  EXPECT_EQ(info.value("virtual-size", uint64_t{0}), shape.size) << info.dump();
  EXPECT_EQ(info.value("format", ""), "vhdx");
  const VhdxLayout layout = ReadVhdxLayout(vhdx);
  EXPECT_EQ(layout.error, "");
  EXPECT_FALSE(layout.leave_blocks_allocated) << "a fixed VHDX, not a dynamic one";
  EXPECT_FALSE(layout.has_parent);
  EXPECT_EQ(layout.virtual_size, shape.size);
  if (small) {
    EXPECT_EQ(QemuImg({"compare", "-f", "raw", "-F", "vhdx", reference, vhdx}), "");
  } else {
    EXPECT_EQ(CompareVhdxByBlocks(expected, vhdx, layout), "");
  }

  // VMDK: a monolithicFlat descriptor whose only extent is the raw view beside it.
  const std::vector<std::string> extents = VmdkExtents(Slurp(vmdk));
  ASSERT_EQ(extents.size(), 1u) << Slurp(vmdk);
  // (qemu reads only RW extent lines.)
  EXPECT_EQ(extents[0], "RW " + std::to_string(shape.size / 512) + " FLAT \"vda.raw\" 0");
  EXPECT_NE(Slurp(vmdk).find("createType=\"monolithicFlat\""), std::string::npos);
  info = QemuImgJson({"info", "-f", "vmdk", vmdk});
  EXPECT_EQ(info.value("virtual-size", uint64_t{0}), shape.size) << info.dump();
  EXPECT_EQ(info["format-specific"]["data"].value("create-type", ""), "monolithicFlat");
  EXPECT_EQ(QemuImg({"compare", "-f", "raw", "-F", "vmdk", raw, vmdk}), "");
  EXPECT_EQ(QemuImg({"compare", "-f", "raw", "-F", "vmdk", expected, vmdk}), "");

  // st_blocks: no view claims more space than its size (rounded up to a 4 KiB block);
  // the raw, qcow2 and VHDX views hold all the data, so they claim at least the source's
  // non-zero 4 KiB blocks.
  for (const auto& view : {raw, qcow2, vhdx, vmdk}) {
    const FileSpace space = SpaceOf(view);
    EXPECT_LE(space.allocated, RoundUp(space.size, 4096)) << view;
    if (view != vmdk) {
      EXPECT_GE(space.allocated, source_data) << view;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Views, ViewsTest, ::testing::ValuesIn(kShapes),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------
// The mounted qcow2 as the backing file of a writable overlay.

class ViewsBackingFileTest : public ViewsFixture {};

TEST_F(ViewsBackingFileTest, QcowViewIsTheBackingFileOfAnOverlay) {
  const std::string source = tmp_ / "vda.qcow2";
  ASSERT_EQ(Sh("cd " + tmp_.path() +
               " && qemu-img create -q -f qcow2 vda.qcow2 16M && "
               "qemu-io -f qcow2 -c 'write -P 0x5a 1M 2M' -c 'write -P 0xa5 12M 64k' vda.qcow2 "
               ">/dev/null"),
            0);
  const std::string expected = tmp_ / "expected.raw";
  ASSERT_EQ(QemuImg({"convert", "-O", "raw", source, expected}), "");
  Ingest({source}, "web");
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string dir = BackupDir(mount, "web");
  const std::string qcow2 = View(dir, "vda", "qcow2"), raw = View(dir, "vda", "raw");
  const std::string qcow2_hash = Sha256(qcow2), raw_hash = Sha256(raw);
  ASSERT_EQ(qcow2_hash.size(), 64u) << qcow2_hash;

  // The view itself cannot be opened for writing.
  EXPECT_NE(RunCmd({"qemu-io", "-f", "qcow2", "-c", "write 0 4k", qcow2}).exit_code, 0);

  const std::string overlay = tmp_ / "overlay.qcow2";
  ASSERT_EQ(QemuImg({"create", "-q", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", overlay}), "");
  nlohmann::json info = QemuImgJson({"info", "-f", "qcow2", overlay});
  EXPECT_EQ(info.value("backing-filename", ""), qcow2);
  EXPECT_EQ(info.value("virtual-size", uint64_t{0}), 16 * kMiB);
  // Writes go to the overlay; the rest reads from the backup through it.
  RunResult r =
      RunCmd({"qemu-io", "-f", "qcow2", "-c", "write -P 0x77 2M 64k", "-c", "read -P 0x77 2M 64k",
              "-c", "read -P 0x5a 1M 1M", "-c", "read -P 0x5a 2112k 960k", "-c",
              "read -P 0xa5 12M 64k", "-c", "read -P 0 4M 8M", overlay});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find("failed"), std::string::npos) << r.out;
  // The overlay now differs from the backup exactly where it was written.
  r = RunCmd({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", expected, overlay});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("offset 2097152"), std::string::npos) << r.out;

  EXPECT_EQ(Sha256(qcow2), qcow2_hash);
  EXPECT_EQ(Sha256(raw), raw_hash);
  EXPECT_EQ(CompareFiles(raw, expected), "");
}

}  // namespace
}  // namespace vmvault::testing
