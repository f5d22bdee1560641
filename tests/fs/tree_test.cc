#include "fs/tree.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "base/time_format.h"
#include "fs/view_reader.h"
#include "tests/fs/tree_test_util.h"

namespace vmvault::fs {
namespace {

using testing::CommitDisks;
using testing::Disk;
using testing::DiskSpec;
using testing::MakeVm;
using testing::Names;
using testing::TestTime;

constexpr uint32_t kCs = 64 << 10;
constexpr int64_t kDay = 86400;

// The files of one disk in a backup directory, partitions aside.
std::vector<std::string> ViewsOf(const std::string& disk) {
  return {disk + ".raw", disk + ".qcow2", disk + ".vhdx", disk + ".vmdk"};
}

// The sorted names of a backup directory holding `disks`, plus `others`.
std::vector<std::string> BackupFiles(const std::vector<std::string>& disks,
                                     std::vector<std::string> others) {
  for (const auto& d : disks) {
    for (auto& f : ViewsOf(d)) others.push_back(f);
  }
  std::sort(others.begin(), others.end());
  return others;
}

// web: monthly, three backups over two months; db: weekly, one backup with a
// libvirt configuration.
class TreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = store::Repository::OpenInMemory(testing::TestConfig(kCs));
    Populate(repo_.get());
    pages_ = std::make_unique<IndexPageCache>(&repo_->catalog(), 1 << 20);
  }

  void Populate(store::Repository* repo) {
    const auto web = MakeVm("web");
    auto b1 = CommitDisks(repo, web, TestTime(-30 * kDay), {Disk("vda", 3 * kCs)});
    ASSERT_TRUE(b1.ok()) << b1.status().ToString();
    auto b2 = CommitDisks(repo, web, TestTime(), {Disk("vda", 3 * kCs), Disk("vdb", kCs)},
                          b1->id);
    ASSERT_TRUE(b2.ok());
    auto b3 = CommitDisks(repo, web, TestTime(3600), {Disk("vda", 3 * kCs), Disk("vdb", kCs)},
                          b2->id);
    ASSERT_TRUE(b3.ok());
    last_web_ = *b3;
    auto db = CommitDisks(repo, MakeVm("db", Period::kWeek), TestTime(60),
                          {Disk("disk0", 2 * kCs + 7)}, std::nullopt, "<domain/>",
                          "libvirt-xml");
    ASSERT_TRUE(db.ok());
    db_ = *db;
  }

  std::shared_ptr<const Tree> Build() {
    auto t = Tree::Build(repo_->catalog(), pages_.get(), 123);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *t;
  }

  std::unique_ptr<store::Repository> repo_;
  std::unique_ptr<IndexPageCache> pages_;
  store::BackupRecord last_web_, db_;
};

TEST_F(TreeTest, ListsVmsPeriodsBackupsAndFiles) {
  auto t = Build();
  EXPECT_EQ(t->root().ino, kRootInode);
  EXPECT_EQ(Names(t->root()), (std::vector<std::string>{"db", "web"}));
  const Node* web = t->FindPath("/web");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(Names(*web), (std::vector<std::string>{"2026-10", "2026-11", "latest"}));
  EXPECT_EQ(web->state_of, "web");  // user.vmvault.state, read when asked
  const Node* nov = t->FindPath("/web/2026-11");
  ASSERT_NE(nov, nullptr);
  EXPECT_EQ(Names(*nov),
            (std::vector<std::string>{"2026-11-21T033000Z", "2026-11-21T043000Z"}));
  const Node* b = t->FindPath("/web/2026-11/2026-11-21T043000Z");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(Names(*b), BackupFiles({"vda", "vdb"}, {"manifest.json"}));
  const Node* vda = t->Child(*b, "vda.raw");
  ASSERT_NE(vda, nullptr);
  EXPECT_EQ(vda->kind, NodeKind::kFile);
  EXPECT_EQ(vda->size(), 3 * kCs);
  EXPECT_FALSE(vda->changes);
  EXPECT_EQ(vda->parent, b->ino);
  // Weekly periods; the configuration file.
  const Node* db = t->FindPath("/db/2026-W47/2026-11-21T033100Z");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(Names(*db), BackupFiles({"disk0"}, {"domain.xml", "manifest.json"}));
  EXPECT_EQ(PeriodOf(TestTime(60), Period::kWeek), "2026-W47");
  EXPECT_EQ(t->FindPath("/nope"), nullptr);
  EXPECT_EQ(t->FindPath("/web/2026-11/nope"), nullptr);
}

TEST_F(TreeTest, LatestLinksToTheNewestBackup) {
  auto t = Build();
  const Node* latest = t->FindPath("/web/latest");
  ASSERT_NE(latest, nullptr);
  EXPECT_EQ(latest->kind, NodeKind::kSymlink);
  EXPECT_EQ(latest->link_target, "2026-11/2026-11-21T043000Z");
  EXPECT_TRUE(latest->changes);
  EXPECT_EQ(latest->size(), latest->link_target.size());
  EXPECT_EQ(t->FindPath("/db/latest")->link_target, "2026-W47/2026-11-21T033100Z");
}

TEST_F(TreeTest, MtimesAreBackupTimes) {
  auto t = Build();
  EXPECT_EQ(t->FindPath("/web")->mtime_us, TestTime(3600));
  EXPECT_EQ(t->FindPath("/web/2026-10")->mtime_us, TestTime(-30 * kDay));
  EXPECT_EQ(t->FindPath("/web/2026-11")->mtime_us, TestTime(3600));
  EXPECT_EQ(t->FindPath("/web/2026-11/2026-11-21T033000Z/vda.raw")->mtime_us, TestTime());
  EXPECT_EQ(t->root().mtime_us, TestTime(3600));
}

TEST_F(TreeTest, ManifestDescribesTheBackup) {
  auto t = Build();
  const Node* m = t->FindPath("/web/2026-11/2026-11-21T043000Z/manifest.json");
  ASSERT_NE(m, nullptr);
  ChunkCache cache(&repo_->chunks(), 1 << 20, kCs);
  ViewReader reader(&cache, nullptr);
  ReadResult r;
  ASSERT_TRUE(reader.Read(*m->view, 0, m->size(), &r).ok());
  const auto j = nlohmann::json::parse(r.ToString());
  EXPECT_EQ(j["vm"], "web");
  EXPECT_EQ(j["backup"], "2026-11-21T043000Z");
  EXPECT_EQ(j["time"], "2026-11-21T04:30:00Z");
  EXPECT_EQ(j["id"], last_web_.id);
  EXPECT_EQ(j["tier"], "hot");
  EXPECT_EQ(j["method"], "offline");
  EXPECT_EQ(j["parent"], "2026-11-21T033000Z");
  EXPECT_EQ(j["host"], "testhost");
  EXPECT_DOUBLE_EQ(j["duration_seconds"].get<double>(), 1.5);
  ASSERT_EQ(j["disks"].size(), 2u);
  const auto& vda = j["disks"][0];
  EXPECT_EQ(vda["name"], "vda");
  EXPECT_EQ(vda["file"], "vda.raw");
  EXPECT_EQ(vda["virtual_size"], 3 * kCs);
  EXPECT_EQ(vda["chunk_size"], kCs);
  EXPECT_EQ(vda["source_format"], "raw");
  EXPECT_EQ(vda["source_path"], "/images/vda.img");
  EXPECT_EQ(vda["data_chunks"], 3);
  EXPECT_EQ(vda["allocated_bytes"], last_web_.disks[0].allocated_bytes);
  EXPECT_EQ(vda["stored_bytes"], last_web_.disks[0].stored_bytes);
  EXPECT_TRUE(vda.contains("new_stored_bytes"));
  EXPECT_TRUE(vda.contains("bytes_read"));
  EXPECT_EQ(j["config_kind"], "");

  const Node* dbm = t->FindPath("/db/2026-W47/2026-11-21T033100Z/manifest.json");
  ReadResult r2;
  ASSERT_TRUE(reader.Read(*dbm->view, 0, dbm->size(), &r2).ok());
  const auto j2 = nlohmann::json::parse(r2.ToString());
  EXPECT_EQ(j2["config_kind"], "libvirt-xml");
  EXPECT_EQ(j2["config_file"], "domain.xml");
  EXPECT_TRUE(j2["parent"].is_null());
  const Node* xml = t->FindPath("/db/2026-W47/2026-11-21T033100Z/domain.xml");
  ReadResult r3;
  ASSERT_TRUE(reader.Read(*xml->view, 0, 100, &r3).ok());
  EXPECT_EQ(r3.ToString(), "<domain/>");
}

TEST_F(TreeTest, InodesAreStableAcrossBuildsAndRepositories) {
  auto a = Build();
  auto b = Build();
  auto other_repo = store::Repository::OpenInMemory(testing::TestConfig(kCs));
  Populate(other_repo.get());
  IndexPageCache other_pages(&other_repo->catalog(), 1 << 20);
  auto c = Tree::Build(other_repo->catalog(), &other_pages, 5);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(a->node_count(), b->node_count());
  ASSERT_EQ(a->node_count(), (*c)->node_count());
  std::function<void(const Node&)> walk = [&](const Node& n) {
    EXPECT_NE(n.ino, 0u);
    EXPECT_TRUE(n.ino != kRootInode || n.path.empty());
    const Node* nb = b->FindPath(n.path);
    const Node* nc = (*c)->FindPath(n.path);
    ASSERT_NE(nb, nullptr);
    ASSERT_NE(nc, nullptr);
    EXPECT_EQ(nb->ino, n.ino) << n.path;
    EXPECT_EQ(nc->ino, n.ino) << n.path;
    EXPECT_EQ(Tree::InodeOfPath(n.path), n.ino);
    for (const auto& [name, ino] : n.children) walk(*a->Find(ino));
  };
  walk(a->root());
}

// A backup made in the same second as one that prune removed meanwhile takes over its
// name. Within a mount (one InodeHistory) it must not take over the gone backup's inode
// numbers too, or the kernel would serve that backup's cached pages as its own; and the
// numbers it gets instead stay the same in later builds.
TEST_F(TreeTest, ABackupTakingOverTheNameOfAGoneOneGetsOtherInodeNumbers) {
  const auto web = MakeVm("web");
  auto first = CommitDisks(repo_.get(), web, TestTime(7200), {Disk("vda", kCs)});
  ASSERT_TRUE(first.ok());
  const std::string dir = "/web/2026-11/2026-11-21T053000Z";
  InodeHistory history;
  auto build = [&](InodeHistory* h) {
    auto t = Tree::Build(repo_->catalog(), pages_.get(), 123, "", h);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *t;
  };
  auto before = build(&history);
  const Node* gone_dir = before->FindPath(dir);
  const Node* gone_raw = before->FindPath(dir + "/vda.raw");
  ASSERT_NE(gone_dir, nullptr);
  ASSERT_NE(gone_raw, nullptr);
  ASSERT_EQ(gone_raw->size(), kCs);

  ASSERT_TRUE(repo_->catalog().DeleteBackups({first->id}).ok());
  auto second = CommitDisks(repo_.get(), web, TestTime(7200), {Disk("vda", 2 * kCs)});
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->name(), first->name());
  auto after = build(&history);
  const Node* taken_dir = after->FindPath(dir);
  const Node* taken_raw = after->FindPath(dir + "/vda.raw");
  ASSERT_NE(taken_dir, nullptr);
  ASSERT_NE(taken_raw, nullptr);
  EXPECT_EQ(taken_raw->size(), 2 * kCs);  // the second backup's
  EXPECT_NE(taken_dir->ino, gone_dir->ino);
  EXPECT_NE(taken_raw->ino, gone_raw->ino);
  EXPECT_EQ(taken_raw->parent, taken_dir->ino);
  auto again = build(&history);
  EXPECT_EQ(again->FindPath(dir)->ino, taken_dir->ino);
  EXPECT_EQ(again->FindPath(dir + "/vda.raw")->ino, taken_raw->ino);
  // Nodes of no backup, and the other backups, keep their path's number.
  EXPECT_EQ(after->FindPath("/web/2026-11")->ino, Tree::InodeOfPath("/web/2026-11"));
  const std::string kept = "/web/2026-11/2026-11-21T043000Z/vda.raw";
  EXPECT_EQ(after->FindPath(kept)->ino, Tree::InodeOfPath(kept));
  // A new mount has no history: the path's own number, and no stale page to fear.
  EXPECT_EQ(build(nullptr)->FindPath(dir)->ino, Tree::InodeOfPath(dir));
}

// manifest.json is the one file of a backup whose bytes change (a verify, or a prune of
// the parent backup, changes what it says). A mount gives it another inode number when
// they do, since the kernel keeps a file's size and pages for its number; while they
// stay the same, so does the number. Its name gets the short entry timeout.
TEST_F(TreeTest, AManifestWhoseTextChangesGetsAnotherInodeNumber) {
  const auto web = MakeVm("web");
  auto b = CommitDisks(repo_.get(), web, TestTime(7200), {Disk("vda", kCs)});
  ASSERT_TRUE(b.ok());
  const std::string dir = "/web/2026-11/" + b->name();
  InodeHistory history;
  auto build = [&] {
    auto t = Tree::Build(repo_->catalog(), pages_.get(), 123, "", &history);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *t;
  };
  auto before = build();
  const Node* manifest = before->FindPath(dir + "/manifest.json");
  ASSERT_NE(manifest, nullptr);
  EXPECT_TRUE(manifest->removable);
  EXPECT_EQ(manifest->ino, Tree::InodeOfPath(dir + "/manifest.json"));
  EXPECT_EQ(build()->FindPath(dir + "/manifest.json")->ino, manifest->ino);

  store::VerifyRecord v;
  v.time_us = TestTime(9000);
  v.chunks = 1;
  ASSERT_TRUE(repo_->catalog().RecordVerification(b->id, v).ok());
  auto after = build();
  const Node* changed = after->FindPath(dir + "/manifest.json");
  ASSERT_NE(changed, nullptr);
  EXPECT_NE(changed->ino, manifest->ino);
  EXPECT_NE(changed->size(), manifest->size());
  EXPECT_EQ(build()->FindPath(dir + "/manifest.json")->ino, changed->ino);
  // The disk's files and the backup directory keep their numbers; they never change.
  EXPECT_EQ(after->FindPath(dir)->ino, before->FindPath(dir)->ino);
  EXPECT_EQ(after->FindPath(dir + "/vda.raw")->ino, before->FindPath(dir + "/vda.raw")->ino);
  EXPECT_FALSE(after->FindPath(dir + "/vda.raw")->removable);
}

TEST_F(TreeTest, UnsafeNamesAreSanitizedAndUnique) {
  auto vm = MakeVm("ok-vm");
  auto b = CommitDisks(repo_.get(), vm, TestTime(7),
                       {Disk("../evil", kCs), Disk("a/b", kCs), Disk("a_b", kCs)});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto t = Build();
  const Node* dir = t->FindPath("/ok-vm/2026-11/2026-11-21T033007Z");
  ASSERT_NE(dir, nullptr);
  for (const auto& [name, ino] : dir->children) {
    EXPECT_EQ(name.find('/'), std::string::npos);
    EXPECT_NE(name.front(), '.');
  }
  // Three disks with distinct names, each with its views, and the manifest.
  std::set<std::string> raws;
  for (const auto& [name, ino] : dir->children) {
    if (name.ends_with(".raw")) raws.insert(name);
  }
  EXPECT_EQ(raws.size(), 3u);
  EXPECT_EQ(dir->children.size(), 3 * ViewsOf("x").size() + 1);
}

TEST_F(TreeTest, PartitionFilesAndTheVmdkDescriptorAreViewsOfTheRawDisk) {
  DiskSpec d = Disk("vda", 40 * kCs + 512);
  d.partitions = {{1, 1 << 20, 10 * kCs, "gpt", "0fc63daf-8483-4772-8e79-3d69d8477de4", "root"},
                  {5, 20 * kCs + 512, 20 * kCs, "mbr", "0x83", ""},
                  {6, 40 * kCs, 2 * kCs, "mbr", "0x83", ""}};  // beyond the end: no file
  auto b = CommitDisks(repo_.get(), MakeVm("parts"), TestTime(9), {d, Disk("vdb", kCs)});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto t = Build();
  const Node* dir = t->FindPath("/parts/2026-11/2026-11-21T033009Z");
  ASSERT_NE(dir, nullptr);
  EXPECT_EQ(Names(*dir), BackupFiles({"vda", "vdb"},
                                     {"manifest.json", "vda.part1.raw", "vda.part5.raw"}));
  ChunkCache cache(&repo_->chunks(), 8 << 20, kCs);
  ViewReader reader(&cache, nullptr);
  auto read_all = [&](const Node* n) {
    ReadResult r;
    EXPECT_TRUE(reader.Read(*n->view, 0, n->size(), &r).ok());
    return r.ToString();
  };
  const Node* p5 = t->Child(*dir, "vda.part5.raw");
  ASSERT_NE(p5, nullptr);
  EXPECT_EQ(p5->size(), 20 * kCs);
  EXPECT_EQ(read_all(p5), testing::ExpectedBytes(d, kCs, 20 * kCs + 512, 20 * kCs));
  EXPECT_EQ(read_all(t->Child(*dir, "vda.part1.raw")),
            testing::ExpectedBytes(d, kCs, 1 << 20, 10 * kCs));

  const std::string vmdk = read_all(t->Child(*dir, "vda.vmdk"));
  EXPECT_NE(vmdk.find("createType=\"monolithicFlat\""), std::string::npos) << vmdk;
  EXPECT_NE(vmdk.find(fmt::format("RW {} FLAT \"vda.raw\" 0\n", (40 * kCs + 512) / 512)),
            std::string::npos)
      << vmdk;
  // The manifest names every file of each disk.
  const auto m = nlohmann::json::parse(read_all(t->Child(*dir, "manifest.json")));
  std::vector<std::string> files = ViewsOf("vda");
  files.push_back("vda.part1.raw");
  files.push_back("vda.part5.raw");
  EXPECT_EQ(m["disks"][0]["files"].get<std::vector<std::string>>(), files);
  EXPECT_EQ(m["disks"][0]["partitions"].size(), 3u);
}

}  // namespace
}  // namespace vmvault::fs

namespace vmvault::fs {
namespace {

TEST(TreeTimesTest, RootTimeIsTheNewestBackupOrTheListingTime) {
  auto repo = store::Repository::OpenInMemory(testing::TestConfig(64 << 10));
  IndexPageCache pages(&repo->catalog(), 1 << 20);
  // Empty: the time it was listed, not 1970.
  auto empty = Tree::Build(repo->catalog(), &pages, 5'000'000);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->root().mtime_us, 5'000'000);
  // With backups: the newest backup's time, whenever it is listed.
  auto b = testing::CommitDisks(repo.get(), testing::MakeVm("vm"), testing::TestTime(), {});
  ASSERT_TRUE(b.ok());
  auto later = Tree::Build(repo->catalog(), &pages, testing::TestTime() + 999'000'000);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ((*later)->root().mtime_us, b->time_us);
}

}  // namespace
}  // namespace vmvault::fs
