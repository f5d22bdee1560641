#include "ingest/qemu_img.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/file_util.h"
#include "ingest/fake_command_runner.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

using testing::Recorded;
using testing::TempDir;

std::vector<std::string> InfoArgv(const std::string& path) {
  return {"qemu-img", "info", "--output=json", path};
}
std::vector<std::string> MapArgv(const std::string& fmt, const std::string& path) {
  return {"qemu-img", "map", "--output=json", "-f", fmt, path};
}
std::vector<std::string> CheckArgv(const std::string& fmt, const std::string& path) {
  return {"qemu-img", "check", "--output=json", "-f", fmt, path};
}

class QemuImgTest : public ::testing::Test {
 protected:
  // A sparse file of `size` bytes in the temp dir.
  std::string MakeFile(const std::string& name, uint64_t size) {
    const std::string path = dir_ / name;
    const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ::close(fd);
    return path;
  }

  TempDir dir_;
  FakeCommandRunner runner_;
};

struct FormatCase {
  std::string format;
  uint64_t virtual_size;
  std::vector<Extent> extents;
};

constexpr uint64_t kMiB = 1 << 20;

class RecordedFormatTest : public QemuImgTest, public ::testing::WithParamInterface<FormatCase> {};

TEST_P(RecordedFormatTest, ProbesAndMaps) {
  const FormatCase& c = GetParam();
  const std::string path = MakeFile("disk." + c.format, 16 * kMiB);
  runner_.Expect(InfoArgv(path), Recorded("info_" + c.format));
  runner_.Expect(MapArgv(c.format, path), Recorded("map_" + c.format));
  auto info = ProbeImage(runner_, path);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->path, path);
  EXPECT_EQ(info->format, c.format);
  EXPECT_EQ(info->virtual_size, c.virtual_size);
  EXPECT_FALSE(info->encrypted);
  EXPECT_FALSE(info->format_forced);
  EXPECT_EQ(info->file_size, 16 * kMiB);
  EXPECT_TRUE(info->backing_file.empty());
  auto extents = MapImage(runner_, *info);
  ASSERT_TRUE(extents.ok()) << extents.status().ToString();
  EXPECT_EQ(*extents, c.extents);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, RecordedFormatTest,
    ::testing::Values(
        FormatCase{"raw",
                   8 * kMiB,
                   {{0, 4096, true},
                    {4096, kMiB - 4096, false},
                    {kMiB, 3 * kMiB, true},
                    {4 * kMiB, 4 * kMiB, false}}},
        FormatCase{"qcow2",
                   8 * kMiB,
                   {{0, kMiB, false}, {kMiB, 3 * kMiB, true}, {4 * kMiB, 4 * kMiB, false}}},
        FormatCase{"vmdk",
                   8 * kMiB,
                   {{0, kMiB, false}, {kMiB, 3 * kMiB, true}, {4 * kMiB, 4 * kMiB, false}}},
        FormatCase{"vdi",
                   8 * kMiB,
                   {{0, kMiB, false}, {kMiB, 3 * kMiB, true}, {4 * kMiB, 4 * kMiB, false}}},
        FormatCase{"vhdx", 8 * kMiB, {{0, 8 * kMiB, true}}},
        FormatCase{"vpc", 8390656, {{0, 4 * kMiB, true}, {4 * kMiB, 8390656 - 4 * kMiB, false}}}),
    [](const auto& info) { return info.param.format; });

TEST_F(QemuImgTest, ForcedFormatIsPassedToQemuImg) {
  const std::string path = MakeFile("disk.img", 16 * kMiB);
  runner_.Expect({"qemu-img", "info", "--output=json", "-f", "qcow2", path},
                 Recorded("info_qcow2"));
  auto info = ProbeImage(runner_, path, "qcow2");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->format_forced);
}

TEST_F(QemuImgTest, RelativePathIsMadeAbsolute) {
  const std::string path = MakeFile("rel.qcow2", 16 * kMiB);
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(dir_.path().c_str()), 0);
  runner_.Expect(InfoArgv(path), Recorded("info_qcow2"));
  auto info = ProbeImage(runner_, "./rel.qcow2");
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->path, path);
}

TEST_F(QemuImgTest, OverlayKeepsBackingFileAndItsDataCounts) {
  const std::string path = MakeFile("overlay.qcow2", 400000);  // smaller than backing offsets
  runner_.Expect(InfoArgv(path), Recorded("info_overlay"));
  runner_.Expect(MapArgv("qcow2", path), Recorded("map_overlay"));
  auto info = ProbeImage(runner_, path);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_NE(info->backing_file.find("disk.qcow2"), std::string::npos);
  auto extents = MapImage(runner_, *info);
  ASSERT_TRUE(extents.ok()) << extents.status().ToString();
  const std::vector<Extent> expected = {{0, kMiB, false},
                                        {kMiB, 3 * kMiB, true},
                                        {4 * kMiB, 2 * kMiB, false},
                                        {6 * kMiB, 65536, true},
                                        {6 * kMiB + 65536, 2 * kMiB - 65536, false}};
  EXPECT_EQ(*extents, expected);
}

TEST_F(QemuImgTest, MissingFileIsNotFoundWithoutRunningQemuImg) {
  auto info = ProbeImage(runner_, dir_ / "nope.qcow2");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kNotFound);
  EXPECT_NE(info.status().message().find("nope.qcow2"), std::string::npos);
  EXPECT_NE(info.status().message().find("does not exist"), std::string::npos);
  EXPECT_TRUE(runner_.calls().empty());
}

TEST_F(QemuImgTest, DirectoryIsInvalidArgument) {
  auto info = ProbeImage(runner_, dir_.path());
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("is a directory"), std::string::npos);
  EXPECT_TRUE(runner_.calls().empty());
}

TEST_F(QemuImgTest, FifoIsInvalidArgument) {
  const std::string path = dir_ / "pipe.img";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("neither a regular file nor a block device"),
            std::string::npos);
  EXPECT_TRUE(runner_.calls().empty());
}

TEST_F(QemuImgTest, UnreadableFileIsAnError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every file";
  const std::string path = MakeFile("secret.qcow2", kMiB);
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("cannot open '" + path + "' for reading"),
            std::string::npos)
      << info.status().message();
  EXPECT_TRUE(runner_.calls().empty());
}

TEST_F(QemuImgTest, PathThroughAFileIsNotFound) {
  const std::string file = MakeFile("plain", 512);
  auto info = ProbeImage(runner_, file + "/disk.qcow2");
  EXPECT_EQ(info.status().code(), StatusCode::kNotFound);
}

TEST_F(QemuImgTest, UnknownForcedFormatIsInvalidArgument) {
  const std::string path = MakeFile("disk.img", kMiB);
  auto info = ProbeImage(runner_, path, "floppy9000");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("unknown image format 'floppy9000'"), std::string::npos);
  EXPECT_TRUE(runner_.calls().empty());
}

TEST_F(QemuImgTest, EncryptedImageIsUnsupported) {
  const std::string path = MakeFile("enc.qcow2", 4 * kMiB);
  runner_.Expect(InfoArgv(path), Recorded("info_encrypted"));
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(info.status().message().find("encrypted"), std::string::npos);
}

TEST_F(QemuImgTest, UnsupportedProbedFormat) {
  const std::string path = MakeFile("disk.img", kMiB);
  runner_.Expect(InfoArgv(path), 0, R"({"virtual-size": 1048576, "format": "vvfat"})");
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(info.status().message().find("vvfat"), std::string::npos);
}

TEST_F(QemuImgTest, QcowNamedFileThatProbesAsRawHasACorruptHeader) {
  const std::string path = MakeFile("badmagic.qcow2", 3473408);
  runner_.Expect(InfoArgv(path), Recorded("info_badmagic"));
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("no valid qcow2 header"), std::string::npos)
      << info.status().message();
  EXPECT_NE(info.status().message().find("corrupt"), std::string::npos);
}

TEST_F(QemuImgTest, ForcedQcow2OnCorruptHeaderQuotesQemuImg) {
  const std::string path = MakeFile("badmagic.qcow2", 3473408);
  runner_.Expect({"qemu-img", "info", "--output=json", "-f", "qcow2", path},
                 Recorded("info_badmagic_forced"));
  auto info = ProbeImage(runner_, path, "qcow2");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(info.status().message(),
            "cannot read image '" + path + "': Image is not in qcow2 format");
}

TEST_F(QemuImgTest, SmallOddFileIsNotADiskUnlessForcedRaw) {
  const std::string path = MakeFile("notes.txt", 6);
  runner_.Expect(InfoArgv(path), 0, R"({"virtual-size": 512, "format": "raw"})");
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("is not a disk image"), std::string::npos);
  runner_.Expect({"qemu-img", "info", "--output=json", "-f", "raw", path}, 0,
                 R"({"virtual-size": 512, "format": "raw"})");
  EXPECT_TRUE(ProbeImage(runner_, path, "raw").ok());
}

TEST_F(QemuImgTest, EmptyImageIsInvalid) {
  const std::string path = MakeFile("empty.img", 0);
  runner_.Expect(InfoArgv(path), 0, R"({"virtual-size": 0, "format": "raw"})");
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("empty"), std::string::npos);
}

TEST_F(QemuImgTest, TruncatedVpcFailsToOpen) {
  const std::string path = MakeFile("trunc.vpc", 2000000);
  runner_.Expect(InfoArgv(path), Recorded("info_trunc_vpc"));
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(info.status().message(),
            "cannot read image '" + path +
                "': block-vpc: free_data_block_offset points after the end of file. The image "
                "has been truncated.");
}

TEST_F(QemuImgTest, BadJsonIsExternal) {
  const std::string path = MakeFile("disk.qcow2", kMiB);
  runner_.Expect(InfoArgv(path), 0, "{ not json");
  auto info = ProbeImage(runner_, path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kExternal);
  runner_.Expect(InfoArgv(path), 0, R"({"format": "qcow2"})");
  EXPECT_EQ(ProbeImage(runner_, path).status().code(), StatusCode::kExternal);
}

TEST_F(QemuImgTest, CheckPassesASoundImage) {
  ImageInfo info;
  info.path = MakeFile("disk.qcow2", kMiB);
  info.format = "qcow2";
  runner_.Expect(CheckArgv("qcow2", info.path), Recorded("check_qcow2"));
  EXPECT_TRUE(CheckImage(runner_, info).ok());
}

TEST_F(QemuImgTest, CheckIsSkippedForFormatsWithoutOne) {
  ImageInfo info;
  info.path = MakeFile("disk.raw", kMiB);
  for (const char* f : {"raw", "vpc"}) {
    info.format = f;
    EXPECT_TRUE(CheckImage(runner_, info).ok());
  }
  EXPECT_TRUE(runner_.calls().empty());
}

TEST_F(QemuImgTest, CheckFindsTruncatedQcow2) {
  ImageInfo info;
  info.path = MakeFile("trunc.qcow2", 200000);
  info.format = "qcow2";
  runner_.Expect(CheckArgv("qcow2", info.path), Recorded("check_trunc_qcow2"));
  Status s = CheckImage(runner_, info);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("corrupt qcow2 image"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("exceeding the end of the file"), std::string::npos);
}

TEST_F(QemuImgTest, CheckFindsTruncatedVmdk) {
  ImageInfo info;
  info.path = MakeFile("trunc.vmdk", 2000000);
  info.format = "vmdk";
  runner_.Expect(CheckArgv("vmdk", info.path), Recorded("check_trunc_vmdk"));
  Status s = CheckImage(runner_, info);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("points after EOF"), std::string::npos) << s.message();
}

TEST_F(QemuImgTest, CheckThatCannotOpenTheBackingFileSaysSo) {
  ImageInfo info;
  info.path = MakeFile("overlay.qcow2", kMiB);
  info.format = "qcow2";
  runner_.Expect(CheckArgv("qcow2", info.path), 1, "",
                 "qemu-img: Could not open '" + info.path +
                     "': Could not open backing file: Could not open '/gone.qcow2': No such file "
                     "or directory\n");
  Status s = CheckImage(runner_, info);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "cannot read image '" + info.path +
                             "': Could not open backing file: Could not open '/gone.qcow2': No "
                             "such file or directory");
}

TEST_F(QemuImgTest, CheckWithLeaksOnlyWarns) {
  ImageInfo info;
  info.path = MakeFile("leaky.qcow2", kMiB);
  info.format = "qcow2";
  runner_.Expect(CheckArgv("qcow2", info.path), 3, "{}", "Leaked cluster 5 refcount=1 reference=0");
  EXPECT_TRUE(CheckImage(runner_, info).ok());
}

TEST_F(QemuImgTest, MapFindsTruncatedVdi) {
  const std::string path = MakeFile("trunc.vdi", 2000000);
  runner_.Expect(InfoArgv(path), Recorded("info_vdi"));
  runner_.Expect(MapArgv("vdi", path), Recorded("map_trunc_vdi"));
  auto info = ProbeImage(runner_, path);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto extents = MapImage(runner_, *info);
  ASSERT_FALSE(extents.ok());
  EXPECT_EQ(extents.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(extents.status().message().find("is truncated"), std::string::npos)
      << extents.status().message();
}

TEST_F(QemuImgTest, MapWithGapOrShortCoverageIsExternal) {
  ImageInfo info;
  info.path = MakeFile("disk.qcow2", kMiB);
  info.format = "qcow2";
  info.virtual_size = 3 * 65536;
  runner_.Expect(MapArgv("qcow2", info.path), 0,
                 R"([{"start": 0, "length": 65536, "depth": 0, "zero": false, "data": true},
                     {"start": 131072, "length": 65536, "depth": 0, "zero": true, "data": false}])");
  EXPECT_EQ(MapImage(runner_, info).status().code(), StatusCode::kExternal);
  runner_.Expect(MapArgv("qcow2", info.path), 0,
                 R"([{"start": 0, "length": 65536, "depth": 0, "zero": false, "data": true}])");
  EXPECT_EQ(MapImage(runner_, info).status().code(), StatusCode::kExternal);
  runner_.Expect(MapArgv("qcow2", info.path), 0, R"({"start": 0})");
  EXPECT_EQ(MapImage(runner_, info).status().code(), StatusCode::kExternal);
}

TEST_F(QemuImgTest, MapFailureQuotesQemuImg) {
  ImageInfo info;
  info.path = MakeFile("overlay.qcow2", kMiB);
  info.format = "qcow2";
  info.virtual_size = kMiB;
  runner_.Expect(MapArgv("qcow2", info.path), 1, "",
                 "qemu-img: Could not open '" + info.path +
                     "': Could not open backing file: Could not open '/gone.qcow2': No such file "
                     "or directory\n");
  Status s = MapImage(runner_, info).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "cannot read image '" + info.path +
                             "': Could not open backing file: Could not open '/gone.qcow2': No "
                             "such file or directory");
}

// ---- Images opened on an explicit backing chain ----

TEST_F(QemuImgTest, VmdkCidsAreRead) {
  auto base = ParseImageInfoJson(Recorded("info_vmdk_base").stdout_text, "/b.vmdk");
  auto top = ParseImageInfoJson(Recorded("info_vmdk_top").stdout_text, "/t.vmdk");
  ASSERT_TRUE(base.ok() && top.ok()) << base.status().ToString() << top.status().ToString();
  EXPECT_EQ(base->vmdk_cid, 1776625147u);
  EXPECT_EQ(base->vmdk_parent_cid, kVmdkNoParentCid);
  EXPECT_EQ(top->vmdk_cid, 4152045680u);
  EXPECT_EQ(top->vmdk_parent_cid, 1776625147u);
  EXPECT_EQ(top->backing_file, "chain-base.vmdk");  // the descriptor's hint, as qemu-img says
  EXPECT_TRUE(top->backing_chain.empty());
  auto qcow2 = ParseImageInfoJson(Recorded("info_qcow2").stdout_text, "/q.qcow2");
  ASSERT_TRUE(qcow2.ok());
  EXPECT_FALSE(qcow2->vmdk_cid.has_value());
  EXPECT_FALSE(qcow2->vmdk_parent_cid.has_value());
}

ImageInfo Vmdk(const std::string& path, uint32_t cid, uint32_t parent_cid) {
  ImageInfo info;
  info.path = path;
  info.format = "vmdk";
  info.vmdk_cid = cid;
  info.vmdk_parent_cid = parent_cid;
  return info;
}

TEST(VmdkChainTest, LinkedChainPasses) {
  EXPECT_TRUE(CheckVmdkChain({}).ok());
  EXPECT_TRUE(CheckVmdkChain({Vmdk("/a", 0x11, kVmdkNoParentCid)}).ok());
  EXPECT_TRUE(CheckVmdkChain({Vmdk("/a", 0x11, kVmdkNoParentCid), Vmdk("/b", 0x22, 0x11),
                              Vmdk("/c", 0x33, 0x22)})
                  .ok());
}

TEST(VmdkChainTest, MismatchNamesBothFilesAndCids) {
  const Status s =
      CheckVmdkChain({Vmdk("/vms/base.vmdk", 0x11, kVmdkNoParentCid),
                      Vmdk("/vms/snap1.vmdk", 0x22, 0x11), Vmdk("/vms/snap2.vmdk", 0x33, 0x2a)});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "VMDK image '/vms/snap2.vmdk' was not made on '/vms/snap1.vmdk': its parentCID is "
            "0000002a, but the CID of '/vms/snap1.vmdk' is 00000022 (the parent was written to "
            "after the child was made, or the chain is not the one the images were made in)");
}

TEST(VmdkChainTest, BaseThatHasAParentIsRefused) {
  const Status s =
      CheckVmdkChain({Vmdk("/vms/snap1.vmdk", 0x22, 0x11), Vmdk("/vms/snap2.vmdk", 0x33, 0x22)});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "VMDK image '/vms/snap1.vmdk' is the base of the chain, but it is a differencing "
            "image itself (its parentCID is 00000011): the image it was made on is missing from "
            "the chain");
}

TEST(VmdkChainTest, MissingCidIsExternal) {
  ImageInfo top = Vmdk("/vms/top.vmdk", 0x22, 0x11);
  top.vmdk_cid.reset();
  const Status s = CheckVmdkChain({Vmdk("/vms/base.vmdk", 0x11, kVmdkNoParentCid), top});
  EXPECT_EQ(s.code(), StatusCode::kExternal);
  EXPECT_NE(s.message().find("'/vms/top.vmdk'"), std::string::npos) << s.message();
}

TEST(QemuImageOptsTest, PlainImageIsNamedByFormatAndPath) {
  ImageInfo info;
  info.path = "/vms/a,b.qcow2";
  info.format = "qcow2";
  const std::vector<std::string> plain = {"-f", "qcow2", "/vms/a,b.qcow2"};
  EXPECT_EQ(QemuImageArgs(info, QemuTool::kQemuImg), plain);
  EXPECT_EQ(QemuImageArgs(info, QemuTool::kQemuNbd), plain);
  // qemu-img has --force-share; qemu-nbd turns locking off instead.
  info.force_share = true;
  EXPECT_EQ(QemuImageArgs(info, QemuTool::kQemuImg), plain);
  const std::vector<std::string> unlocked = {
      "--image-opts",
      "driver=qcow2,file.driver=file,file.filename=/vms/a,,b.qcow2,file.locking=off"};
  EXPECT_EQ(QemuImageArgs(info, QemuTool::kQemuNbd), unlocked);
  info.block_device = true;
  info.path = "/dev/vg/lv";
  EXPECT_EQ(QemuImageOpts(info),
            "driver=qcow2,file.driver=host_device,file.filename=/dev/vg/lv,file.locking=off");
}

TEST(QemuImageOptsTest, BackingChainNests) {
  ImageInfo info;
  info.path = "/vms/snap,2.vmdk";
  info.format = "vmdk";
  info.backing_chain = {{"/vms/snap1.vmdk", "vmdk"}, {"/vms/base,,x.vmdk", "vmdk"}};
  const std::string opts =
      "driver=vmdk,file.driver=file,file.filename=/vms/snap,,2.vmdk,"
      "backing.driver=vmdk,backing.file.driver=file,backing.file.filename=/vms/snap1.vmdk,"
      "backing.backing.driver=vmdk,backing.backing.file.driver=file,"
      "backing.backing.file.filename=/vms/base,,,,x.vmdk";
  EXPECT_EQ(QemuImageOpts(info), opts);
  const std::vector<std::string> args = {"--image-opts", opts};
  EXPECT_EQ(QemuImageArgs(info, QemuTool::kQemuImg), args);
  EXPECT_EQ(QemuImageArgs(info, QemuTool::kQemuNbd), args);
  info.force_share = true;
  EXPECT_EQ(QemuImageOpts(info),
            "driver=vmdk,file.driver=file,file.filename=/vms/snap,,2.vmdk,file.locking=off,"
            "backing.driver=vmdk,backing.file.driver=file,backing.file.filename=/vms/snap1.vmdk,"
            "backing.file.locking=off,"
            "backing.backing.driver=vmdk,backing.backing.file.driver=file,"
            "backing.backing.file.filename=/vms/base,,,,x.vmdk,backing.backing.file.locking=off");
}

TEST_F(QemuImgTest, CheckAndMapOpenTheImageOnItsBackingChain) {
  ImageInfo info;
  info.path = MakeFile("top.vmdk", kMiB);
  info.format = "vmdk";
  info.virtual_size = 8 * kMiB;
  info.file_size = kMiB;
  info.vmdk_create_type = "monolithicSparse";
  info.backing_chain = {{dir_ / "base.vmdk", "vmdk"}};
  const std::string opts = QemuImageOpts(info);
  runner_.Expect({"qemu-img", "check", "--output=json", "--image-opts", opts}, 0, "{}");
  runner_.Expect({"qemu-img", "map", "--output=json", "--image-opts", opts},
                 Recorded("map_vmdk_chain"));
  EXPECT_TRUE(CheckImage(runner_, info).ok());
  auto extents = MapImage(runner_, info);
  ASSERT_TRUE(extents.ok()) << extents.status().ToString();
  // Data from either layer; the base's file offsets (past the top's end) are not checked
  // against the top's size.
  const std::vector<Extent> expected = {{0, kMiB, false},
                                        {kMiB, 3 * kMiB, true},
                                        {4 * kMiB, 2 * kMiB, false},
                                        {6 * kMiB, 65536, true},
                                        {6 * kMiB + 65536, 2 * kMiB - 65536, false}};
  EXPECT_EQ(*extents, expected);
  info.force_share = true;
  runner_.Expect(
      {"qemu-img", "map", "--output=json", "--force-share", "--image-opts", QemuImageOpts(info)},
      Recorded("map_vmdk_chain"));
  EXPECT_TRUE(MapImage(runner_, info).ok());
}

}  // namespace
}  // namespace vmvault::ingest
