// VdiChainImage (ingest/vdi_image.h) against images qemu-img writes, and against
// differencing chains written here by a small writer that follows VirtualBox's VDICore.h
// (qemu cannot write those). qemu-img reading the writer's base images the same way is
// what vouches for the writer. Also: damaged images are clear errors, and qemu reads a
// VMDK chain whole through its top only when the descriptor names the parent.
#include "ingest/vdi_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/bytes.h"
#include "base/file_util.h"
#include "ingest/command_runner.h"
#include "ingest/subprocess.h"
#include "tests/temp_dir.h"

namespace vmvault::ingest {
namespace {

using vmvault::testing::TempDir;

constexpr uint32_t kMiB = 1 << 20;

// ---- A test-side VDI writer ----

VdiUuid MakeUuid(uint8_t seed) {
  VdiUuid u;
  for (int i = 0; i < 16; ++i) u[i] = static_cast<uint8_t>(seed * 16 + i + 1);
  return u;
}

struct VdiSpec {
  uint32_t type = 1;  // 1 dynamic, 2 static, 4 differencing
  uint64_t disk_size = 8 * kMiB;
  uint32_t block_size = kMiB;
  uint32_t block_extra = 0;
  VdiUuid create = MakeUuid(1);
  VdiUuid modify = MakeUuid(2);
  VdiUuid linkage{};
  VdiUuid parent_modify{};
  std::map<uint32_t, std::string> data;  // block -> its bytes (block_size of them)
  std::vector<uint32_t> zero;            // blocks marked zero
  uint32_t blocks() const {
    return static_cast<uint32_t>((disk_size + block_size - 1) / block_size);
  }
};

void Put32(std::string* s, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[off + i] = static_cast<char>(v >> (8 * i));
}
void Put64(std::string* s, size_t off, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*s)[off + i] = static_cast<char>(v >> (8 * i));
}

// The bytes of a VDI file: pre-header, a VDIHEADER1PLUS, the block map at 512 and the data
// after it, blocks stored in reverse order so the map really maps. Block-extra bytes are
// filled with 0xee, which no reader may return.
std::string VdiBytes(const VdiSpec& s) {
  const uint32_t blocks = s.blocks();
  const uint32_t off_blocks = 512;
  const uint32_t off_data = (off_blocks + 4 * blocks + 511) / 512 * 512;
  std::string f(off_data, '\0');
  const char text[] = "<<< Oracle VM VirtualBox Disk Image >>>\n";
  std::memcpy(f.data(), text, sizeof(text) - 1);
  Put32(&f, 64, kVdiSignature);
  Put32(&f, 68, 0x00010001);
  Put32(&f, 72, 400);
  Put32(&f, 76, s.type);
  Put32(&f, 340, off_blocks);
  Put32(&f, 344, off_data);
  Put32(&f, 360, 512);  // legacy geometry: sector size
  Put64(&f, 368, s.disk_size);
  Put32(&f, 376, s.block_size);
  Put32(&f, 380, s.block_extra);
  Put32(&f, 384, blocks);
  std::memcpy(f.data() + 392, s.create.data(), 16);
  std::memcpy(f.data() + 408, s.modify.data(), 16);
  std::memcpy(f.data() + 424, s.linkage.data(), 16);
  std::memcpy(f.data() + 440, s.parent_modify.data(), 16);
  Put32(&f, 468, 512);  // LCHS geometry: sector size
  std::vector<uint32_t> map(blocks, kVdiBlockFree);
  for (uint32_t b : s.zero) map.at(b) = kVdiBlockZero;
  uint32_t allocated = 0;
  for (auto it = s.data.rbegin(); it != s.data.rend(); ++it) {
    map.at(it->first) = allocated++;
    f += std::string(s.block_extra, '\xee');
    EXPECT_EQ(it->second.size(), s.block_size);
    f += it->second;
  }
  Put32(&f, 388, allocated);
  for (uint32_t b = 0; b < blocks; ++b) Put32(&f, off_blocks + 4 * b, map[b]);
  return f;
}

void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() | 1);  // never zero
  return out;
}

// What reading a chain of specs must give, base first.
std::string Compose(const std::vector<VdiSpec>& chain) {
  const uint64_t size = chain.back().disk_size;
  std::string out(size, '\0');
  // Byte by block: find the topmost layer that decides.
  for (uint64_t off = 0; off < size;) {
    uint64_t step = size - off;
    for (const VdiSpec& s : chain)
      step = std::min<uint64_t>(step, s.block_size - off % s.block_size);
    for (int i = static_cast<int>(chain.size()) - 1; i >= 0; --i) {
      const VdiSpec& s = chain[i];
      if (off >= s.disk_size) break;  // zeros
      const uint32_t b = static_cast<uint32_t>(off / s.block_size);
      if (std::find(s.zero.begin(), s.zero.end(), b) != s.zero.end()) break;
      auto it = s.data.find(b);
      if (it != s.data.end()) {
        const uint64_t n = std::min<uint64_t>(step, s.disk_size - off);
        std::memcpy(out.data() + off, it->second.data() + off % s.block_size, n);
        break;
      }
    }
    off += step;
  }
  return out;
}

CommandOutput RunCmd(const std::vector<std::string>& argv) {
  auto out = RunProcess(argv);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : CommandOutput{-1, "", ""};
}

void RunOk(const std::vector<std::string>& argv) {
  const CommandOutput out = RunCmd(argv);
  ASSERT_EQ(out.exit_code, 0) << FormatCommand(argv) << ": " << out.stderr_text;
}

class VdiImageTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<VdiChainImage>> Open(const std::vector<std::string>& paths) {
    return VdiChainImage::Open(paths);
  }
  static std::string ReadAll(Image& image) {
    std::string out(image.size(), '\0');
    const Status s =
        image.ReadAt(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  // Random reads of random lengths, each compared with `want`.
  static void RandomReads(Image& image, const std::string& want, uint32_t seed, int n = 200) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < n; ++i) {
      const uint64_t off = rng() % want.size();
      const uint64_t len = std::min<uint64_t>(rng() % (3 * kMiB), want.size() - off);
      std::string got(len, '\0');
      const Status s =
          image.ReadAt(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(got.data()), got.size()));
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_TRUE(got == want.substr(off, len)) << "read of " << len << " at " << off;
    }
  }
  // The extents must be a partition of the image, and every hole must read as zeros.
  static void CheckExtentsAgainst(Image& image, const std::string& want) {
    auto extents = image.Extents();
    ASSERT_TRUE(extents.ok()) << extents.status().ToString();
    uint64_t at = 0;
    for (const Extent& e : *extents) {
      ASSERT_EQ(e.offset, at);
      if (!e.data) {
        ASSERT_TRUE(IsAllZero(std::span<const uint8_t>(
            reinterpret_cast<const uint8_t*>(want.data() + e.offset), e.length)))
            << "hole at " << e.offset << " holds data";
      }
      at = e.end();
    }
    EXPECT_EQ(at, want.size());
  }

  TempDir dir_;
};

// A raw disk with data in some 1 MiB blocks, zeros elsewhere, and a partial last block.
std::string SampleRaw(uint64_t size) {
  std::string raw(size, '\0');
  const std::string p = Pattern(size, 7);
  for (uint64_t off : {uint64_t{0}, 3 * uint64_t{kMiB} + 4096, 5 * uint64_t{kMiB} - 512}) {
    if (off >= size) continue;
    const uint64_t n = std::min<uint64_t>(200000, size - off);
    raw.replace(off, n, p.substr(off, n));
  }
  if (size > 4096) raw.replace(size - 4096, 4096, p.substr(size - 4096, 4096));
  return raw;
}

TEST_F(VdiImageTest, DynamicAndStaticImagesFromQemuMatchTheRawSource) {
  for (const uint64_t size : {uint64_t{8} * kMiB, uint64_t{7} * kMiB + 512 * 3}) {
    const std::string raw = SampleRaw(size);
    WriteBytes(dir_ / "src.raw", raw);
    for (const bool fixed : {false, true}) {
      SCOPED_TRACE(fmt::format("size {} static {}", size, fixed));
      const std::string vdi = dir_ / (fixed ? "static.vdi" : "dynamic.vdi");
      std::vector<std::string> argv = {"qemu-img", "convert", "-f", "raw", "-O", "vdi"};
      if (fixed) argv.insert(argv.end(), {"-o", "static=on"});
      argv.insert(argv.end(), {dir_ / "src.raw", vdi});
      ASSERT_NO_FATAL_FAILURE(RunOk(argv));
      auto image = Open({vdi});
      ASSERT_TRUE(image.ok()) << image.status().ToString();
      EXPECT_EQ((*image)->size(), size);
      EXPECT_EQ((*image)->header(0).type, fixed ? VdiType::kStatic : VdiType::kDynamic);
      EXPECT_TRUE(ReadAll(**image) == raw);
      RandomReads(**image, raw, 3);
      CheckExtentsAgainst(**image, raw);
      auto extents = (*image)->Extents();
      ASSERT_TRUE(extents.ok());
      if (fixed) {
        EXPECT_EQ(*extents, (std::vector<Extent>{{0, size, true}}));
      } else {
        // qemu-img allocates exactly the blocks holding non-zero bytes.
        std::vector<Extent> want;
        for (uint64_t b = 0; b * kMiB < size; ++b) {
          const uint64_t len = std::min<uint64_t>(kMiB, size - b * kMiB);
          const bool data = !IsAllZero(std::span<const uint8_t>(
              reinterpret_cast<const uint8_t*>(raw.data() + b * kMiB), len));
          want.push_back({b * kMiB, len, data});
        }
        EXPECT_EQ(*extents, NormalizeExtents(want));
      }
    }
  }
}

TEST_F(VdiImageTest, QemuReadsTheTestWritersBaseImagesTheSameWay) {
  for (const uint32_t type : {1u, 2u}) {
    VdiSpec s;
    s.type = type;
    s.disk_size = 6 * kMiB + 512;
    for (uint32_t b = 0; b < s.blocks(); ++b) {
      if (type == 2 || b % 3 != 1) s.data[b] = Pattern(kMiB, 100 + b);
    }
    if (type == 1) s.zero = {4};
    if (type == 1) s.data.erase(4);
    const std::string path = dir_ / fmt::format("written{}.vdi", type);
    WriteBytes(path, VdiBytes(s));
    const std::string want = Compose({s});
    WriteBytes(dir_ / "want.raw", want);
    const CommandOutput cmp =
        RunCmd({"qemu-img", "compare", "-f", "vdi", "-F", "raw", path, dir_ / "want.raw"});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.stdout_text << cmp.stderr_text;
    auto image = Open({path});
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    EXPECT_TRUE(ReadAll(**image) == want);
    EXPECT_EQ(VdiUuidString((*image)->header(0).uuid_create), VdiUuidString(MakeUuid(1)));
  }
}

// Base, two snapshots; the layers differ in block size and block extra.
std::vector<VdiSpec> ThreeLayerChain() {
  VdiSpec base;
  base.disk_size = 6 * kMiB;
  for (uint32_t b : {0u, 1u, 2u, 4u}) base.data[b] = Pattern(kMiB, 10 + b);

  VdiSpec mid;
  mid.type = 4;
  mid.disk_size = 6 * kMiB;
  mid.block_size = kMiB / 2;
  mid.block_extra = 512;
  mid.create = MakeUuid(3);
  mid.modify = MakeUuid(4);
  mid.linkage = base.create;
  mid.parent_modify = base.modify;
  mid.data[1] = Pattern(kMiB / 2, 20);  // half of base block 0
  mid.data[7] = Pattern(kMiB / 2, 21);  // second half of base block 3 (free in base)
  mid.zero = {4, 5};                    // base block 2 read as zeros

  VdiSpec top;
  top.type = 4;
  top.disk_size = 7 * kMiB + 4096;  // grown after the snapshot: past 6 MiB only top decides
  top.block_size = 2 * kMiB;
  top.create = MakeUuid(5);
  top.modify = MakeUuid(6);
  top.linkage = mid.create;
  top.parent_modify = mid.modify;
  top.data[3] = Pattern(2 * kMiB, 30);  // 6 MiB .. 8 MiB, cut at the disk's end
  return {base, mid, top};
}

TEST_F(VdiImageTest, DifferencingChainReadsAsComposed) {
  const std::vector<VdiSpec> chain = ThreeLayerChain();
  std::vector<std::string> paths;
  for (size_t i = 0; i < chain.size(); ++i) {
    paths.push_back(dir_ / fmt::format("layer{}.vdi", i));
    WriteBytes(paths.back(), VdiBytes(chain[i]));
  }
  // qemu refuses the differencing images: why this reader exists.
  EXPECT_NE(RunCmd({"qemu-img", "info", "-f", "vdi", paths[1]}).exit_code, 0);

  for (size_t n = 1; n <= chain.size(); ++n) {
    SCOPED_TRACE(fmt::format("{} layers", n));
    const std::vector<VdiSpec> specs(chain.begin(), chain.begin() + n);
    const std::vector<std::string> layer_paths(paths.begin(), paths.begin() + n);
    auto image = Open(layer_paths);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    const std::string want = Compose(specs);
    EXPECT_EQ((*image)->size(), want.size());
    EXPECT_TRUE(ReadAll(**image) == want);
    RandomReads(**image, want, 11 + n);
    CheckExtentsAgainst(**image, want);
  }
  auto image = Open(paths);
  ASSERT_TRUE(image.ok());
  auto extents = (*image)->Extents();
  ASSERT_TRUE(extents.ok());
  const uint64_t h = kMiB / 2;
  const std::vector<Extent> want = {
      {0, 2 * h, true},              // base block 0 (mid overrides its second half)
      {2 * h, 2 * h, true},          // base block 1
      {4 * h, 2 * h, false},         // zero-marked in mid over base block 2
      {6 * h, h, false},             // free everywhere
      {7 * h, h, true},              // mid
      {8 * h, 2 * h, true},          // base block 4
      {10 * h, 2 * h, false},        // free everywhere
      {12 * h, kMiB + 4096, true}};  // top block 3
  EXPECT_EQ(*extents, NormalizeExtents(want));

  // One image serves several threads.
  const std::string all = Compose(chain);
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { RandomReads(**image, all, 100 + t, 100); });
  }
  for (std::thread& t : threads) t.join();
}

TEST_F(VdiImageTest, ExpectedUuidsAreChecked) {
  const std::vector<VdiSpec> chain = ThreeLayerChain();
  std::vector<std::string> paths, uuids;
  for (size_t i = 0; i < 2; ++i) {
    paths.push_back(dir_ / fmt::format("layer{}.vdi", i));
    WriteBytes(paths.back(), VdiBytes(chain[i]));
    uuids.push_back("{" + VdiUuidString(chain[i].create) + "}");
  }
  EXPECT_TRUE(VdiChainImage::Open(paths, uuids).ok());
  std::swap(uuids[0], uuids[1]);
  auto image = VdiChainImage::Open(paths, uuids);
  EXPECT_EQ(image.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(image.status().message().find("media registry"), std::string::npos);
}

TEST(VdiUuidTest, FirstThreeFieldsAreLittleEndian) {
  VdiUuid u = {0x3e, 0x2c, 0x0d, 0x1b, 0x5a, 0x4f, 0x6c, 0x4b,
               0x8d, 0x7e, 0x9f, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e};
  EXPECT_EQ(VdiUuidString(u), "1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e");
}

// ---- Damage ----

struct Damage {
  std::string name;
  std::function<void(std::string* file)> apply;
  StatusCode code;
  std::string words;
};

std::vector<Damage> Damages() {
  auto put = [](size_t off, uint32_t v) { return [off, v](std::string* f) { Put32(f, off, v); }; };
  return {
      {"NotVdi", [](std::string* f) { (*f)[64] = 'x'; }, StatusCode::kInvalidArgument,
       "not a VDI image"},
      {"Tiny", [](std::string* f) { f->resize(60); }, StatusCode::kInvalidArgument, "too short"},
      {"HeaderCut", [](std::string* f) { f->resize(300); }, StatusCode::kCorruption, "cut short"},
      {"Version2", put(68, 0x00020000), StatusCode::kUnsupported, "version 2.0"},
      {"Version0", put(68, 0x00000001), StatusCode::kUnsupported, "version 0.1"},
      {"Undo", put(76, 3), StatusCode::kUnsupported, "undo"},
      {"BadType", put(76, 9), StatusCode::kCorruption, "image type 9"},
      {"SmallHeader", put(72, 100), StatusCode::kCorruption, "header size 100"},
      {"HugeHeader", put(72, 0x7fffffff), StatusCode::kCorruption, "overlaps the"},
      {"BlockSizeNotPowerOfTwo", put(376, 3 * kMiB), StatusCode::kCorruption, "block size"},
      {"BlockSizeHuge", put(376, 1u << 31), StatusCode::kCorruption, "block size"},
      {"BadExtra", put(380, 3), StatusCode::kCorruption, "block extra"},
      {"DiskTooBig", [](std::string* f) { Put64(f, 368, uint64_t{1} << 50); },
       StatusCode::kCorruption, "cannot hold"},
      {"DiskEmpty", [](std::string* f) { Put64(f, 368, 0); }, StatusCode::kCorruption,
       "disk size 0"},
      {"NoBlocks", put(384, 0), StatusCode::kCorruption, "0 blocks"},
      {"TooManyAllocated", put(388, 1000), StatusCode::kCorruption, "1000 blocks allocated"},
      {"MapPastEnd", put(384, 0x10000000), StatusCode::kCorruption, "overlaps the block map"},
      {"DataOverlapsMap", put(344, 516), StatusCode::kCorruption, "overlaps the block map"},
      {"NullUuid", [](std::string* f) { std::memset(f->data() + 392, 0, 16); },
       StatusCode::kCorruption, "null creation uuid"},
      {"MapCut", [](std::string* f) { f->resize(520); }, StatusCode::kCorruption,
       "past the end of the file"},
      {"EntryOutOfRange", put(512, 4000), StatusCode::kCorruption, "beyond the"},
      {"EntryPastEof", put(512, 5), StatusCode::kCorruption, "truncated?"},
      {"DataCut", [](std::string* f) { f->resize(f->size() - 1); }, StatusCode::kCorruption,
       "truncated?"},
  };
}

class VdiDamageTest : public ::testing::TestWithParam<Damage> {};

TEST_P(VdiDamageTest, IsAClearError) {
  TempDir dir;
  VdiSpec s;
  s.disk_size = 8 * kMiB;
  for (uint32_t b : {0u, 2u, 7u}) s.data[b] = Pattern(kMiB, b);
  std::string file = VdiBytes(s);
  GetParam().apply(&file);
  WriteBytes(dir / "d.vdi", file);
  auto image = VdiChainImage::Open({dir / "d.vdi"});
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), GetParam().code) << image.status().ToString();
  EXPECT_NE(image.status().message().find(GetParam().words), std::string::npos)
      << image.status().ToString();
  EXPECT_NE(image.status().message().find("d.vdi"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Cases, VdiDamageTest, ::testing::ValuesIn(Damages()),
                         [](const auto& info) { return info.param.name; });

TEST_F(VdiImageTest, BrokenChains) {
  std::vector<VdiSpec> chain = ThreeLayerChain();
  auto write = [&](const std::string& name, const VdiSpec& s) {
    WriteBytes(dir_ / name, VdiBytes(s));
    return dir_ / name;
  };
  const std::string base = write("base.vdi", chain[0]);
  const std::string mid = write("mid.vdi", chain[1]);
  const std::string top = write("top.vdi", chain[2]);

  auto r = Open({mid});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no parent"), std::string::npos) << r.status().ToString();
  r = Open({base, base});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not a differencing image"), std::string::npos);
  r = Open({base, top});  // skips mid
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find(VdiUuidString(chain[1].create)), std::string::npos)
      << r.status().ToString();
  VdiSpec small = chain[1];
  small.disk_size = 4 * kMiB;
  small.data.erase(7);
  small.zero = {4, 5};
  r = Open({base, write("small.vdi", small)});  // a child smaller than its parent
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("less than its parent"), std::string::npos);
  r = Open({});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = Open({dir_ / "missing.vdi"});
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  r = Open({dir_.path()});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  ASSERT_EQ(::mkfifo((dir_ / "fifo.vdi").c_str(), 0600), 0);
  r = Open({dir_ / "fifo.vdi"});  // must not wait for a writer
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not a regular file"), std::string::npos);

  auto image = Open({base, mid, top});
  ASSERT_TRUE(image.ok());
  std::string buf(16, '\0');
  std::span<uint8_t> out(reinterpret_cast<uint8_t*>(buf.data()), buf.size());
  EXPECT_EQ((*image)->ReadAt((*image)->size() - 8, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*image)->ReadAt(~uint64_t{0} - 4, out).code(), StatusCode::kInvalidArgument);
  // A file that shrinks after Open is an error, not garbage.
  ASSERT_EQ(::truncate(base.c_str(), 4096), 0);
  EXPECT_EQ((*image)->ReadAt(0, out).code(), StatusCode::kCorruption);
}

// Random damage to a small image's header and map: never a crash, and whatever opens
// reads whole.
TEST_F(VdiImageTest, RandomDamageNeverCrashes) {
  VdiSpec s;
  s.disk_size = 64 * 1024 + 512;
  s.block_size = 4096;
  s.block_extra = 16;
  for (uint32_t b = 0; b < s.blocks(); b += 2) s.data[b] = Pattern(4096, b);
  s.zero = {3};
  const std::string good = VdiBytes(s);
  std::mt19937 rng(5);
  int opened = 0;
  for (int i = 0; i < 400; ++i) {
    std::string f = good;
    const int flips = 1 + rng() % 4;
    for (int k = 0; k < flips; ++k) {
      const size_t off = 64 + rng() % (512 + 4 * s.blocks() - 64);
      f[off] = static_cast<char>(rng());
    }
    if (rng() % 8 == 0) f.resize(rng() % f.size());
    WriteBytes(dir_ / "f.vdi", f);
    auto image = Open({dir_ / "f.vdi"});
    if (!image.ok()) continue;
    ++opened;
    std::string all((*image)->size() > (1u << 24) ? 0 : (*image)->size(), '\0');
    (*image)
        ->ReadAt(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(all.data()), all.size()))
        .IgnoreError();
    (*image)->Extents().status().IgnoreError();
  }
  EXPECT_GT(opened, 0);
  // And the header parser on its own, fed noise.
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> bytes(rng() % 600);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    if (bytes.size() >= 68) std::memcpy(bytes.data() + 64, good.data() + 64, 4);
    ParseVdiHeader(bytes, rng(), "noise").status().IgnoreError();
  }
}

// ---- VMDK chains go to qemu ----

// qemu follows a child VMDK to its parent by the descriptor's parentFileNameHint.
// VirtualBox's VMDK backend links children by ddb.uuid.parent and writes no such hint,
// so for VirtualBox's own VMDK snapshots the ingest must name the parent to qemu
// (a "backing" option), which this test shows works.
TEST_F(VdiImageTest, QemuReadsVmdkChainsThroughTheChild) {
  const std::string raw = SampleRaw(8 * kMiB);
  WriteBytes(dir_ / "base.raw", raw);
  ASSERT_NO_FATAL_FAILURE(RunOk(
      {"qemu-img", "convert", "-f", "raw", "-O", "vmdk", dir_ / "base.raw", dir_ / "base.vmdk"}));
  ASSERT_NO_FATAL_FAILURE(RunOk({"qemu-img", "create", "-f", "vmdk", "-b", dir_ / "base.vmdk", "-F",
                                 "vmdk", dir_ / "child.vmdk"}));
  ASSERT_NO_FATAL_FAILURE(
      RunOk({"qemu-io", "-f", "vmdk", "-c", "write -P 0xab 1M 64k", dir_ / "child.vmdk"}));
  std::string want = raw;
  std::memset(want.data() + kMiB, 0xab, 64 * 1024);
  WriteBytes(dir_ / "want.raw", want);
  CommandOutput cmp = RunCmd(
      {"qemu-img", "compare", "-f", "vmdk", "-F", "raw", dir_ / "child.vmdk", dir_ / "want.raw"});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.stdout_text << cmp.stderr_text;

  // Without the hint (as VirtualBox writes children) qemu reads the child alone...
  auto child = ReadFile(dir_ / "child.vmdk");
  ASSERT_TRUE(child.ok());
  const size_t hint = child->find("parentFileNameHint=\"");
  ASSERT_NE(hint, std::string::npos);
  (*child)[hint] = '#';
  WriteBytes(dir_ / "child.vmdk", *child);
  cmp = RunCmd(
      {"qemu-img", "compare", "-f", "vmdk", "-F", "raw", dir_ / "child.vmdk", dir_ / "want.raw"});
  EXPECT_EQ(cmp.exit_code, 1) << cmp.stdout_text << cmp.stderr_text;
  // ...unless it is told the parent.
  const std::string spec =
      fmt::format(R"(json:{{"driver":"vmdk","file":{{"driver":"file","filename":"{}"}},)"
                  R"("backing":{{"driver":"vmdk","file":{{"driver":"file","filename":"{}"}}}}}})",
                  dir_ / "child.vmdk", dir_ / "base.vmdk");
  cmp = RunCmd({"qemu-img", "compare", "-F", "raw", spec, dir_ / "want.raw"});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.stdout_text << cmp.stderr_text;
}

}  // namespace
}  // namespace vmvault::ingest
