// Integration tests of the process and NBD plumbing under ingest: RealCommandRunner,
// NbdServer (a real qemu-nbd, stopped by PID) and NbdImage (libnbd).
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "ingest/command_runner.h"
#include "ingest/file_ingest.h"
#include "ingest/nbd_image.h"
#include "ingest/nbd_server.h"
#include <chrono>

#include "ingest/subprocess.h"
#include "tests/ingest/test_util.h"

namespace vmvault::ingest {
namespace {

using testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;

void MustRun(const std::vector<std::string>& argv) {
  auto out = RunProcess(argv);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->exit_code, 0) << FormatCommand(argv) << ": " << out->stderr_text;
}

TEST(ProcessIntegrationTest, MissingProgramIsNotFound) {
  auto r = RunProcess({"vmvault-no-such-program"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("not found on PATH"), std::string::npos);
  auto q = FindProgram("qemu-nonexistent-tool");
  EXPECT_NE(q.status().message().find("qemu-utils"), std::string::npos);
}

TEST(ProcessIntegrationTest, AHangingProgramIsStoppedAtItsDeadline) {
  const auto start = std::chrono::steady_clock::now();
  auto r = RunProcess({"sleep", "60"}, std::chrono::milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kExternal);
  EXPECT_NE(r.status().message().find("did not finish within 0.3 s"), std::string::npos)
      << r.status().ToString();
  // Stopped at the deadline, not after the program's minute (a loose bound: no timing
  // assertion, only that it did not run to completion).
  EXPECT_LT(took, std::chrono::seconds(30));
  // A quick program is unaffected by a deadline.
  auto ok = RunProcess({"true"}, std::chrono::milliseconds(10000));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->exit_code, 0);
}

TEST(ProcessIntegrationTest, RealRunnerCapturesOutputAndExitCode) {
  RealCommandRunner runner;
  auto r = runner.Run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->stderr_text, "err\n");
  auto k = runner.Run({"sh", "-c", "kill -9 $$"});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->exit_code, 128 + 9);
}

TEST(ProcessIntegrationTest, NbdServerServesAndStopsByPid) {
  TempDir tmp;
  const std::string path = tmp / "nbd.qcow2";
  MustRun({"qemu-img", "create", "-q", "-f", "qcow2", path, "4M"});
  MustRun({"qemu-io", "-f", "qcow2", "-c", "write -P 0x9c 1M 64k", path});
  auto server = NbdServer::Start(path, "qcow2", 2);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const pid_t pid = (*server)->pid();
  const std::string dir = (*server)->dir();
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, 0), 0);
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  {
    auto a = NbdImage::ConnectUnix((*server)->socket_path());
    auto b = NbdImage::ConnectUnix((*server)->socket_path());
    ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
    EXPECT_EQ((*a)->size(), 4 * kMiB);
    std::string buf(128 << 10, '\0');
    ASSERT_TRUE(
        (*a)->ReadAt(kMiB - 65536, {reinterpret_cast<uint8_t*>(buf.data()), buf.size()}).ok());
    EXPECT_EQ(buf, std::string(65536, '\0') + std::string(65536, '\x9c'));
    EXPECT_FALSE((*b)->ReadAt(4 * kMiB - 1, {reinterpret_cast<uint8_t*>(buf.data()), 2}).ok());
  }
  server->reset();
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(ProcessIntegrationTest, NbdServerReportsQemuNbdErrors) {
  TempDir dir;
  std::ofstream(dir / "junk.qcow2") << "junk";
  auto server = NbdServer::Start(dir / "junk.qcow2", "qcow2", 1);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kExternal);
  EXPECT_NE(server.status().message().find("qemu-nbd could not serve"), std::string::npos);
  EXPECT_NE(server.status().message().find("qcow2"), std::string::npos)
      << server.status().message();
}

// A VMDK differencing image served on the chain it is given, not on the parent its
// descriptor names (here a file that is gone), from a folder whose name has a comma.
TEST(ProcessIntegrationTest, NbdServerServesAVmdkOnAnExplicitBackingChain) {
  TempDir tmp;
  const std::string dir = tmp / "vms,1";
  std::filesystem::create_directories(dir);
  const std::string hinted = dir + "/base.vmdk", base = dir + "/moved base.vmdk";
  const std::string top = dir + "/snap.vmdk";
  MustRun({"qemu-img", "create", "-q", "-f", "vmdk", hinted, "4M"});
  MustRun({"qemu-io", "-f", "vmdk", "-c", "write -P 0x11 0 2M", hinted});
  MustRun({"qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", top});
  MustRun(
      {"qemu-io", "-f", "vmdk", "-c", "write -P 0x22 1M 64k", "-c", "write -P 0x33 3M 64k", top});
  std::filesystem::rename(hinted, base);

  RealCommandRunner runner;
  auto probed = ProbeChain(runner, {base, top}, "vmdk");
  ASSERT_TRUE(probed.ok()) << probed.status().ToString();
  EXPECT_EQ(probed->info.virtual_size, 4 * kMiB);
  EXPECT_EQ(probed->allocated, 2 * kMiB + 65536);
  NbdServer::Options options;
  options.connections = 1;
  auto server = NbdServer::Start(probed->info, options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto image = NbdImage::ConnectUnix((*server)->socket_path());
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  std::string got(4 * kMiB, '\0');
  ASSERT_TRUE((*image)->ReadAt(0, {reinterpret_cast<uint8_t*>(got.data()), got.size()}).ok());
  std::string want(4 * kMiB, '\0');
  want.replace(0, 2 * kMiB, 2 * kMiB, '\x11');
  want.replace(kMiB, 65536, 65536, '\x22');
  want.replace(3 * kMiB, 65536, 65536, '\x33');
  EXPECT_TRUE(got == want);
}

}  // namespace
}  // namespace vmvault::ingest
