// IngestImageFiles with recorded-style qemu-img output (FakeCommandRunner) and in-memory
// disks (MemSourceOpener): naming, VM and backup records, and bad input.
#include "ingest/file_ingest.h"
#include "base/names.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ingest/fake_command_runner.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

using testing::MemDisk;
using testing::RandomBytes;
using testing::Recorded;
using testing::TempDir;

constexpr uint32_t kChunk = 64 << 10;

class FileIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::RepoConfig config;
    config.chunk_size = kChunk;
    engine_ = std::make_shared<store::MemKvEngine>();
    repo_ = store::Repository::OpenInMemory(config, engine_);
  }

  // Creates file `name` (a sparse file of the disk's size) and teaches the fake runner
  // to describe it as a raw image with the disk's extents.
  std::string AddImage(const std::string& name, MemDisk* disk) {
    const std::string path = dir_ / name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(disk->bytes.size())), 0);
    ::close(fd);
    if (disk->extents.empty()) disk->extents = {{0, disk->bytes.size(), true}};
    runner_.Expect({"qemu-img", "info", "--output=json", path}, 0,
                   fmt::format(R"({{"virtual-size": {}, "format": "raw"}})", disk->bytes.size()));
    std::string map = "[";
    for (const Extent& e : disk->extents) {
      if (map.size() > 1) map += ",\n";
      map += fmt::format(
          R"({{ "start": {}, "length": {}, "depth": 0, "present": true, "zero": {}, "data": {}, "offset": {}}})",
          e.offset, e.length, !e.data, e.data, e.offset);
    }
    map += "]";
    runner_.Expect({"qemu-img", "map", "--output=json", "-f", "raw", path}, 0, map);
    opener_.Add(path, disk);
    return path;
  }

  Result<store::BackupRecord> Ingest(FileIngestOptions opts) {
    opts.threads = 2;
    return IngestImageFiles(*repo_, opts, runner_, clock_, opener_);
  }

  size_t BackupCount(const std::string& vm) {
    auto list = repo_->catalog().ListBackups(vm);
    return list.ok() ? list->size() : 0;
  }

  TempDir dir_;
  FakeCommandRunner runner_;
  testing::MemSourceOpener opener_;
  FakeClock clock_{1'700'000'000'000'000};
  std::shared_ptr<store::MemKvEngine> engine_;
  std::unique_ptr<store::Repository> repo_;
};

TEST_F(FileIngestTest, TwoFilesMakeOneBackupWithTwoDisks) {
  MemDisk a, b;
  a.bytes = RandomBytes(10 * kChunk, 1);
  b.bytes = std::string(6 * kChunk, '\0');
  b.bytes.replace(kChunk, 4096, RandomBytes(4096, 2));
  b.extents = {{0, kChunk, false}, {kChunk, 4096, true}, {kChunk + 4096, 5 * kChunk - 4096, false}};
  FileIngestOptions opts;
  opts.files = {AddImage("web01.img", &a), AddImage("data.raw", &b)};
  auto backup = Ingest(opts);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_EQ(backup->vm, "web01");
  EXPECT_EQ(backup->time_us, clock_.NowMicros());
  EXPECT_EQ(backup->tier, "warm");
  EXPECT_EQ(backup->method, "offline");
  EXPECT_FALSE(backup->parent_id.has_value());
  EXPECT_FALSE(backup->host.empty());
  ASSERT_EQ(backup->disks.size(), 2u);
  const store::DiskRecord& d0 = backup->disks[0];
  EXPECT_EQ(d0.name, "web01");
  EXPECT_EQ(d0.virtual_size, a.bytes.size());
  EXPECT_EQ(d0.chunk_size, kChunk);
  EXPECT_EQ(d0.source_format, "raw");
  EXPECT_EQ(d0.source_path, opts.files[0]);
  EXPECT_EQ(d0.allocated_bytes, a.bytes.size());
  EXPECT_EQ(d0.bytes_read, a.bytes.size());
  EXPECT_EQ(d0.data_chunks, 10u);
  EXPECT_EQ(d0.new_chunks, 10u);
  const store::DiskRecord& d1 = backup->disks[1];
  EXPECT_EQ(d1.name, "data");
  EXPECT_EQ(d1.allocated_bytes, 4096u);
  EXPECT_EQ(d1.bytes_read, 4096u);
  EXPECT_EQ(d1.data_chunks, 1u);
  EXPECT_EQ(opener_.last_readers(), 2);

  auto vm = repo_->catalog().GetVm("web01");
  ASSERT_TRUE(vm.ok()) << vm.status().ToString();
  EXPECT_EQ(vm->origin, opts.files[0]);
  EXPECT_EQ(vm->tier, "warm");
  EXPECT_EQ(vm->created_us, clock_.NowMicros());

  auto stored = repo_->catalog().GetBackup(backup->id);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  auto r0 = testing::ReadBackupDisk(*repo_, *stored, 0);
  auto r1 = testing::ReadBackupDisk(*repo_, *stored, 1);
  ASSERT_TRUE(r0.ok() && r1.ok());
  EXPECT_EQ(*r0, a.bytes);
  EXPECT_EQ(*r1, b.bytes);
}

TEST_F(FileIngestTest, SecondBackupHasParentAndStoresOnlyChanges) {
  MemDisk a;
  a.bytes = RandomBytes(16 * kChunk, 3);
  FileIngestOptions opts;
  opts.files = {AddImage("vm.img", &a)};
  opts.vm = "alpha";
  auto first = Ingest(opts);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  a.bytes[3 * kChunk] ^= 1;
  clock_.Advance(3'600'000'000);
  auto second = Ingest(opts);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->parent_id, first->id);
  EXPECT_EQ(second->disks[0].new_chunks, 1u);
  EXPECT_EQ(second->disks[0].data_chunks, 16u);
  EXPECT_EQ(BackupCount("alpha"), 2u);
  auto rebuilt = testing::ReadBackupDisk(*repo_, *second, 0);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(*rebuilt, a.bytes);
}

TEST_F(FileIngestTest, DiskNamesAreSanitizedAndUnique) {
  EXPECT_EQ(DiskNamesForFiles({"/a/disk.qcow2", "/b/disk.vmdk", "/c/disk-2.img", "/d/disk"}),
            (std::vector<std::string>{"disk", "disk-2", "disk-2-2", "disk-3"}));
  EXPECT_EQ(DiskNamesForFiles({"/x/.hidden.img", "/x/-dash.img", "/x/bad\nname.img"}),
            (std::vector<std::string>{"_hidden", "_dash", "bad_name"}));
  // Long stems leave room for view suffixes such as ".raw" in a 128-byte file name.
  const std::string long_stem(126, 'd');
  const auto names = DiskNamesForFiles({"/x/" + long_stem + ".img", "/y/" + long_stem + ".img"});
  EXPECT_EQ(names[0], std::string(vmvault::kMaxDiskNameLength, 'd'));
  EXPECT_EQ(names[1], std::string(vmvault::kMaxDiskNameLength - 2, 'd') + "-2");
}

TEST_F(FileIngestTest, SameStemTwiceGetsDistinctDisks) {
  MemDisk a, b;
  a.bytes = RandomBytes(2 * kChunk, 4);
  b.bytes = RandomBytes(2 * kChunk, 5);
  FileIngestOptions opts;
  opts.files = {AddImage("one/disk.img", &a), AddImage("two/disk.img", &b)};
  auto backup = Ingest(opts);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_EQ(backup->vm, "disk");
  EXPECT_EQ(backup->disks[0].name, "disk");
  EXPECT_EQ(backup->disks[1].name, "disk-2");
}

TEST_F(FileIngestTest, DefaultVmNameIsSanitized) {
  MemDisk a;
  a.bytes = RandomBytes(kChunk, 6);
  FileIngestOptions opts;
  opts.files = {AddImage(".weird\x01name.img", &a)};
  auto backup = Ingest(opts);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_EQ(backup->vm, "_weird_name");
}

TEST_F(FileIngestTest, BadVmNamesAreRejectedBeforeAnythingRuns) {
  MemDisk a;
  a.bytes = RandomBytes(kChunk, 7);
  FileIngestOptions opts;
  opts.files = {AddImage("vm.img", &a)};
  for (const char* bad : {"", "..", "a/b", "bad\nname", "-rf", "\xff\xfe"}) {
    opts.vm = bad;
    auto r = Ingest(opts);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("VM name"), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(runner_.calls().empty());
  EXPECT_EQ(opener_.opens(), 0);
  auto vms = repo_->catalog().ListVms();
  ASSERT_TRUE(vms.ok());
  EXPECT_TRUE(vms->empty());
}

TEST_F(FileIngestTest, BadTierIsRejected) {
  MemDisk a;
  a.bytes = RandomBytes(kChunk, 8);
  FileIngestOptions opts;
  opts.files = {AddImage("vm.img", &a)};
  opts.tier = "lukewarm";
  auto r = Ingest(opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "tier 'lukewarm' is not one of hot, warm, cold");
  EXPECT_TRUE(runner_.calls().empty());
}

TEST_F(FileIngestTest, TierIsSetAndKept) {
  MemDisk a;
  a.bytes = RandomBytes(kChunk, 9);
  FileIngestOptions opts;
  opts.files = {AddImage("vm.img", &a)};
  ASSERT_TRUE(Ingest(opts).ok());
  EXPECT_EQ(repo_->catalog().GetVm("vm")->tier, "warm");
  opts.tier = "hot";
  clock_.Advance(1'000'000);
  auto hot = Ingest(opts);
  ASSERT_TRUE(hot.ok());
  EXPECT_EQ(hot->tier, "hot");
  EXPECT_EQ(repo_->catalog().GetVm("vm")->tier, "hot");
  opts.tier.reset();
  clock_.Advance(1'000'000);
  auto kept = Ingest(opts);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->tier, "hot");
  EXPECT_EQ(repo_->catalog().GetVm("vm")->origin, opts.files[0]);
}

TEST_F(FileIngestTest, OneMissingFileStoresNothingAndReadsNothing) {
  MemDisk a;
  a.bytes = RandomBytes(4 * kChunk, 10);
  FileIngestOptions opts;
  opts.files = {AddImage("vm.img", &a), dir_ / "missing.qcow2"};
  auto r = Ingest(opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("missing.qcow2"), std::string::npos);
  EXPECT_EQ(opener_.opens(), 0);
  EXPECT_EQ(a.readers_opened.load(), 0);
  EXPECT_EQ(testing::CountChunks(*repo_), 0u);
  EXPECT_EQ(BackupCount("vm"), 0u);
}

TEST_F(FileIngestTest, ReadFailureCommitsNothing) {
  MemDisk a, b;
  a.bytes = RandomBytes(4 * kChunk, 11);
  b.bytes = RandomBytes(8 * kChunk, 12);
  b.fail_at = 5 * kChunk;
  FileIngestOptions opts;
  opts.files = {AddImage("vm.img", &a), AddImage("second.img", &b)};
  auto r = Ingest(opts);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("injected read failure"), std::string::npos);
  EXPECT_NE(r.status().message().find("second.img"), std::string::npos) << r.status().message();
  EXPECT_EQ(BackupCount("vm"), 0u);
  auto vms = repo_->catalog().ListVms();
  ASSERT_TRUE(vms.ok());
  EXPECT_TRUE(vms->empty());
}

TEST_F(FileIngestTest, StoreFailureCommitsNothing) {
  MemDisk a;
  a.bytes = RandomBytes(4 * kChunk, 13);
  FileIngestOptions opts;
  opts.files = {AddImage("vm.img", &a)};
  engine_->FailNextWrites(1);
  auto r = Ingest(opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_EQ(BackupCount("vm"), 0u);
}

TEST_F(FileIngestTest, NoFilesAndMismatchedFormats) {
  FileIngestOptions opts;
  EXPECT_EQ(Ingest(opts).status().code(), StatusCode::kInvalidArgument);
  opts.files = {"/a", "/b"};
  opts.formats = {"raw"};
  EXPECT_EQ(Ingest(opts).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FileIngestTest, ForcedFormatIsUsed) {
  MemDisk a;
  a.bytes = RandomBytes(2 * kChunk, 14);
  FileIngestOptions opts;
  opts.files = {AddImage("vm.bin", &a)};
  opts.formats = {"raw"};
  runner_.Expect({"qemu-img", "info", "--output=json", "-f", "raw", opts.files[0]}, 0,
                 fmt::format(R"({{"virtual-size": {}, "format": "raw"}})", a.bytes.size()));
  auto r = Ingest(opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->disks[0].source_format, "raw");
}

// ---- ProbeChain: an image on an explicit backing chain ----

class ProbeChainTest : public ::testing::Test {
 protected:
  // Creates file `name` (1 MiB, sparse) and teaches the runner that qemu-img info says it
  // is an 8 MiB VMDK image with these CIDs.
  std::string AddVmdk(const std::string& name, uint32_t cid, uint32_t parent_cid) {
    const std::string path = MakeFile(name);
    runner_.Expect(InfoArgv(path), 0,
                   fmt::format(R"({{"virtual-size": 8388608, "format": "vmdk", "format-specific":
                      {{"type": "vmdk", "data": {{"cid": {}, "parent-cid": {},
                      "create-type": "monolithicSparse"}}}}}})",
                               cid, parent_cid));
    return path;
  }
  std::string MakeFile(const std::string& name) {
    const std::string path = dir_ / name;
    const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, 1 << 20), 0);
    ::close(fd);
    return path;
  }
  static std::vector<std::string> InfoArgv(const std::string& path) {
    return {"qemu-img", "info", "--output=json", "-f", "vmdk", path};
  }

  TempDir dir_;
  FakeCommandRunner runner_;
};

TEST_F(ProbeChainTest, EachImageIsOpenedOnTheImagesBelowIt) {
  const std::string base = AddVmdk("base.vmdk", 0x11, kVmdkNoParentCid);
  const std::string snap1 = AddVmdk("snap1.vmdk", 0x22, 0x11);
  const std::string snap2 = AddVmdk("snap,2.vmdk", 0x33, 0x22);
  const std::string snap2_opt = dir_ / "snap,,2.vmdk";
  const std::vector<std::string> check_base = {"qemu-img", "check", "--output=json",
                                               "-f",       "vmdk",  base};
  const std::vector<std::string> check_snap1 = {
      "qemu-img", "check", "--output=json", "--image-opts",
      fmt::format("driver=vmdk,file.driver=file,file.filename={},backing.driver=vmdk,"
                  "backing.file.driver=file,backing.file.filename={}",
                  snap1, base)};
  const std::string top_opts = fmt::format(
      "driver=vmdk,file.driver=file,file.filename={},backing.driver=vmdk,"
      "backing.file.driver=file,backing.file.filename={},backing.backing.driver=vmdk,"
      "backing.backing.file.driver=file,backing.backing.file.filename={}",
      snap2_opt, snap1, base);
  const std::vector<std::string> check_top = {"qemu-img", "check", "--output=json", "--image-opts",
                                              top_opts};
  const std::vector<std::string> map_top = {"qemu-img", "map", "--output=json", "--image-opts",
                                            top_opts};
  for (const auto& argv : {check_base, check_snap1, check_top}) runner_.Expect(argv, 0, "{}");
  runner_.Expect(map_top, 0,
                 R"([{"start": 0, "length": 4194304, "depth": 2, "zero": false, "data": true},
                     {"start": 4194304, "length": 4194304, "depth": 2, "zero": true, "data": false}])");

  auto f = ProbeChain(runner_, {base, snap1, snap2}, "vmdk");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->info.path, snap2);
  EXPECT_EQ(f->info.format, "vmdk");
  EXPECT_EQ(f->info.virtual_size, 8u << 20);
  const std::vector<BackingLayer> below = {{snap1, "vmdk"}, {base, "vmdk"}};
  EXPECT_EQ(f->info.backing_chain, below);
  EXPECT_EQ(f->info.backing_file, snap1);
  EXPECT_EQ(f->allocated, 4u << 20);
  const std::vector<Extent> extents = {{0, 4u << 20, true}, {4u << 20, 4u << 20, false}};
  EXPECT_EQ(f->extents, extents);
  // Every image probed, then every image checked, base first; then the top mapped.
  const std::vector<std::vector<std::string>> calls = {
      InfoArgv(base), InfoArgv(snap1), InfoArgv(snap2), check_base,
      check_snap1,    check_top,       map_top};
  EXPECT_EQ(runner_.calls(), calls);
}

TEST_F(ProbeChainTest, RecordedVmdkChain) {
  const std::string base = MakeFile("chain-base.vmdk");
  const std::string top = MakeFile("chain-top.vmdk");
  runner_.Expect(InfoArgv(base), Recorded("info_vmdk_base"));
  runner_.Expect(InfoArgv(top), Recorded("info_vmdk_top"));
  runner_.Expect({"qemu-img", "check", "--output=json", "-f", "vmdk", base}, 0, "{}");
  ImageInfo top_info;
  top_info.path = top;
  top_info.format = "vmdk";
  top_info.backing_chain = {{base, "vmdk"}};
  const std::string opts = QemuImageOpts(top_info);
  runner_.Expect({"qemu-img", "check", "--output=json", "--image-opts", opts}, 0, "{}");
  runner_.Expect({"qemu-img", "map", "--output=json", "--image-opts", opts},
                 Recorded("map_vmdk_chain"));
  auto f = ProbeChain(runner_, {base, top}, "vmdk");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->info.vmdk_parent_cid, 1776625147u);
  EXPECT_EQ(f->allocated, (3u << 20) + 65536);
}

TEST_F(ProbeChainTest, CidMismatchChecksAndMapsNothing) {
  const std::string base = AddVmdk("base.vmdk", 0x11, kVmdkNoParentCid);
  const std::string snap1 = AddVmdk("snap1.vmdk", 0x22, 0x12);
  auto f = ProbeChain(runner_, {base, snap1}, "vmdk");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(
      f.status().message().find(fmt::format("VMDK image '{}' was not made on '{}'", snap1, base)),
      std::string::npos)
      << f.status().message();
  const std::vector<std::vector<std::string>> calls = {InfoArgv(base), InfoArgv(snap1)};
  EXPECT_EQ(runner_.calls(), calls);
}

TEST_F(ProbeChainTest, AMissingImageIsNotFound) {
  const std::string base = AddVmdk("base.vmdk", 0x11, kVmdkNoParentCid);
  auto f = ProbeChain(runner_, {base, dir_ / "gone.vmdk"}, "vmdk");
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_NE(f.status().message().find("gone.vmdk"), std::string::npos);
  EXPECT_EQ(ProbeChain(runner_, {}, "vmdk").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vmvault::ingest
