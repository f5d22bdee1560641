// Integration tests with the real qemu-img, qemu-io and qemu-nbd, and a real on-disk
// repository: images of every format are built with qemu-img/qemu-io, ingested over
// NBD, rebuilt from the repository and compared byte for byte with
// `qemu-img convert -O raw` of the source. Bad images must fail clearly and store
// nothing, and no qemu-nbd may outlive an ingest.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "base/file_util.h"
#include "ingest/command_runner.h"
#include "ingest/file_ingest.h"
#include "ingest/nbd_image.h"
#include "ingest/nbd_server.h"
#include "ingest/subprocess.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

using testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;

// The PIDs of our own child processes named qemu-nbd (from /proc).
std::vector<pid_t> ChildQemuNbdPids() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    auto stat = ReadFile(std::string("/proc/") + e->d_name + "/stat");
    if (!stat.ok()) continue;
    // "pid (comm) state ppid ..."
    const size_t open = stat->find('('), close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    const std::string comm = stat->substr(open + 1, close - open - 1);
    const pid_t ppid = static_cast<pid_t>(std::atoi(stat->c_str() + close + 4));
    if (comm == "qemu-nbd" && ppid == ::getpid()) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

void MustRun(const std::vector<std::string>& argv) {
  auto out = RunProcess(argv);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->exit_code, 0) << FormatCommand(argv) << ": " << out->stderr_text;
}

class IngestIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = testing::MakeRepository(dir_ / "repo", kMiB);
    ASSERT_NE(repo_, nullptr);
  }
  void TearDown() override { EXPECT_TRUE(ChildQemuNbdPids().empty()); }

 public:  // for the bad-input makers below
  // A `size` image of `format` at dir/name with the qemu-io commands applied.
  std::string MakeImage(const std::string& name, const std::string& format, uint64_t size,
                        const std::vector<std::string>& io) {
    const std::string path = dir_ / name;
    MustRun({"qemu-img", "create", "-q", "-f", format, path, std::to_string(size)});
    for (const std::string& cmd : io) MustRun({"qemu-io", "-f", format, "-c", cmd, path});
    return path;
  }

  // What qemu-img convert -O raw makes of an image.
  std::string ConvertToRaw(const std::string& path, const std::string& format) {
    const std::string raw = dir_ / "converted.raw";
    MustRun({"qemu-img", "convert", "-f", format, "-O", "raw", path, raw});
    auto bytes = ReadFile(raw);
    EXPECT_TRUE(bytes.ok());
    ::unlink(raw.c_str());
    return bytes.ok() ? *bytes : std::string();
  }

  Result<store::BackupRecord> Ingest(const std::vector<std::string>& files,
                                     std::optional<std::string> vm = "testvm") {
    FileIngestOptions opts;
    opts.files = files;
    opts.vm = std::move(vm);
    opts.threads = 3;
    return IngestImageFiles(*repo_, opts, runner_, SystemClock::Default());
  }

  size_t BackupCount(const std::string& vm) {
    auto list = repo_->catalog().ListBackups(vm);
    return list.ok() ? list->size() : 0;
  }

  TempDir dir_;
  RealCommandRunner runner_;
  std::unique_ptr<store::Repository> repo_;
};

class FormatRoundTripTest : public IngestIntegrationTest,
                            public ::testing::WithParamInterface<std::string> {};

TEST_P(FormatRoundTripTest, RebuiltDiskEqualsQemuImgConvert) {
  const std::string format = GetParam();
  const std::string path =
      MakeImage("disk." + format, format, 20 * kMiB,
                {"write -P 0xab 1M 3M", "write -P 0x00 6M 1M", "write -P 0xcd 9M 100k",
                 "write -P 0x11 13631488 4096", "write -P 0x5a 20447232 512"});
  auto backup = Ingest({path});
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  ASSERT_EQ(backup->disks.size(), 1u);
  const store::DiskRecord& d = backup->disks[0];
  EXPECT_EQ(d.source_format, format);
  EXPECT_EQ(d.source_path, path);
  EXPECT_EQ(d.name, "disk");
  EXPECT_LE(d.bytes_read, d.allocated_bytes);
  // 1M..4M are three chunks of 0xab (one stored copy), 9M, 13M and the tail are data.
  EXPECT_EQ(d.data_chunks, 6u);
  EXPECT_EQ(d.new_chunks, 4u);
  const std::string expected = ConvertToRaw(path, format);
  EXPECT_EQ(d.virtual_size, expected.size());
  auto stored = repo_->catalog().GetBackup(backup->id);
  ASSERT_TRUE(stored.ok());
  auto rebuilt = testing::ReadBackupDisk(*repo_, *stored, 0);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  EXPECT_TRUE(*rebuilt == expected) << "rebuilt disk differs from qemu-img convert";
}

INSTANTIATE_TEST_SUITE_P(Formats, FormatRoundTripTest,
                         ::testing::Values("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc"));

TEST_F(IngestIntegrationTest, TwoFilesMakeOneBackupWithTwoDisks) {
  const std::string a = MakeImage("sys.qcow2", "qcow2", 8 * kMiB, {"write -P 0x01 0 2M"});
  const std::string b = MakeImage("data.vmdk", "vmdk", 12 * kMiB, {"write -P 0x02 5M 1M"});
  auto backup = Ingest({a, b}, std::nullopt);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_EQ(backup->vm, "sys");
  ASSERT_EQ(backup->disks.size(), 2u);
  EXPECT_EQ(backup->disks[0].name, "sys");
  EXPECT_EQ(backup->disks[1].name, "data");
  auto stored = repo_->catalog().GetBackup(backup->id);
  ASSERT_TRUE(stored.ok());
  auto r0 = testing::ReadBackupDisk(*repo_, *stored, 0);
  auto r1 = testing::ReadBackupDisk(*repo_, *stored, 1);
  ASSERT_TRUE(r0.ok() && r1.ok());
  EXPECT_TRUE(*r0 == ConvertToRaw(a, "qcow2"));
  EXPECT_TRUE(*r1 == ConvertToRaw(b, "vmdk"));
  auto vm = repo_->catalog().GetVm("sys");
  ASSERT_TRUE(vm.ok());
  EXPECT_EQ(vm->origin, a);
}

TEST_F(IngestIntegrationTest, SecondIngestStoresOnlyTheChangedChunks) {
  // 16 MiB of random data, so every chunk is distinct.
  const std::string raw = dir_ / "random.raw";
  {
    std::ofstream f(raw, std::ios::binary);
    f << testing::RandomBytes(16 * kMiB, 42);
  }
  const std::string path = dir_ / "vm.qcow2";
  MustRun({"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path});
  auto first = Ingest({path});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->disks[0].new_chunks, 16u);
  MustRun(
      {"qemu-io", "-f", "qcow2", "-c", "write -P 0x77 5M 4k", "-c", "write -P 0x78 11M 1k", path});
  auto second = Ingest({path});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->parent_id, first->id);
  EXPECT_EQ(second->disks[0].new_chunks, 2u);
  EXPECT_LT(second->disks[0].new_stored_bytes, 3 * kMiB);
  auto rebuilt = testing::ReadBackupDisk(*repo_, *second, 0);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_TRUE(*rebuilt == ConvertToRaw(path, "qcow2"));
}

TEST_F(IngestIntegrationTest, OverlayIsReadThroughItsBackingFile) {
  const std::string base = MakeImage("base.qcow2", "qcow2", 8 * kMiB, {"write -P 0x21 0 3M"});
  const std::string overlay = dir_ / "overlay.qcow2";
  MustRun({"qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay});
  MustRun({"qemu-io", "-f", "qcow2", "-c", "write -P 0x22 1M 64k", "-c", "write -P 0x23 7M 1M",
           overlay});
  auto backup = Ingest({overlay});
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_EQ(backup->disks[0].allocated_bytes, 4 * kMiB);
  auto rebuilt = testing::ReadBackupDisk(*repo_, *backup, 0);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_TRUE(*rebuilt == ConvertToRaw(overlay, "qcow2"));

  // Without its backing file the overlay cannot be read: a clear error, no backup.
  std::filesystem::remove(base);
  auto r = Ingest({overlay});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("backing file"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(BackupCount("testvm"), 1u);
}

// A bad input: how to make it, and what the error must say.
struct BadCase {
  std::string name;
  std::function<std::string(IngestIntegrationTest&, const TempDir&)> make;
  StatusCode code;
  std::string message_part;
};

class BadInputTest : public IngestIntegrationTest, public ::testing::WithParamInterface<BadCase> {};

// Copies `path` cut to `size` bytes.
std::string Truncated(const std::string& path, const std::string& to, off_t size) {
  std::filesystem::copy_file(path, to);
  EXPECT_EQ(::truncate(to.c_str(), size), 0);
  return to;
}

void Overwrite(const std::string& path, off_t offset, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), offset), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

TEST_P(BadInputTest, FailsClearlyAndStoresNothing) {
  const BadCase& c = GetParam();
  const std::string good = MakeImage("good.qcow2", "qcow2", 4 * kMiB, {"write -P 0x33 0 1M"});
  const std::string bad = c.make(*this, dir_);
  for (const auto& files : {std::vector<std::string>{bad}, std::vector<std::string>{good, bad}}) {
    auto r = Ingest(files);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << r.status().ToString();
    EXPECT_NE(r.status().message().find(std::filesystem::path(bad).filename().string()),
              std::string::npos)
        << "the error should name the file: " << r.status().ToString();
  }
  EXPECT_EQ(BackupCount("testvm"), 0u);
  EXPECT_EQ(testing::CountChunks(*repo_), 0u);
}

std::string MakeQcow2(IngestIntegrationTest& t, const std::string& name);

INSTANTIATE_TEST_SUITE_P(
    Cases, BadInputTest,
    ::testing::Values(
        BadCase{"missing", [](auto&, const TempDir& d) { return d / "missing.qcow2"; },
                StatusCode::kNotFound, "does not exist"},
        BadCase{"directory",
                [](auto&, const TempDir& d) {
                  std::filesystem::create_directory(d / "adir");
                  return d / "adir";
                },
                StatusCode::kInvalidArgument, "is a directory"},
        BadCase{"truncated_qcow2",
                [](auto& t, const TempDir& d) {
                  return Truncated(MakeQcow2(t, "full.qcow2"), d / "cut.qcow2", 200000);
                },
                StatusCode::kInvalidArgument, "corrupt qcow2 image"},
        BadCase{"truncated_qcow2_mid_data",
                [](auto& t, const TempDir& d) {
                  return Truncated(MakeQcow2(t, "full.qcow2"), d / "cut.qcow2", 2000000);
                },
                StatusCode::kInvalidArgument, "corrupt qcow2 image"},
        BadCase{"overwritten_qcow2_magic",
                [](auto& t, const TempDir&) {
                  const std::string p = MakeQcow2(t, "magic.qcow2");
                  Overwrite(p, 0, "garbagegarbage");
                  return p;
                },
                StatusCode::kInvalidArgument, "no valid qcow2 header"},
        BadCase{"overwritten_qcow2_header_fields",
                [](auto& t, const TempDir&) {
                  const std::string p = MakeQcow2(t, "hdr.qcow2");
                  Overwrite(p, 4, std::string(16, '\xff'));  // version, backing offset
                  return p;
                },
                StatusCode::kInvalidArgument, "cannot read image"},
        BadCase{"text_file",
                [](auto&, const TempDir& d) {
                  std::ofstream(d / "notes.txt") << "not a disk\n";
                  return d / "notes.txt";
                },
                StatusCode::kInvalidArgument, "is not a disk image"},
        BadCase{"encrypted_qcow2",
                [](auto&, const TempDir& d) {
                  // LUKS times its key derivation; on a busy machine a short
                  // iter-time can fail ("Unable to get accurate CPU usage"): retry.
                  const std::vector<std::string> argv = {
                      "qemu-img",
                      "create",
                      "-q",
                      "-f",
                      "qcow2",
                      "--object",
                      "secret,id=sec0,data=abc",
                      "-o",
                      "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=50",
                      d / "enc.qcow2",
                      "4M"};
                  for (int attempt = 0; attempt < 5; ++attempt) {
                    auto out = RunProcess(argv);
                    if (out.ok() && out->exit_code == 0) break;
                  }
                  EXPECT_TRUE(std::filesystem::exists(d / "enc.qcow2"));
                  return d / "enc.qcow2";
                },
                StatusCode::kUnsupported, "encrypted"},
        BadCase{"truncated_vdi",
                [](auto& t, const TempDir& d) {
                  return Truncated(t.MakeImage("full.vdi", "vdi", 8 * kMiB, {"write -P 1 1M 3M"}),
                                   d / "cut.vdi", 2000000);
                },
                StatusCode::kInvalidArgument, "is truncated"},
        BadCase{"truncated_vmdk",
                [](auto& t, const TempDir& d) {
                  return Truncated(t.MakeImage("full.vmdk", "vmdk", 8 * kMiB, {"write -P 1 1M 3M"}),
                                   d / "cut.vmdk", 2000000);
                },
                StatusCode::kInvalidArgument, "points after EOF"},
        BadCase{"truncated_vpc",
                [](auto& t, const TempDir& d) {
                  return Truncated(t.MakeImage("full.vpc", "vpc", 8 * kMiB, {"write -P 1 1M 3M"}),
                                   d / "cut.vpc", 2000000);
                },
                StatusCode::kInvalidArgument, "truncated"},
        BadCase{"truncated_vhdx",
                [](auto& t, const TempDir& d) {
                  return Truncated(t.MakeImage("full.vhdx", "vhdx", 8 * kMiB, {"write -P 1 1M 3M"}),
                                   d / "cut.vhdx", 2000000);
                },
                StatusCode::kInvalidArgument, "cannot read image"}),
    [](const auto& info) { return info.param.name; });

std::string MakeQcow2(IngestIntegrationTest& t, const std::string& name) {
  return t.MakeImage(name, "qcow2", 8 * kMiB, {"write -P 0x44 1M 3M"});
}

}  // namespace
}  // namespace vmvault::ingest
