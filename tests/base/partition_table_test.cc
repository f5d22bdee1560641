#include "base/partition_table.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "tests/temp_dir.h"

namespace vmvault {

// For readable failures (found by argument-dependent lookup, so not in the anonymous
// namespace).
void PrintTo(const Partition& p, std::ostream* os) {
  *os << fmt::format("{{{} {} @{} +{} {} \"{}\"}}", p.scheme, p.number, p.offset, p.length, p.type,
                     p.name);
}

namespace {

constexpr uint64_t kSector = 512;
constexpr uint64_t kMiB = 1 << 20;
const char kLinuxFs[] = "0fc63daf-8483-4772-8e79-3d69d8477de4";
const char kEsp[] = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
const char kSwap[] = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f";

// A disk in memory. Every read must be non-empty and lie within the disk; reads reaching
// `fail_from` fail.
class MemImage final : public Image {
 public:
  explicit MemImage(std::string bytes) : bytes_(std::move(bytes)) {}

  uint64_t size() const override { return bytes_.size(); }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    if (out.empty() || offset > bytes_.size() || out.size() > bytes_.size() - offset) {
      ADD_FAILURE() << "bad read: " << offset << " + " << out.size();
      return Status::IOError("bad read");
    }
    bytes_read_ += out.size();
    if (fail_from_ && offset + out.size() > *fail_from_) {
      return Status::IOError("injected read failure");
    }
    std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return Status::OK();
  }

  void FailReadsFrom(uint64_t offset) { fail_from_ = offset; }
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  std::string bytes_;
  std::optional<uint64_t> fail_from_;
  uint64_t bytes_read_ = 0;
};

std::vector<Partition> Read(std::string disk) {
  MemImage image(std::move(disk));
  Result<std::vector<Partition>> parts = ReadPartitions(image);
  EXPECT_TRUE(parts.ok()) << parts.status().ToString();
  return parts.ok() ? *parts : std::vector<Partition>{};
}

Partition Gpt(uint32_t number, uint64_t first_lba, uint64_t sectors, std::string type,
              std::string name) {
  return {number, first_lba * kSector, sectors * kSector, "gpt", std::move(type), std::move(name)};
}
Partition Mbr(uint32_t number, uint64_t first_lba, uint64_t sectors, std::string type) {
  return {number, first_lba * kSector, sectors * kSector, "mbr", std::move(type), ""};
}

// ---- Building tables by hand ----

void PutLe(std::string* disk, uint64_t offset, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) (*disk)[offset + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::span<const uint8_t> Bytes(const std::string& disk, uint64_t offset, uint64_t length) {
  return {reinterpret_cast<const uint8_t*>(disk.data()) + offset, length};
}

// Writes entry `slot` (0-3) of the MBR or EBR at `lba`, and the signature.
void PutMbrEntry(std::string* disk, uint64_t lba, int slot, uint8_t type, uint32_t start,
                 uint32_t sectors, uint8_t boot = 0) {
  const uint64_t e = lba * kSector + 446 + 16 * slot;
  PutLe(disk, e, boot, 1);
  PutLe(disk, e + 4, type, 1);
  PutLe(disk, e + 8, start, 4);
  PutLe(disk, e + 12, sectors, 4);
  PutLe(disk, lba * kSector + 510, 0xaa55, 2);
}

// The on-disk form of a GUID: the first three fields little-endian.
std::string GuidBytes(std::string text) {
  std::erase(text, '-');
  std::string b;
  EXPECT_TRUE(FromHex(text, &b) && b.size() == 16) << text;
  std::reverse(b.begin(), b.begin() + 4);
  std::reverse(b.begin() + 4, b.begin() + 6);
  std::reverse(b.begin() + 6, b.begin() + 8);
  return b;
}

struct GptEntry {
  uint32_t index = 0;
  std::string type;
  uint64_t first = 0, last = 0;
  std::u16string name;
};

struct GptLayout {
  uint64_t header_lba = 1;
  uint64_t array_lba = 2;
  uint32_t count = 128;
  uint32_t entry_size = 128;
};

// Recomputes the CRC of the GPT header at `lba` (over at most a sector).
void FixHeaderCrc(std::string* disk, uint64_t lba) {
  const uint64_t h = lba * kSector;
  const uint64_t size = std::min<uint64_t>(GetLittleEndian32(disk->data() + h + 12), kSector);
  PutLe(disk, h + 16, 0, 4);
  PutLe(disk, h + 16, Crc32(Bytes(*disk, h, size)), 4);
}

// Recomputes the entry array CRC of the GPT header at `lba`, if the array is on the disk,
// then the header's CRC.
void FixCrcs(std::string* disk, uint64_t lba) {
  const uint64_t h = lba * kSector;
  const uint64_t array = GetLittleEndian64(disk->data() + h + 72) * kSector;
  const uint64_t bytes =
      uint64_t{GetLittleEndian32(disk->data() + h + 80)} * GetLittleEndian32(disk->data() + h + 84);
  if (array <= disk->size() && bytes <= disk->size() - array) {
    PutLe(disk, h + 88, Crc32(Bytes(*disk, array, bytes)), 4);
  }
  FixHeaderCrc(disk, lba);
}

// Writes a GPT header and its entry array, for a disk of disk->size() bytes.
void PutGpt(std::string* disk, const GptLayout& l, const std::vector<GptEntry>& entries) {
  const uint64_t last_lba = disk->size() / kSector - 1;
  const uint64_t a = l.array_lba * kSector;
  for (const GptEntry& e : entries) {
    const uint64_t o = a + uint64_t{e.index} * l.entry_size;
    disk->replace(o, 16, GuidBytes(e.type));
    disk->replace(o + 16, 16, std::string(16, '\x42'));  // the unique GUID
    PutLe(disk, o + 32, e.first, 8);
    PutLe(disk, o + 40, e.last, 8);
    for (size_t i = 0; i < e.name.size(); ++i) PutLe(disk, o + 56 + 2 * i, e.name[i], 2);
  }
  const uint64_t h = l.header_lba * kSector;
  disk->replace(h, 8, "EFI PART");
  PutLe(disk, h + 8, 0x00010000, 4);
  PutLe(disk, h + 12, 92, 4);
  PutLe(disk, h + 24, l.header_lba, 8);
  PutLe(disk, h + 32, l.header_lba == 1 ? last_lba : 1, 8);
  PutLe(disk, h + 40, 34, 8);
  PutLe(disk, h + 48, last_lba - 33, 8);
  PutLe(disk, h + 72, l.array_lba, 8);
  PutLe(disk, h + 80, l.count, 4);
  PutLe(disk, h + 84, l.entry_size, 4);
  PutLe(disk, h + 88, Crc32(Bytes(*disk, a, uint64_t{l.count} * l.entry_size)), 4);
  FixHeaderCrc(disk, l.header_lba);
}

// A 1 MiB disk with a protective MBR, a primary GPT holding `primary` and a backup
// holding `backup` (they differ so tests can tell which one was read).
std::string GptDisk(const std::vector<GptEntry>& primary, const std::vector<GptEntry>& backup) {
  std::string disk(kMiB, '\0');
  const uint32_t sectors = kMiB / kSector;
  PutMbrEntry(&disk, 0, 0, 0xee, 1, sectors - 1);
  PutGpt(&disk, {}, primary);
  PutGpt(&disk, {.header_lba = sectors - 1, .array_lba = sectors - 33}, backup);
  return disk;
}

const std::vector<GptEntry> kPrimary = {{0, kLinuxFs, 34, 1033, u"primary"}};
const std::vector<GptEntry> kBackup = {{1, kSwap, 1034, 2013, u"backup"}};
const std::vector<Partition> kPrimaryParts = {Gpt(1, 34, 1000, kLinuxFs, "primary")};
const std::vector<Partition> kBackupParts = {Gpt(2, 1034, 980, kSwap, "backup")};

// ---- Tables written by sfdisk ----

class PartitionSfdiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v sfdisk >/dev/null 2>&1 || test -x /usr/sbin/sfdisk") != 0) {
      GTEST_SKIP() << "sfdisk (package fdisk) is not installed";
    }
  }

  // Runs `sfdisk` on a sparse file of `size` bytes with `script`; returns the disk image.
  std::string MakeDisk(uint64_t size, const std::string& script) {
    std::ofstream(dir_ / "script") << script;
    const std::string cmd =
        "PATH=$PATH:/usr/sbin LC_ALL=C.UTF-8; export PATH LC_ALL; truncate -s " +
        std::to_string(size) + " '" + disk_ + "' && sfdisk --quiet '" + disk_ + "' < '" +
        (dir_ / "script") + "' && sfdisk --json '" + disk_ + "' > '" + (dir_ / "json") + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream in(disk_, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }

  // What `sfdisk --json` says, in our terms, without extended containers.
  std::vector<Partition> SfdiskView() {
    const nlohmann::json j = nlohmann::json::parse(std::ifstream(dir_ / "json"));
    const auto& table = j.at("partitiontable");
    const bool gpt = table.at("label") == "gpt";
    std::vector<Partition> out;
    for (const auto& p : table.at("partitions")) {
      const std::string node = p.at("node"), type = p.at("type");
      Partition part{.number = static_cast<uint32_t>(std::stoul(node.substr(disk_.size()))),
                     .offset = p.at("start").get<uint64_t>() * kSector,
                     .length = p.at("size").get<uint64_t>() * kSector,
                     .scheme = gpt ? "gpt" : "mbr",
                     .type = "",
                     .name = p.value("name", "")};
      if (gpt) {
        for (char c : type) part.type += static_cast<char>(std::tolower(c));
      } else {
        const unsigned long t = std::stoul(type, nullptr, 16);
        if (t == 0x05 || t == 0x0f || t == 0x85) continue;
        part.type = fmt::format("0x{:02x}", t);
      }
      out.push_back(part);
    }
    return out;
  }

  vmvault::testing::TempDir dir_;
  const std::string disk_ = dir_ / "disk.img";
};

TEST_F(PartitionSfdiskTest, Gpt) {
  std::string disk = MakeDisk(16 * kMiB,
                              "label: gpt\n"
                              "disk.img1 : start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-"
                              "3D69D8477DE4, name=\"root fs\"\n"
                              "disk.img3 : start=8192, size=8192, type=C12A7328-F81F-11D2-BA4B-"
                              "00A0C93EC93B, name=\"EFI système\"\n");
  MemImage image(disk);
  Result<std::vector<Partition>> parts = ReadPartitions(image);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  const std::vector<Partition> want = {Gpt(1, 2048, 4096, kLinuxFs, "root fs"),
                                       Gpt(3, 8192, 8192, kEsp, "EFI système")};
  EXPECT_EQ(*parts, want);
  EXPECT_EQ(*parts, SfdiskView());
  EXPECT_LE(image.bytes_read(), 64u << 10);

  // sfdisk's backup GPT, at the end of the disk, says the same.
  disk[kSector + 16] ^= 1;
  EXPECT_EQ(Read(disk), want);
  disk[disk.size() - kSector + 16] ^= 1;
  EXPECT_TRUE(Read(disk).empty());
}

TEST_F(PartitionSfdiskTest, MbrWithLogicalPartitions) {
  MemImage image(MakeDisk(32 * kMiB,
                          "label: dos\n"
                          "start=2048, size=4096, type=83\n"
                          "start=8192, size=4096, type=7, bootable\n"
                          "start=16384, size=40960, type=5\n"
                          "start=18432, size=4096, type=83\n"
                          "start=24576, size=4096, type=82\n"
                          "start=30720, size=4096, type=c\n"));
  Result<std::vector<Partition>> parts = ReadPartitions(image);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  const std::vector<Partition> want = {Mbr(1, 2048, 4096, "0x83"), Mbr(2, 8192, 4096, "0x07"),
                                       Mbr(5, 18432, 4096, "0x83"), Mbr(6, 24576, 4096, "0x82"),
                                       Mbr(7, 30720, 4096, "0x0c")};
  EXPECT_EQ(*parts, want);
  EXPECT_EQ(*parts, SfdiskView());
}

// ---- Hand-built edge cases ----

TEST(PartitionTableTest, NoSignatureMeansNoTable) {
  std::string disk(kMiB, '\0');
  PutMbrEntry(&disk, 0, 0, 0x83, 2048, 4096);
  PutLe(&disk, 510, 0, 2);
  EXPECT_TRUE(Read(disk).empty());
  // A signature alone is a table with no partitions.
  EXPECT_TRUE(Read(std::string(510, '\0') + "\x55\xaa").empty());
}

TEST(PartitionTableTest, DiskSmallerThanASectorHasNoTable) {
  EXPECT_TRUE(Read(std::string(100, '\0')).empty());
  EXPECT_TRUE(Read("").empty());
  std::string almost(511, '\0');
  almost[510] = '\x55';
  EXPECT_TRUE(Read(almost).empty());
}

TEST(PartitionTableTest, BootSectorWithoutTableIsNotATable) {
  // A FAT or NTFS boot sector has the signature and boot code where the entries would be.
  std::string disk(kMiB, '\0');
  PutMbrEntry(&disk, 0, 0, 0x83, 1, 100, /*boot=*/0x29);
  EXPECT_TRUE(Read(disk).empty());
}

TEST(PartitionTableTest, MbrPrimariesKeepTheirSlotNumbers) {
  std::string disk(kMiB, '\0');
  PutMbrEntry(&disk, 0, 1, 0x83, 1500, 8, /*boot=*/0x80);
  PutMbrEntry(&disk, 0, 2, 0x00, 100, 8);  // type 0: unused
  PutMbrEntry(&disk, 0, 3, 0x8e, 1000, 24);
  EXPECT_EQ(Read(disk),
            (std::vector<Partition>{Mbr(2, 1500, 8, "0x83"), Mbr(4, 1000, 24, "0x8e")}));
}

TEST(PartitionTableTest, GptNumbersBySlotAndDecodesNames) {
  std::vector<GptEntry> entries = {
      {0, kEsp, 40, 99, u"EFI syst\u00e8me"},
      {4, kLinuxFs, 100, 199, u"emoji \U0001F600 lone \xD800 end"},
      {6, kSwap, 200, 299, u""},
      {7, kSwap, 300, 399, std::u16string(36, u'y')},  // fills the field: no NUL
  };
  entries[2].name.assign(u"cut\0after nul", 13);
  EXPECT_EQ(Read(GptDisk(entries, {})),
            (std::vector<Partition>{
                Gpt(1, 40, 60, kEsp, "EFI système"),
                Gpt(5, 100, 100, kLinuxFs, "emoji \xF0\x9F\x98\x80 lone \uFFFD end"),
                Gpt(7, 200, 100, kSwap, "cut"),
                Gpt(8, 300, 100, kSwap, std::string(36, 'y')),
            }));
}

TEST(PartitionTableTest, GptWithLargerEntries) {
  std::string disk(kMiB, '\0');
  PutMbrEntry(&disk, 0, 0, 0xee, 1, kMiB / kSector - 1);
  PutGpt(&disk, {.count = 64, .entry_size = 256}, {{3, kLinuxFs, 100, 199, u"big"}});
  EXPECT_EQ(Read(disk), (std::vector<Partition>{Gpt(4, 100, 100, kLinuxFs, "big")}));
}

TEST(PartitionTableTest, GptPrefersThePrimary) {
  EXPECT_EQ(Read(GptDisk(kPrimary, kBackup)), kPrimaryParts);
}

TEST(PartitionTableTest, GptCorruptPrimaryHeaderUsesTheBackup) {
  std::string disk = GptDisk(kPrimary, kBackup);
  disk[kSector + 16] ^= 1;  // the header CRC
  EXPECT_EQ(Read(disk), kBackupParts);
}

TEST(PartitionTableTest, GptCorruptPrimaryEntriesUseTheBackup) {
  std::string disk = GptDisk(kPrimary, kBackup);
  disk[2 * kSector + 56] ^= 1;  // a character of the first name
  EXPECT_EQ(Read(disk), kBackupParts);
}

TEST(PartitionTableTest, GptHeaderFieldsAreChecked) {
  // Each case changes one field of the primary header and fixes up both CRCs, so only
  // the field's own check can reject the header.
  struct Case {
    const char* what;
    uint64_t offset;
    uint64_t value;
    int bytes;
    std::vector<Partition> want;
  };
  const Case cases[] = {
      {"signature", 0, 0x5452415020494646, 8, kBackupParts},  // "FFI PART"
      {"revision 2.0", 8, 0x00020000, 4, kBackupParts},
      {"revision 1.1", 8, 0x00010001, 4, kPrimaryParts},
      {"header size too small", 12, 91, 4, kBackupParts},
      {"header size a sector", 12, 512, 4, kPrimaryParts},
      {"header size beyond the sector", 12, 513, 4, kBackupParts},
      {"my LBA", 24, 2, 8, kBackupParts},
      {"last usable beyond the disk", 48, kMiB / kSector, 8, kBackupParts},
      {"first usable after last usable", 40, kMiB / kSector - 33, 8, kBackupParts},
      {"entry array beyond the disk", 72, kMiB / kSector - 1, 8, kBackupParts},
      {"no entries", 80, 0, 4, {}},
      {"too many entries", 80, 1025, 4, kBackupParts},
      {"entry array too large", 84, 2056, 4, kBackupParts},  // 128 * 2056 > 256 KiB
      {"entry size too small", 84, 120, 4, kBackupParts},
      {"entry size not a multiple of 8", 84, 132, 4, kBackupParts},
      {"entry size 136", 84, 136, 4, kPrimaryParts},
  };
  for (const Case& c : cases) {
    std::string disk = GptDisk(kPrimary, kBackup);
    PutLe(&disk, kSector + c.offset, c.value, c.bytes);
    FixCrcs(&disk, 1);
    EXPECT_EQ(Read(disk), c.want) << c.what;
  }
  std::string disk = GptDisk(kPrimary, kBackup);
  PutLe(&disk, kSector + 88, 0x12345678, 4);  // the entry array CRC
  FixHeaderCrc(&disk, 1);
  EXPECT_EQ(Read(disk), kBackupParts) << "entry array CRC";
}

TEST(PartitionTableTest, GptWithBothHeadersBadIsEmpty) {
  std::string disk = GptDisk(kPrimary, kBackup);
  disk[kSector + 16] ^= 1;
  disk[kMiB - kSector + 16] ^= 1;
  // A hybrid MBR entry is not used as a fallback.
  PutMbrEntry(&disk, 0, 1, 0x83, 34, 1000);
  EXPECT_TRUE(Read(disk).empty());
}

TEST(PartitionTableTest, HybridMbrIsReadAsGptOnly) {
  std::string disk = GptDisk(kPrimary, kBackup);
  PutMbrEntry(&disk, 0, 1, 0x0c, 1034, 980);
  EXPECT_EQ(Read(disk), kPrimaryParts);
}

TEST(PartitionTableTest, BackupFoundOnDiskWhoseSizeIsNotWholeSectors) {
  std::string disk = GptDisk(kPrimary, kBackup) + std::string(100, '\0');
  disk[kSector + 16] ^= 1;
  EXPECT_EQ(Read(disk), kBackupParts);
}

TEST(PartitionTableTest, PartitionsNotEntirelyOnTheDiskAreDropped) {
  const uint32_t sectors = kMiB / kSector;
  std::string disk(kMiB, '\0');
  PutMbrEntry(&disk, 0, 0, 0x83, 2000, sectors - 2000);  // ends exactly at the end: kept
  PutMbrEntry(&disk, 0, 1, 0x83, 1000, sectors - 999);   // one sector too long
  PutMbrEntry(&disk, 0, 2, 0x83, sectors, 1);            // starts at the end
  PutMbrEntry(&disk, 0, 3, 0x83, 0xffffffff, 0xffffffff);
  EXPECT_EQ(Read(disk), (std::vector<Partition>{Mbr(1, 2000, sectors - 2000, "0x83")}));

  const std::vector<GptEntry> entries = {
      {0, kLinuxFs, 2000, sectors - 1, u"last"},  // kept
      {1, kLinuxFs, 1000, sectors, u"too long"},
      {2, kLinuxFs, sectors, sectors, u"beyond"},
      {3, kLinuxFs, 1ull << 60, (1ull << 60) + 10, u"offset overflows"},
      {4, kLinuxFs, 0, ~0ull, u"length overflows"},
      {5, kLinuxFs, 500, 499, u"ends before it starts"},
  };
  EXPECT_EQ(Read(GptDisk(entries, {})),
            (std::vector<Partition>{Gpt(1, 2000, sectors - 2000, kLinuxFs, "last")}));
}

// A primary partition and an extended one at sectors [1000, 2000) with EBRs at `ebrs`
// (relative to it). Each EBR holds a 10-sector logical partition right after itself and
// links to the next EBR; the last one links to `last_link` if given.
std::string ChainDisk(const std::vector<uint32_t>& ebrs,
                      std::optional<uint32_t> last_link = std::nullopt) {
  std::string disk(kMiB, '\0');
  PutMbrEntry(&disk, 0, 0, 0x83, 100, 50);
  PutMbrEntry(&disk, 0, 1, 0x0f, 1000, 1000);
  for (size_t i = 0; i < ebrs.size(); ++i) {
    PutMbrEntry(&disk, 1000 + ebrs[i], 0, 0x83, 1, 10);
    const std::optional<uint32_t> next = i + 1 < ebrs.size() ? ebrs[i + 1] : last_link;
    if (next) PutMbrEntry(&disk, 1000 + ebrs[i], 1, 0x05, *next, 20);
  }
  return disk;
}

TEST(PartitionTableTest, EbrChainThatLoopsEnds) {
  const std::vector<Partition> want = {Mbr(1, 100, 50, "0x83"), Mbr(5, 1001, 10, "0x83"),
                                       Mbr(6, 1101, 10, "0x83"), Mbr(7, 1201, 10, "0x83")};
  EXPECT_EQ(Read(ChainDisk({0, 100, 200}, /*back to the first*/ 0)), want);
  EXPECT_EQ(Read(ChainDisk({0, 100, 200}, /*back to the second*/ 100)), want);
  EXPECT_EQ(Read(ChainDisk({0, 100, 200}, /*to itself*/ 200)), want);
}

TEST(PartitionTableTest, EbrChainStopsWithoutSignatureOrBeyondTheDisk) {
  std::string disk = ChainDisk({0, 100}, 300);  // no EBR at 300
  EXPECT_EQ(Read(disk).size(), 3u);
  disk = ChainDisk({0, 100}, 0xffff0000);  // an EBR beyond the disk
  EXPECT_EQ(Read(disk).size(), 3u);
}

TEST(PartitionTableTest, EbrChainIsCapped) {
  std::vector<uint32_t> ebrs;
  for (uint32_t i = 0; i < 300; ++i) ebrs.push_back(i * 2);  // overlapping, but distinct
  std::string disk(4 * kMiB, '\0');
  disk.replace(0, kMiB, ChainDisk({}));
  PutMbrEntry(&disk, 0, 1, 0x05, 1000, 4000);
  for (size_t i = 0; i < ebrs.size(); ++i) {
    PutMbrEntry(&disk, 1000 + ebrs[i], 0, 0x83, 1, 1);
    PutMbrEntry(&disk, 1000 + ebrs[i], 1, 0x05, ebrs[i] + 2, 2);
  }
  MemImage image(disk);
  Result<std::vector<Partition>> parts = ReadPartitions(image);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 1u + 256u);
  EXPECT_EQ(parts->back(), Mbr(260, 1000 + 255 * 2 + 1, 1, "0x83"));
  EXPECT_LE(image.bytes_read(), 130u << 10);
}

TEST(PartitionTableTest, LogicalsFollowLinuxForEntriesThreeAndFour) {
  std::string disk = ChainDisk({0});
  PutMbrEntry(&disk, 1000, 2, 0x82, 1, 5);     // within the EBR's extent: kept
  PutMbrEntry(&disk, 1000, 3, 0x83, 1, 1030);  // on the disk, beyond the extended one
  EXPECT_EQ(Read(disk), (std::vector<Partition>{Mbr(1, 100, 50, "0x83"), Mbr(5, 1001, 10, "0x83"),
                                                Mbr(6, 1001, 5, "0x82")}));
}

TEST(PartitionTableTest, ReadErrorsPropagate) {
  struct Case {
    const char* what;
    std::string disk;
    uint64_t fail_from;
  };
  const Case cases[] = {
      {"MBR", ChainDisk({0}), 0},
      {"EBR", ChainDisk({0, 100}), 1100 * kSector},
      {"GPT header", GptDisk(kPrimary, kBackup), kSector},
      {"GPT entries", GptDisk(kPrimary, kBackup), 2 * kSector + 100},
  };
  for (const Case& c : cases) {
    MemImage image(c.disk);
    image.FailReadsFrom(c.fail_from);
    Result<std::vector<Partition>> parts = ReadPartitions(image);
    EXPECT_EQ(parts.status().code(), StatusCode::kIOError) << c.what;
  }
}

}  // namespace
}  // namespace vmvault
