// Who may read what: the repository is private whatever the umask (and vmvault warns
// when it was opened up later); the mount serves only the user who mounted it unless
// --allow-other; nothing in the mount points outside it. Other users are played by
// nobody (uid 65534) through setpriv(1), so these tests need root.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <set>

#include "harness.h"

namespace vmvault::testing {
namespace {

namespace fsys = std::filesystem;

// `argv` run as nobody, with no supplementary groups.
RunResult AsNobody(const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCmd(full);
}

uint32_t ModeOf(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0xffffffff;
}

// The line of /proc/self/mounts for the mount at `path`.
std::string MountLine(const std::string& path) {
  std::string line;
  for (std::string rest = Slurp("/proc/self/mounts"); !rest.empty();) {
    const size_t nl = rest.find('\n');
    const std::string l = rest.substr(0, nl);
    rest = nl == std::string::npos ? "" : rest.substr(nl + 1);
    if (l.find(" " + path + " ") != std::string::npos) line = l;
  }
  return line;
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root (FUSE, setpriv)";
    repo_ = tmp_ / "repo";
    image_ = tmp_ / "web.raw";
    ASSERT_EQ(Sh("truncate -s 6M " + image_ + " && head -c 3M /dev/urandom | dd of=" + image_ +
                 " conv=notrunc status=none && chmod 644 " + image_),
              0);
  }

  // `vmvault ARGS` under umask 000.
  RunResult Umask000(const std::vector<std::string>& args) {
    std::string cmd = "umask 000 && exec " + VmvaultPath();
    for (const std::string& a : args) cmd += " '" + a + "'";
    return RunCmd({"sh", "-c", cmd});
  }

  void InitAndIngest() {
    RunResult init = Umask000({"init", "--repo", repo_, "--chunk-size", "64K"});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    RunResult ingest = Umask000({"ingest", "--repo", repo_, "--file", image_, "--vm", "web"});
    ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
  }

  TempDir tmp_;
  std::string repo_, image_;
};

TEST_F(SecurityTest, TheRepositoryIsPrivateWhateverTheUmask) {
  InitAndIngest();
  EXPECT_EQ(ModeOf(repo_), 0700u);
  EXPECT_EQ(ModeOf(repo_ + "/db"), 0700u);
  for (const char* file : {"secret", "vmvault.json", "lock", "reserve"}) {
    EXPECT_EQ(ModeOf(repo_ + "/" + file), 0600u) << file;
  }
  // Whatever RocksDB's files are, no other user reaches them, or the secret.
  EXPECT_NE(AsNobody({"cat", repo_ + "/secret"}).exit_code, 0);
  EXPECT_NE(AsNobody({"ls", repo_ + "/db"}).exit_code, 0);
  RunResult list = RunCmd({VmvaultPath(), "list", "--repo", repo_});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.err, "");

  // Opened up later: every command still works, and warns.
  ASSERT_EQ(::chmod(repo_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((repo_ + "/secret").c_str(), 0644), 0);
  list = RunCmd({VmvaultPath(), "list", "--repo", repo_});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.err.find("open to other users"), std::string::npos) << list.err;
  EXPECT_NE(list.err.find("secret is mode 0644"), std::string::npos) << list.err;
  EXPECT_NE(list.err.find("chmod -R go= " + repo_), std::string::npos) << list.err;
  ASSERT_EQ(Sh("chmod -R go= " + repo_), 0);
  list = RunCmd({VmvaultPath(), "list", "--repo", repo_});
  EXPECT_EQ(list.err, "");

  // An existing empty directory becomes private too.
  const std::string given = tmp_ / "given";
  ASSERT_EQ(::mkdir(given.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(given.c_str(), 0777), 0);
  ASSERT_EQ(Umask000({"init", "--repo", given}).exit_code, 0);
  EXPECT_EQ(ModeOf(given), 0700u);
}

TEST_F(SecurityTest, TheMountServesOnlyItsUserUnlessAllowOther) {
  InitAndIngest();
  const std::string file = "/web/latest/web.raw";
  {
    Mount mount(repo_, tmp_ / "mnt");
    ASSERT_TRUE(mount.ok());
    const std::string path = mount.path() + file;
    EXPECT_EQ(CompareFiles(path, image_), "");
    EXPECT_EQ(ModeOf(path), 0444u);
    EXPECT_EQ(ModeOf(mount.path() + "/web"), 0555u);
    RunResult cat = AsNobody({"cat", path});
    EXPECT_NE(cat.exit_code, 0);
    EXPECT_NE(cat.err.find("Permission denied"), std::string::npos) << cat.err;
    RunResult ls = AsNobody({"ls", mount.path()});
    EXPECT_NE(ls.exit_code, 0);
    EXPECT_NE(ls.err.find("Permission denied"), std::string::npos) << ls.err;
    const std::string line = MountLine(mount.path());
    EXPECT_NE(line.find(" ro,"), std::string::npos) << line;
    EXPECT_NE(line.find("default_permissions"), std::string::npos) << line;
    EXPECT_EQ(line.find("allow_other"), std::string::npos) << line;
  }
  for (const std::vector<std::string>& opt :
       {std::vector<std::string>{"--allow-other"}, std::vector<std::string>{"-o", "allow_other"}}) {
    SCOPED_TRACE(opt.back());
    Mount mount(repo_, tmp_ / "mnt", opt);
    ASSERT_TRUE(mount.ok());
    const std::string path = mount.path() + file;
    RunResult cmp = AsNobody({"cmp", path, image_});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
    // Read-only for everyone, and the modes are enforced by the kernel.
    RunResult write = AsNobody({"sh", "-c", "echo x >> " + path});
    EXPECT_NE(write.exit_code, 0);
    RunResult mk = AsNobody({"mkdir", mount.path() + "/web/x"});
    EXPECT_NE(mk.exit_code, 0);
    const std::string line = MountLine(mount.path());
    EXPECT_NE(line.find("default_permissions"), std::string::npos) << line;
    EXPECT_NE(line.find("allow_other"), std::string::npos) << line;
    EXPECT_NE(line.find(" ro,"), std::string::npos) << line;
  }
}

TEST_F(SecurityTest, NothingInTheMountPointsOutsideIt) {
  InitAndIngest();
  // Several backups, periods and VMs, with a name that needs sanitizing.
  const std::string odd = tmp_ / "..odd name.raw";
  ASSERT_EQ(Sh("cp " + image_ + " '" + odd + "'"), 0);
  for (const std::string& f : {image_, odd}) {
    RunResult r = RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--file", f});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string root = fsys::canonical(mount.path()).string();
  std::map<ino_t, std::string> inodes;
  size_t entries = 0, links = 0;
  for (auto it = fsys::recursive_directory_iterator(root); it != fsys::end(it); ++it) {
    const std::string p = it->path().string();
    ++entries;
    const std::string name = it->path().filename().string();
    EXPECT_NE(name, "..");
    EXPECT_NE(name, ".");
    struct stat st {};
    ASSERT_EQ(::lstat(p.c_str(), &st), 0) << p;
    const auto [at, fresh] = inodes.emplace(st.st_ino, p);
    EXPECT_TRUE(fresh) << p << " has the inode number of " << at->second;
    if (S_ISLNK(st.st_mode)) {
      // Only each VM's `latest`, pointing to one of its own backups.
      ++links;
      EXPECT_EQ(name, "latest") << p;
      const fsys::path target = fsys::read_symlink(p);
      EXPECT_TRUE(target.is_relative()) << p << " -> " << target;
      const std::string real = fsys::canonical(p).string();
      EXPECT_TRUE(real.starts_with(it->path().parent_path().string() + "/")) << p << " -> " << real;
      EXPECT_TRUE(fsys::is_directory(real)) << real;
    } else {
      EXPECT_TRUE(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) << p;
      EXPECT_EQ(st.st_mode & 07777, S_ISDIR(st.st_mode) ? 0555u : 0444u) << p;
    }
    const std::string real = fsys::canonical(p).string();
    EXPECT_TRUE(real.starts_with(root + "/")) << p << " resolves to " << real;
    // `..` of every directory leads back inside, or to the mount's parent from its top.
    if (S_ISDIR(st.st_mode)) {
      const std::string up = fsys::canonical(p + "/..").string();
      EXPECT_TRUE(up == root || up.starts_with(root + "/")) << p << "/.. is " << up;
    }
  }
  EXPECT_EQ(links, 2u);
  EXPECT_GT(entries, 10u);
  // find(1) agrees: the only symlinks are the `latest` ones.
  RunResult find = RunCmd({"find", root, "-type", "l", "!", "-name", "latest"});
  EXPECT_EQ(find.exit_code, 0);
  EXPECT_EQ(find.out, "");
}

}  // namespace
}  // namespace vmvault::testing
