// Partition files: <disk>.part<N>.raw for each partition of an MBR or GPT disk,
// numbered as Linux numbers them, loop-mounted read-only without offsets.
#include <map>

#include <gtest/gtest.h>

#include "views_fixture.h"

namespace vmvault::testing {
namespace {

namespace fs = std::filesystem;

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
