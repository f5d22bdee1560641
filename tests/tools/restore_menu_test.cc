// The menus of `vmvault restore --interactive` answered from a string (the pseudo-
// terminal test in tests/integration/restore_test.cc drives the real program), and
// restore's file names for disks whose names are hostile.
#include "tools/restore_menu.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <sstream>

#include "tests/fs/fs_test_util.h"
#include "tools/app.h"

namespace vmvault::tools {
namespace {

using fs::testing::CommitDisks;
using fs::testing::DiskSpec;
using fs::testing::MakeVm;
using fs::testing::TempDir;
using fs::testing::TestConfig;
using fs::testing::TestTime;

DiskSpec Disk(std::string name, uint64_t size = 256 << 10) {
  DiskSpec d;
  d.name = std::move(name);
  d.size = size;
  return d;
}

class RestoreMenuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = store::Repository::OpenInMemory(TestConfig());
    ASSERT_TRUE(CommitDisks(repo_.get(), MakeVm("app"), TestTime(), {Disk("vda")}).ok());
    auto old = CommitDisks(repo_.get(), MakeVm("web"), TestTime(10), {Disk("vda"), Disk("vdb")},
                           std::nullopt, "<domain><name>web</name></domain>", "libvirt-xml");
    ASSERT_TRUE(old.ok());
    older_ = old->id;
    auto b = CommitDisks(repo_.get(), MakeVm("web"), TestTime(20), {Disk("vda")});
    ASSERT_TRUE(b.ok());
    newer_ = b->id;
  }

  // The answer to `input`, typed line by line; the menus shown go to out_.
  std::optional<RestoreOptions> Ask(const std::string& input) {
    std::istringstream in(input);
    out_.str("");
    RestoreOptions defaults;
    defaults.connect = "test:///default";
    auto r = AskRestore(repo_->catalog(), defaults, in, out_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  std::unique_ptr<store::Repository> repo_;
  uint64_t older_ = 0, newer_ = 0;
  std::ostringstream out_;
  TempDir tmp_;
};

TEST_F(RestoreMenuTest, AFileRestoreAsTheCommandLineWouldSayIt) {
  // web, its older backup (newest first), a file, vdb only, qcow2, a path, yes.
  auto o = Ask("2\n2\n1\n3\n2\n" + (tmp_ / "out.qcow2") + "\ny\n");
  ASSERT_TRUE(o.has_value()) << out_.str();
  EXPECT_EQ(o->vm, "web");
  EXPECT_EQ(o->backup, std::to_string(older_));
  EXPECT_EQ(o->disk, "vdb");
  EXPECT_EQ(o->format, "qcow2");
  EXPECT_EQ(o->to, tmp_ / "out.qcow2");
  EXPECT_FALSE(o->force);
  EXPECT_TRUE(o->define.empty());
  const std::string shown = out_.str();
  EXPECT_LT(shown.find(" 1) 2026-11-21T033020Z"), shown.find(" 2) 2026-11-21T033010Z")) << shown;
  EXPECT_NE(shown.find("2 disks, 512.0 KiB  not verified"), std::string::npos) << shown;
  EXPECT_NE(shown.find("Every disk"), std::string::npos) << shown;

  // Every disk into a directory; an existing file is replaced only when asked.
  o = Ask("2\n2\n1\n1\n1\n" + tmp_.path() + "\ny\n");
  ASSERT_TRUE(o.has_value()) << out_.str();
  EXPECT_TRUE(o->disk.empty());
  EXPECT_EQ(o->to, tmp_.path());
  EXPECT_FALSE(o->force);
  const std::string existing = tmp_ / "existing.raw";
  std::ofstream(existing) << "precious";
  EXPECT_FALSE(Ask("1\n1\n1\n1\n" + existing + "\nn\n").has_value());
  o = Ask("1\n1\n1\n1\n" + existing + "\ny\ny\n");
  ASSERT_TRUE(o.has_value()) << out_.str();
  EXPECT_TRUE(o->force);
}

TEST_F(RestoreMenuTest, ADeviceNeedsYesAndADomainIsOfferedForDomainXmlOnly) {
  EXPECT_FALSE(Ask("1\n1\n2\n/dev/loop9\ny\n").has_value());
  auto o = Ask("1\n1\n2\n/dev/loop9\nyes\n");
  ASSERT_TRUE(o.has_value()) << out_.str();
  EXPECT_EQ(o->to, "/dev/loop9");
  EXPECT_EQ(o->format, "raw");
  EXPECT_EQ(o->disk, "vda");
  EXPECT_TRUE(o->force);
  // The newest backup of web holds no domain XML: two actions, and 3 is asked again.
  o = Ask("2\n1\n3\nq\n");
  EXPECT_FALSE(o.has_value());
  EXPECT_NE(out_.str().find("'3' is not one of the numbers 1-2"), std::string::npos) << out_.str();
  o = Ask("2\n2\n3\nweb-copy\n1\n\ny\n");
  ASSERT_TRUE(o.has_value()) << out_.str();
  EXPECT_EQ(o->define, "web-copy");
  EXPECT_EQ(o->format, "qcow2");
  EXPECT_EQ(o->to, kDefaultImageDir);
  EXPECT_EQ(o->connect, "test:///default");
  EXPECT_TRUE(o->disk.empty());
}

TEST_F(RestoreMenuTest, BadAnswersAskAgainAndQuittingAnywhereGivesNothing) {
  auto o = Ask("\nx\n0\n3\n99999999999\n-1\n 2 \n1\n1\n1\n\n" + (tmp_ / "a.raw") + "\nY\n");
  ASSERT_TRUE(o.has_value()) << out_.str();
  EXPECT_EQ(o->vm, "web");
  size_t asked = 0;
  for (size_t at = 0; (at = out_.str().find("is not one of the numbers", at)) != std::string::npos;
       ++at) {
    ++asked;
  }
  EXPECT_EQ(asked, 6u) << out_.str();
  EXPECT_NE(out_.str().find("Please type an answer"), std::string::npos);
  // q at each question, and the input ending at each.
  const std::vector<std::string> answers = {"1", "1", "1", "1", tmp_ / "b.raw", "y"};
  for (size_t stop = 0; stop < answers.size(); ++stop) {
    std::string input;
    for (size_t i = 0; i < stop; ++i) input += answers[i] + "\n";
    EXPECT_FALSE(Ask(input + "q\n").has_value()) << stop;
    EXPECT_FALSE(Ask(input).has_value()) << stop;
  }
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "b.raw"));
}

TEST_F(RestoreMenuTest, AnEmptyRepositoryIsNotFound) {
  auto empty = store::Repository::OpenInMemory(TestConfig());
  std::istringstream in("1\n");
  std::ostringstream out;
  auto r = AskRestore(empty->catalog(), {}, in, out);
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
}

// Disk names are checked at ingest, but a restore must not trust the catalog: a name
// that would leave the directory becomes a plain file name inside it.
TEST(RestoreNamesTest, HostileDiskNamesStayInsideTheTargetDirectory) {
  TempDir tmp;
  const std::string repo = tmp / "repo";
  ASSERT_TRUE(store::Repository::Init(repo, TestConfig()).ok());
  {
    auto w = store::Repository::Open(repo, store::RepoMode::kWrite);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(CommitDisks(w->get(), MakeVm("vm"), TestTime(),
                            {Disk("../../escape"), Disk("a/b"), Disk(".."), Disk("/etc/x")})
                    .ok());
  }
  const std::string out = tmp / "out";
  GlobalOptions global;
  std::function<Status()> run;
  auto app = MakeApp(global, run);
  const std::vector<const char*> argv = {"vmvault",    "restore", "-q",   "--repo",
                                         repo.c_str(), "vm",      "--to", out.c_str()};
  ASSERT_NO_THROW(app->parse(static_cast<int>(argv.size()), argv.data()));
  ASSERT_TRUE(run);
  const Status s = run();
  ASSERT_TRUE(s.ok()) << s.ToString();
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp.path())) {
    const std::string rel = std::filesystem::relative(e.path(), tmp.path()).string();
    if (rel == "repo" || rel.starts_with("repo/")) continue;
    if (rel == "out") continue;
    EXPECT_EQ(e.path().parent_path(), out) << rel;
    EXPECT_TRUE(e.is_regular_file()) << rel;
    const std::string name = e.path().filename().string();
    EXPECT_FALSE(name.starts_with(".")) << rel;
    ++files;
  }
  EXPECT_EQ(files, 4u);
  EXPECT_FALSE(std::filesystem::exists("/etc/x.raw"));
}

}  // namespace
}  // namespace vmvault::tools
