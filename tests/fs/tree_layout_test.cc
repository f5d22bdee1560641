// The staging layout (/<tier>/<original path>/, each VM's latest backup) and the view
// filter (TreeOptions::views) of the mount's tree.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "fs/tree.h"
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

store::VmRecord Vm(std::string name, std::string tier, std::string origin) {
  store::VmRecord vm = MakeVm(std::move(name));
  vm.tier = std::move(tier);
  vm.origin = std::move(origin);
  return vm;
}

store::BackupRecord Latest(std::string config_kind, std::string first_source) {
  store::BackupRecord b;
  b.config_kind = std::move(config_kind);
  if (!first_source.empty() || b.config_kind.empty()) {
    b.disks.emplace_back();
    b.disks.back().source_path = std::move(first_source);
  }
  return b;
}

using Path = std::vector<std::string>;

TEST(StagingPathTest, AVirtualBoxMachineShowsAsItsMachineFolder) {
  const auto vm = Vm("HOME_HTTPD", "hot", "/data-intern/vmware/hot/HOME_HTTPD/HOME_HTTPD.vbox");
  EXPECT_EQ(StagingPath(vm, Latest("vbox", "/data-intern/vmware/hot/HOME_HTTPD/disk.vdi")),
            (Path{"data-intern", "vmware", "hot", "HOME_HTTPD"}));
  // A .vbox at the root has no folder: its disk's folder and the name, as for others.
  EXPECT_EQ(StagingPath(Vm("m", "hot", "/m.vbox"), Latest("vbox", "/vms/m.vdi")),
            (Path{"vms", "m"}));
}

TEST(StagingPathTest, OtherVmsShowAsTheirFirstDisksFolderAndTheirName) {
  const auto web = Vm("web", "hot", "qemu:///system domain web");
  EXPECT_EQ(StagingPath(web, Latest("libvirt-xml", "/var/lib/libvirt/images/web-root.qcow2")),
            (Path{"var", "lib", "libvirt", "images", "web"}));
  EXPECT_EQ(StagingPath(Vm("db", "warm", "/dev/vg0/db"), Latest("", "/dev/vg0/db")),
            (Path{"dev", "vg0", "db"}));
  // Normalized: "." and ".." resolved, ".." above the root dropped, slashes collapsed.
  EXPECT_EQ(StagingPath(web, Latest("", "/../a/./b//../c/web.img")), (Path{"a", "c", "web"}));
  EXPECT_EQ(StagingPath(web, Latest("", "/web.img")), (Path{"web"}));
}

TEST(StagingPathTest, WithoutAPathTheNameAlone) {
  const auto vm = Vm("nbd", "cold", "nbd://host/export");
  EXPECT_EQ(StagingPath(vm, Latest("", "nbd://host/export")), (Path{"nbd"}));
  EXPECT_EQ(StagingPath(vm, Latest("libvirt-xml", "")), (Path{"nbd"}));  // no disk
  store::BackupRecord none;
  EXPECT_EQ(StagingPath(vm, none), (Path{"nbd"}));
}

TEST(ViewSetTest, ParsesListsOfViews) {
  auto all = ViewSet::Parse("all");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, ViewSet{});
  EXPECT_EQ(all->ToString(), "raw,qcow2,vhdx,vmdk,part");
  auto two = ViewSet::Parse("qcow2,raw");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->ToString(), "raw,qcow2");
  auto colons = ViewSet::Parse("vhdx:part:");  // the form an fstab option can hold
  ASSERT_TRUE(colons.ok());
  EXPECT_EQ(colons->ToString(), "vhdx,part");
  EXPECT_EQ(ViewSet::Parse("raw,vmdk")->ToString(), "raw,vmdk");
}

TEST(ViewSetTest, RefusesWhatItCannotShow) {
  auto unknown = ViewSet::Parse("raw,vdi");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("'vdi'"), std::string::npos);
  EXPECT_FALSE(ViewSet::Parse("").ok());
  EXPECT_FALSE(ViewSet::Parse(",:").ok());
  auto vmdk = ViewSet::Parse("vmdk,qcow2");
  ASSERT_FALSE(vmdk.ok());
  EXPECT_NE(vmdk.status().message().find("raw"), std::string::npos);
  EXPECT_FALSE(ViewSet::Parse("RAW").ok());
}

TEST(LayoutTest, ParsesItsNames) {
  EXPECT_EQ(*ParseLayout("vm"), Layout::kByVm);
  EXPECT_EQ(*ParseLayout("staging"), Layout::kStaging);
  EXPECT_EQ(LayoutName(Layout::kStaging), "staging");
  EXPECT_EQ(LayoutName(Layout::kByVm), "vm");
  auto bad = ParseLayout("tier");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'tier'"), std::string::npos);
}

// web: hot, image files in /srv/vms, two backups; box: a VirtualBox machine, warm;
// far: cold, a disk without a path.
class StagingTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = store::Repository::OpenInMemory(testing::TestConfig(kCs));
    pages_ = std::make_unique<IndexPageCache>(&repo_->catalog(), 1 << 20);
    web_ = Vm("web", "hot", "/srv/vms/web-root.img");
    auto w1 = CommitDisks(repo_.get(), web_, TestTime(), {Disk("web-root", 2 * kCs, web_.origin)});
    ASSERT_TRUE(w1.ok()) << w1.status().ToString();
    auto w2 = CommitDisks(
        repo_.get(), web_, TestTime(3600),
        {Disk("web-root", 3 * kCs, web_.origin), Disk("web-data", kCs, "/srv/data/web-data.img")},
        w1->id);
    ASSERT_TRUE(w2.ok());
    web_latest_ = *w2;
    box_ = Vm("Box", "warm", "/vbox/hot/Box/Box.vbox");
    auto b =
        CommitDisks(repo_.get(), box_, TestTime(60), {Disk("Box", kCs, "/vbox/hot/Box/Box.vdi")},
                    std::nullopt, "<VirtualBox/>", "vbox");
    ASSERT_TRUE(b.ok());
    far_ = Vm("far", "cold", "nbd://far/export");
    auto f = CommitDisks(repo_.get(), far_, TestTime(120), {Disk("vda", kCs, "nbd://far/export")});
    ASSERT_TRUE(f.ok());
  }

  std::shared_ptr<const Tree> Build(TreeOptions options, InodeHistory* history = nullptr) {
    auto t = Tree::Build(repo_->catalog(), pages_.get(), 123, "", history, options);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *t;
  }
  std::shared_ptr<const Tree> Staging(InodeHistory* history = nullptr) {
    return Build({Layout::kStaging, {}}, history);
  }

  std::string ReadAll(const Node& n) {
    ChunkCache cache(&repo_->chunks(), 1 << 20, kCs);
    ViewReader reader(&cache, nullptr);
    ReadResult r;
    EXPECT_TRUE(reader.Read(*n.view, 0, n.size(), &r).ok());
    return r.ToString();
  }

  std::unique_ptr<store::Repository> repo_;
  std::unique_ptr<IndexPageCache> pages_;
  store::VmRecord web_, box_, far_;
  store::BackupRecord web_latest_;
};

TEST_F(StagingTreeTest, EachVmsLatestBackupUnderItsTierAndOriginalPath) {
  auto t = Staging();
  EXPECT_EQ(Names(t->root()), (std::vector<std::string>{"cold", "hot", "warm"}));
  const Node* web = t->FindPath("/hot/srv/vms/web");
  ASSERT_NE(web, nullptr);
  // Only the latest backup's files: both disks, all their views, the manifest.
  EXPECT_EQ(Names(*web),
            (std::vector<std::string>{"manifest.json", "web-data.qcow2", "web-data.raw",
                                      "web-data.vhdx", "web-data.vmdk", "web-root.qcow2",
                                      "web-root.raw", "web-root.vhdx", "web-root.vmdk"}));
  EXPECT_EQ(t->FindPath("/hot/srv/vms/web/web-root.raw")->size(), 3 * kCs);
  const Node* box = t->FindPath("/warm/vbox/hot/Box");
  ASSERT_NE(box, nullptr);
  EXPECT_EQ(Names(*box), (std::vector<std::string>{"Box.qcow2", "Box.raw", "Box.vhdx", "Box.vmdk",
                                                   "machine.vbox", "manifest.json"}));
  EXPECT_EQ(ReadAll(*t->Child(*box, "machine.vbox")), "<VirtualBox/>");
  ASSERT_NE(t->FindPath("/cold/far/vda.raw"), nullptr);
  // Nothing of the by-VM layout.
  EXPECT_EQ(t->FindPath("/web"), nullptr);
  EXPECT_EQ(t->FindPath("/hot/srv/vms/web/latest"), nullptr);

  // The file's bytes are the latest backup's.
  DiskSpec root = Disk("web-root", 3 * kCs);
  EXPECT_EQ(ReadAll(*t->FindPath("/hot/srv/vms/web/web-root.raw")),
            testing::ExpectedBytes(root, kCs, 0, 3 * kCs));
  const auto m = nlohmann::json::parse(ReadAll(*t->Child(*web, "manifest.json")));
  EXPECT_EQ(m["id"], web_latest_.id);
  EXPECT_EQ(m["parent"], "2026-11-21T033000Z");
  EXPECT_EQ(m["disks"][1]["file"], "web-data.raw");
}

TEST_F(StagingTreeTest, DirectoriesChangeFilesAreReplacedTimesAreBackupTimes) {
  auto t = Staging();
  for (const char* dir : {"", "/hot", "/hot/srv", "/hot/srv/vms", "/hot/srv/vms/web"}) {
    const Node* n = t->FindPath(dir);
    ASSERT_NE(n, nullptr) << dir;
    EXPECT_EQ(n->kind, NodeKind::kDirectory) << dir;
    EXPECT_TRUE(n->changes) << dir;
  }
  const Node* raw = t->FindPath("/hot/srv/vms/web/web-root.raw");
  EXPECT_FALSE(raw->changes);
  EXPECT_TRUE(raw->removable);  // the name will name a newer backup's file
  EXPECT_EQ(raw->backup_id, web_latest_.id);
  EXPECT_EQ(raw->mtime_us, web_latest_.time_us);
  EXPECT_EQ(t->FindPath("/hot/srv/vms/web")->mtime_us, web_latest_.time_us);
  EXPECT_EQ(t->FindPath("/hot")->mtime_us, web_latest_.time_us);
  EXPECT_EQ(t->FindPath("/warm")->mtime_us, TestTime(60));
  EXPECT_EQ(t->root().mtime_us, web_latest_.time_us);
  const Node* web = t->FindPath("/hot/srv/vms/web");
  EXPECT_EQ(web->xattrs, (std::vector<std::pair<std::string, std::string>>{
                             {"user.vmvault.backup", "2026-11-21T043000Z"},
                             {"user.vmvault.origin", "/srv/vms/web-root.img"},
                             {"user.vmvault.period", "month"},
                             {"user.vmvault.tier", "hot"},
                             {"user.vmvault.vm", "web"}}));
  EXPECT_TRUE(t->FindPath("/hot/srv")->xattrs.empty());
  EXPECT_EQ(web->state_of, "web");  // user.vmvault.state, read when asked
  EXPECT_EQ(t->FindPath("/hot/srv")->state_of, "");
  EXPECT_EQ(raw->state_of, "");
  // statfs counts the disks shown: the latest backups' only.
  EXPECT_EQ(t->logical_bytes(), 3 * kCs + kCs + kCs + kCs);
}

// A newer backup takes over the paths of the older one's files. Within a mount they get
// other inode numbers, so the kernel never serves the older file's cached pages or size
// for them; directories keep theirs.
TEST_F(StagingTreeTest, ANewerBackupsFilesGetOtherInodeNumbers) {
  InodeHistory history;
  auto before = Staging(&history);
  const std::string dir = "/hot/srv/vms/web";
  const Node* old_raw = before->FindPath(dir + "/web-root.raw");
  ASSERT_NE(old_raw, nullptr);
  auto w3 = CommitDisks(repo_.get(), web_, TestTime(7200), {Disk("web-root", 4 * kCs, web_.origin)},
                        web_latest_.id);
  ASSERT_TRUE(w3.ok());
  auto after = Staging(&history);
  const Node* new_raw = after->FindPath(dir + "/web-root.raw");
  ASSERT_NE(new_raw, nullptr);
  EXPECT_EQ(new_raw->size(), 4 * kCs);
  EXPECT_NE(new_raw->ino, old_raw->ino);
  EXPECT_EQ(new_raw->backup_id, w3->id);
  EXPECT_EQ(after->FindPath(dir)->ino, before->FindPath(dir)->ino);
  EXPECT_EQ(after->FindPath(dir + "/web-data.raw"), nullptr);  // not in the newest backup
  // And they keep the new numbers in later builds.
  EXPECT_EQ(Staging(&history)->FindPath(dir + "/web-root.raw")->ino, new_raw->ino);
}

// Two VMs may map to the same directory: a VirtualBox machine whose folder is where a
// file VM of the same name shows. The VM made first keeps the path, whatever the names,
// so a new VM never moves an older one's files; the other gets a unique name. A VM whose
// path runs through another's directory shares it.
TEST_F(StagingTreeTest, PathsThatMeetAreSharedButNeverTwoVmsFiles) {
  store::VmRecord clash_vm = Vm("a-vbox", "hot", "/srv/vms/web/web.vbox");  // sorts first
  clash_vm.created_us = web_.created_us + 1;
  auto clash =
      CommitDisks(repo_.get(), clash_vm, TestTime(6), {Disk("disk", kCs, "/elsewhere/disk.vdi")},
                  std::nullopt, "<VirtualBox/>", "vbox");
  ASSERT_TRUE(clash.ok());
  store::VmRecord inner = Vm("web-inner", "hot", "/srv/vms/web/x.img");
  inner.created_us = web_.created_us - 1;  // made before web: its path still runs through
  auto in = CommitDisks(repo_.get(), inner, TestTime(5), {Disk("x", kCs, inner.origin)});
  ASSERT_TRUE(in.ok());
  auto t = Staging();
  const Node* web = t->FindPath("/hot/srv/vms/web");
  ASSERT_NE(web, nullptr);
  const std::vector<std::string> listed = Names(*web);
  const std::set<std::string> names(listed.begin(), listed.end());
  EXPECT_TRUE(names.count("web-inner")) << ::testing::PrintToString(listed);
  EXPECT_TRUE(names.count("web-root.raw"));
  EXPECT_FALSE(names.count("disk.raw"));
  EXPECT_EQ(names.count("manifest.json"), 1u);
  ASSERT_NE(t->FindPath("/hot/srv/vms/web/web-inner/x.raw"), nullptr);
  EXPECT_EQ(t->FindPath("/hot/srv/vms/web/web-inner")->xattrs.back().second, "web-inner");
  EXPECT_EQ(web->xattrs.back().second, "web");
  const Node* vbox = t->FindPath("/hot/srv/vms/web~2");
  ASSERT_NE(vbox, nullptr);
  EXPECT_NE(t->Child(*vbox, "disk.raw"), nullptr);
  EXPECT_NE(t->Child(*vbox, "machine.vbox"), nullptr);
  EXPECT_EQ(vbox->xattrs.back().second, "a-vbox");
}

TEST_F(StagingTreeTest, UnsafePathComponentsAreSanitized) {
  auto b = CommitDisks(repo_.get(), Vm("odd", "hot", "x"), TestTime(9),
                       {Disk("vda", kCs, "/srv/.hidden/bad\nname/vda.img")});
  ASSERT_TRUE(b.ok());
  auto t = Staging();
  std::function<void(const Node&)> walk = [&](const Node& n) {
    for (const auto& [name, ino] : n.children) {
      EXPECT_EQ(name.find('\n'), std::string::npos);
      EXPECT_NE(name.front(), '.') << name;
      walk(*t->Find(ino));
    }
  };
  walk(t->root());
  const Node* srv = t->FindPath("/hot/srv");
  ASSERT_NE(srv, nullptr);
  EXPECT_EQ(srv->children.size(), 2u);  // vms, and the sanitized .hidden
}

TEST_F(StagingTreeTest, ViewsLeaveOutWholeKindsOfFiles) {
  ViewSet qcow2_only{false, true, false, false, false};
  auto t = Build({Layout::kStaging, qcow2_only});
  const Node* web = t->FindPath("/hot/srv/vms/web");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(Names(*web),
            (std::vector<std::string>{"manifest.json", "web-data.qcow2", "web-root.qcow2"}));
  const auto m = nlohmann::json::parse(ReadAll(*t->Child(*web, "manifest.json")));
  EXPECT_TRUE(m["disks"][0]["file"].is_null());
  EXPECT_EQ(m["disks"][0]["files"], nlohmann::json::array({"web-root.qcow2"}));
  // The same filter in the by-VM layout; the configuration file always shows.
  auto by_vm = Build({Layout::kByVm, *ViewSet::Parse("raw,vmdk")});
  const Node* box = by_vm->FindPath("/Box/latest");
  ASSERT_NE(box, nullptr);
  const Node* dir = by_vm->FindPath("/Box/2026-11/2026-11-21T033100Z");
  ASSERT_NE(dir, nullptr);
  EXPECT_EQ(Names(*dir),
            (std::vector<std::string>{"Box.raw", "Box.vmdk", "machine.vbox", "manifest.json"}));
}

TEST_F(StagingTreeTest, PartitionFilesFollowTheirView) {
  DiskSpec d = Disk("vda", 20 * kCs, "/srv/vms/parts.img");
  d.partitions = {{1, 1 << 20, 4 * kCs, "gpt", "0fc63daf-8483-4772-8e79-3d69d8477de4", "root"}};
  ASSERT_TRUE(
      CommitDisks(repo_.get(), Vm("parts", "hot", "/srv/vms/parts.img"), TestTime(8), {d}).ok());
  auto with = Build({Layout::kStaging, *ViewSet::Parse("part")});
  EXPECT_EQ(Names(*with->FindPath("/hot/srv/vms/parts")),
            (std::vector<std::string>{"manifest.json", "vda.part1.raw"}));
  auto without = Build({Layout::kStaging, *ViewSet::Parse("raw")});
  EXPECT_EQ(Names(*without->FindPath("/hot/srv/vms/parts")),
            (std::vector<std::string>{"manifest.json", "vda.raw"}));
}

}  // namespace
}  // namespace vmvault::fs
