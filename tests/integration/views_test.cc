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
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kChunkSize = 64 << 10;  // the repositories' chunk size
constexpr uint64_t kMiB = 1 << 20;

// Runs qemu-img; "" on success, else the command line, exit code and output.
std::string QemuImg(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunCmd(argv);
  if (r.exit_code == 0) return "";
  std::string line;
  for (const auto& a : argv) line += a + " ";
  return line + "-> exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
}

nlohmann::json QemuImgJson(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--output=json");
  RunResult r = RunCmd(argv);
  nlohmann::json out = nlohmann::json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || out.is_discarded()) {
    return {{"qemu-img", args}, {"exit", r.exit_code}, {"err", r.err}};
  }
  return out;
}

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

struct FileSpace {
  uint64_t size = 0;
  uint64_t allocated = 0;  // st_blocks * 512
};

FileSpace SpaceOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(st.st_blocks) * 512};
}

std::string Sha256(const std::string& path) {
  RunResult r = RunCmd({"sha256sum", path});
  return r.exit_code == 0 ? r.out.substr(0, 64) : "sha256sum failed: " + r.err;
}

void WriteAt(const std::string& path, uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::string RandomBytes(size_t n) {
  std::random_device seed;
  std::mt19937_64 rng(seed());
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

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

uint64_t LoadLe(const std::string& buf, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(buf[at + i]);
  return v;
}

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

// Every test gets its own repository with 64 KiB chunks.
class ViewsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root for FUSE and loop devices";
    repo_ = tmp_ / "repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_, "--chunk-size", "64K"}).exit_code, 0);
  }

  void Ingest(const std::vector<std::string>& files, const std::string& vm) {
    std::vector<std::string> argv{VmvaultPath(), "ingest", "--repo", repo_, "--vm", vm};
    for (const auto& f : files) argv.insert(argv.end(), {"--file", f});
    RunResult r = RunCmd(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // The backup directory of the VM's only backup in the mount ("" if there is none).
  std::string BackupDir(const Mount& mount, const std::string& vm) {
    for (const auto& entry : ListJson(repo_)) {
      if (entry.value("name", "") == vm && entry["backups"].size() == 1) {
        return mount.path() + "/" + entry["backups"][0]["path"].get<std::string>();
      }
    }
    return "";
  }

  // A view of a disk in a backup directory: View(dir, "vda", "qcow2") is dir/vda.qcow2.
  static std::string View(const std::string& dir, const std::string& disk,
                          const std::string& extension) {
    return dir + "/" + disk + "." + extension;
  }

  // The partition files of a disk in a backup directory, by name.
  static std::set<std::string> PartFiles(const std::string& dir, const std::string& disk) {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename();
      if (name.rfind(disk + ".part", 0) == 0) names.insert(name);
    }
    return names;
  }

  TempDir tmp_;
  std::string repo_;
};

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

// ---------------------------------------------------------------------------------------
// A guest boots from an overlay on the mounted qcow2 and reads the backup's data.

// A 16-bit boot sector, hand-assembled (checked with `as --32` + `objdump -m i8086`).
// SeaBIOS loads it at 0:7C00 with DL = the boot drive. It reads one sector at LBA 16384
// (8 MiB, in another chunk) to 0:8000 with INT 13h AH=42h, then writes the done marker
// CD AB 34 12 32 54 CB ED (0x1234ABCD and its complement) at 0:7E00, or on failure
// 0xBAD0BAD0 at 0:7E00 and the error code (AH) at 0:7E04, and halts.
// clang-format off
constexpr uint8_t kBootCode[] = {
    0xFA,                                            // 7C00 cli
    0x31, 0xC0,                                      // 7C01 xor ax, ax
    0x8E, 0xD8,                                      // 7C03 mov ds, ax
    0x8E, 0xC0,                                      // 7C05 mov es, ax
    0x8E, 0xD0,                                      // 7C07 mov ss, ax
    0xBC, 0x00, 0x7C,                                // 7C09 mov sp, 0x7C00
    0xFB,                                            // 7C0C sti
    0xBE, 0x3B, 0x7C,                                // 7C0D mov si, 0x7C3B  ; the packet
    0xB4, 0x42,                                      // 7C10 mov ah, 0x42    ; extended read
    0xCD, 0x13,                                      // 7C12 int 0x13        ; DL = drive
    0x72, 0x16,                                      // 7C14 jc 7C2C         ; on error
    0x66, 0xC7, 0x06, 0x00, 0x7E,                    // 7C16 mov dword [0x7E00],
    0xCD, 0xAB, 0x34, 0x12,                          //        0x1234ABCD
    0x66, 0xC7, 0x06, 0x04, 0x7E,                    // 7C1F mov dword [0x7E04],
    0x32, 0x54, 0xCB, 0xED,                          //        0xEDCB5432
    0xFA,                                            // 7C28 cli
    0xF4,                                            // 7C29 hlt
    0xEB, 0xFC,                                      // 7C2A jmp 7C28
    0x88, 0x26, 0x04, 0x7E,                          // 7C2C mov [0x7E04], ah ; error code
    0x66, 0xC7, 0x06, 0x00, 0x7E,                    // 7C30 mov dword [0x7E00],
    0xD0, 0xBA, 0xD0, 0xBA,                          //        0xBAD0BAD0
    0xEB, 0xED,                                      // 7C39 jmp 7C28
    // 7C3B the disk address packet
    0x10, 0x00,                                      // size 16, reserved
    0x01, 0x00,                                      // 1 sector
    0x00, 0x80, 0x00, 0x00,                          // to 0000:8000
    0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // from LBA 16384
};
// clang-format on
constexpr uint64_t kGuestReadLba = 16384;
constexpr uint32_t kDoneMarker = 0x1234ABCD, kFailMarker = 0xBAD0BAD0;

// QEMU (TCG, 64 MiB, no devices but the disk) with a QMP socket. Destroying it asks QEMU
// to quit, then kills it by PID after a grace period.
class Qemu {
 public:
  Qemu(const std::string& disk, const std::string& dir)
      : qmp_path_(dir + "/qmp.sock"),
        process_(
            {"qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "64", "-nographic",
             "-nodefaults", "-no-user-config", "-qmp", "unix:" + qmp_path_ + ",server=on,wait=off",
             "-drive", "file=" + disk + ",format=qcow2,if=ide"},
            dir + "/qemu.log") {
    if (process_.started()) {
      error_ = qmp_.Connect(qmp_path_, process_, std::chrono::seconds(20));
    } else {
      error_ = "qemu-system-x86_64 did not start";
    }
  }
  ~Qemu() { Quit(); }

  const std::string& error() const { return error_; }
  std::string log() const { return Slurp(process_.log_path()); }

  // `size` bytes of guest memory at `address` ("" on failure).
  std::string ReadMemory(uint64_t address, uint64_t size) {
    const std::string file = qmp_path_ + ".mem";
    std::error_code ec;
    fs::remove(file, ec);
    nlohmann::json reply =
        qmp_.Execute("pmemsave", {{"val", address}, {"size", size}, {"filename", file}});
    return reply.contains("return") ? Slurp(file) : "";
  }

  // Asks QEMU to quit, waits a little, then kills it.
  void Quit() {
    if (process_.Running()) qmp_.Execute("quit", {}, std::chrono::seconds(2));
    qmp_.Close();
    process_.Stop(std::chrono::seconds(3));
  }
  const Process& process() const { return process_; }
  bool Running() { return process_.Running(); }

 private:
  std::string qmp_path_;
  Process process_;
  QmpClient qmp_;
  std::string error_;
};

class BootTest : public ViewsFixture {};

TEST_F(BootTest, GuestReadsTheBackupThroughAnOverlayOnTheMountedQcow2) {
  // A 16 MiB disk: the boot sector, and a random sector 8 MiB in for the guest to read.
  const std::string source = tmp_ / "vda.raw";
  ASSERT_EQ(Sh("truncate -s 16M " + source), 0);
  std::string boot_sector(std::begin(kBootCode), std::end(kBootCode));
  boot_sector.resize(512, '\0');
  boot_sector[510] = '\x55';
  boot_sector[511] = '\xAA';
  const std::string pattern = RandomBytes(512);
  ASSERT_NO_FATAL_FAILURE(WriteAt(source, 0, boot_sector));
  ASSERT_NO_FATAL_FAILURE(WriteAt(source, kGuestReadLba * 512, pattern));
  static_assert(kGuestReadLba * 512 / kChunkSize > 0, "the sector is in a later chunk");

  Ingest({source}, "bootable");
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string dir = BackupDir(mount, "bootable");
  const std::string qcow2 = View(dir, "vda", "qcow2"), raw = View(dir, "vda", "raw");
  const std::string qcow2_hash = Sha256(qcow2), raw_hash = Sha256(raw);
  ASSERT_EQ(qcow2_hash.size(), 64u) << qcow2_hash;
  const std::string overlay = tmp_ / "overlay.qcow2";
  ASSERT_EQ(QemuImg({"create", "-q", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", overlay}), "");

  {
    Qemu vm(overlay, tmp_.path());
    ASSERT_EQ(vm.error(), "") << vm.log();
    std::string marker;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      marker = vm.ReadMemory(0x7E00, 8);
      ASSERT_EQ(marker.size(), 8u) << "QEMU: " << vm.process().how_it_ended() << vm.log();
      const uint64_t first = LoadLe(marker, 0, 4);
      if (first == kDoneMarker && LoadLe(marker, 4, 4) == (~kDoneMarker & 0xFFFFFFFF)) break;
      ASSERT_NE(first, kFailMarker) << "INT 13h failed with AH=" << LoadLe(marker, 4, 1);
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the guest never finished";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(vm.ReadMemory(0x8000, 512) == pattern)
        << "the guest read other bytes than the backup's sector " << kGuestReadLba;
    vm.Quit();
    EXPECT_FALSE(vm.Running());
  }

  // The backup is as it was.
  EXPECT_EQ(Sha256(qcow2), qcow2_hash);
  EXPECT_EQ(Sha256(raw), raw_hash);
  EXPECT_EQ(CompareFiles(raw, source), "");
}

// ---------------------------------------------------------------------------------------
// Partition files.

struct Partition {
  int number = 0;                // as Linux numbers it
  uint64_t start = 0, size = 0;  // in sectors
  std::string type;
};

// The partitions of a disk image, per `sfdisk --json`.
std::vector<Partition> ReadPartitions(const std::string& disk) {
  std::vector<Partition> parts;
  RunResult r = RunCmd({"sfdisk", "--json", disk});
  nlohmann::json table = nlohmann::json::parse(r.out, nullptr, false);
  if (table.is_discarded()) return parts;
  for (const auto& p : table["partitiontable"]["partitions"]) {
    const std::string node = p["node"];
    parts.push_back({std::stoi(node.substr(disk.size())), p["start"].get<uint64_t>(),
                     p["size"].get<uint64_t>(), p["type"].get<std::string>()});
  }
  return parts;
}

class PartitionTest : public ViewsFixture {
 protected:
  // An ext4 image of `mib` MiB holding {name, contents} files; returns its path.
  std::string MakeExt4(const std::string& name, int mib,
                       const std::vector<std::pair<std::string, std::string>>& files) {
    const std::string root = tmp_ / (name + ".d"), image = tmp_ / (name + ".ext4");
    for (const auto& [path, contents] : files) {
      fs::create_directories(fs::path(root + "/" + path).parent_path());
      std::ofstream(root + "/" + path, std::ios::binary) << contents;
    }
    EXPECT_EQ(Sh("truncate -s " + std::to_string(mib) + "M " + image + " && mkfs.ext4 -q -F -d " +
                 root + " " + image),
              0);
    return image;
  }

  // Makes a disk of `mib` MiB with the sfdisk `script`, and copies `contents`
  // ({partition number, file}) into the partitions.
  std::vector<Partition> MakeDisk(const std::string& disk, int mib, const std::string& script,
                                  const std::map<int, std::string>& contents) {
    EXPECT_EQ(Sh("truncate -s " + std::to_string(mib) + "M " + disk + " && printf '" + script +
                 "' | sfdisk -q " + disk),
              0);
    std::vector<Partition> parts = ReadPartitions(disk);
    for (const auto& p : parts) {
      if (!contents.contains(p.number)) continue;
      EXPECT_EQ(fs::file_size(contents.at(p.number)), p.size * 512) << p.number;
      EXPECT_EQ(Sh("dd if=" + contents.at(p.number) + " of=" + disk +
                   " bs=1M seek=" + std::to_string(p.start * 512) +
                   " oflag=seek_bytes conv=notrunc,sparse status=none"),
                0);
    }
    return parts;
  }

  // Checks that the partition's file in `dir` is the filesystem image, and that its
  // files read back through a read-only loop mount of the partition file.
  void ExpectPartitionHolds(const std::string& dir, const Partition& p, const std::string& image,
                            const std::vector<std::pair<std::string, std::string>>& files) {
    const std::string part = View(dir, "vda", "part" + std::to_string(p.number) + ".raw");
    const FileSpace space = SpaceOf(part);
    EXPECT_EQ(space.size, p.size * 512) << part;
    EXPECT_LE(space.allocated, RoundUp(space.size, 4096)) << part;
    EXPECT_EQ(CompareFiles(part, image), "") << part;
    LoopMount loop(part, 0, tmp_ / ("fs" + std::to_string(p.number)));
    ASSERT_TRUE(loop.ok()) << part;
    for (const auto& [path, contents] : files) {
      EXPECT_TRUE(Slurp(tmp_ / ("fs" + std::to_string(p.number)) + "/" + path) == contents)
          << path << " in " << part;
    }
  }
};

TEST_F(PartitionTest, GptDiskHasOneFilePerPartition) {
  const std::vector<std::pair<std::string, std::string>> root_files = {
      {"etc/hostname", "vmvault-guest\n"}, {"usr/lib/blob", RandomBytes(300000)}};
  const std::vector<std::pair<std::string, std::string>> data_files = {
      {"notes.txt", "partition two\n"}, {"srv/data.bin", RandomBytes(2000000)}};
  const std::string root = MakeExt4("root", 8, root_files), data = MakeExt4("data", 12, data_files);
  const std::string disk = tmp_ / "vda.raw";
  const std::vector<Partition> parts = MakeDisk(disk, 34,
                                                "label: gpt\\n"
                                                "start=2048, size=16384, type=linux, name=root\\n"
                                                "start=20480, size=24576, type=linux, name=data\\n",
                                                {{1, root}, {2, data}});
  ASSERT_EQ(parts.size(), 2u);

  Ingest({disk}, "gpt");
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string dir = BackupDir(mount, "gpt");
  EXPECT_EQ(PartFiles(dir, "vda"), (std::set<std::string>{"vda.part1.raw", "vda.part2.raw"}));
  ExpectPartitionHolds(dir, parts[0], root, root_files);
  ExpectPartitionHolds(dir, parts[1], data, data_files);
}

TEST_F(PartitionTest, MbrLogicalPartitionsAreNumberedFromFive) {
  // Primary 1, extended 2 holding logicals 5 and 6.
  const std::vector<std::pair<std::string, std::string>> boot_files = {{"grub.cfg", "boot\n"}};
  const std::vector<std::pair<std::string, std::string>> five_files = {
      {"five.txt", "logical five\n"}, {"bin", RandomBytes(500000)}};
  const std::vector<std::pair<std::string, std::string>> six_files = {{"six.txt", "logical six\n"},
                                                                      {"bin", RandomBytes(700000)}};
  const std::string boot = MakeExt4("boot", 8, boot_files);
  const std::string five = MakeExt4("five", 8, five_files), six = MakeExt4("six", 8, six_files);
  const std::string disk = tmp_ / "vda.raw";
  const std::vector<Partition> parts = MakeDisk(disk, 32,
                                                "label: dos\\n"
                                                "start=2048, size=16384, type=83\\n"
                                                "start=18432, size=38912, type=5\\n"
                                                "start=20480, size=16384, type=83\\n"
                                                "start=38912, size=16384, type=83\\n",
                                                {{1, boot}, {5, five}, {6, six}});
  ASSERT_EQ(parts.size(), 4u);
  ASSERT_EQ(parts[3].number, 6);

  Ingest({disk}, "mbr");
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string dir = BackupDir(mount, "mbr");
  // Whether the extended partition itself gets a file (Linux shows it as a 1 KiB
  // device) is not part of the contract.
  std::set<std::string> files = PartFiles(dir, "vda");
  files.erase("vda.part2.raw");
  EXPECT_EQ(files, (std::set<std::string>{"vda.part1.raw", "vda.part5.raw", "vda.part6.raw"}));
  ExpectPartitionHolds(dir, parts[0], boot, boot_files);
  ExpectPartitionHolds(dir, parts[2], five, five_files);
  ExpectPartitionHolds(dir, parts[3], six, six_files);
}

TEST_F(PartitionTest, DiskWithoutPartitionTableHasNoPartitionFiles) {
  // A filesystem on the whole disk.
  const std::vector<std::pair<std::string, std::string>> files = {{"whole.txt", "no table\n"}};
  const std::string disk = MakeExt4("vda", 16, files);
  ASSERT_TRUE(ReadPartitions(disk).empty());
  Ingest({disk}, "whole");
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string dir = BackupDir(mount, "whole");
  ASSERT_TRUE(fs::exists(View(dir, "vda", "raw")));
  EXPECT_EQ(PartFiles(dir, "vda"), std::set<std::string>{});
  LoopMount loop(View(dir, "vda", "raw"), 0, tmp_ / "fs");
  ASSERT_TRUE(loop.ok());
  EXPECT_EQ(Slurp(tmp_ / "fs/whole.txt"), "no table\n");
}

}  // namespace
}  // namespace vmvault::testing
