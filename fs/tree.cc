#include "fs/tree.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <unordered_set>

#include "base/names.h"
#include "base/time_format.h"
#include "fs/disk_views.h"
#include "fs/manifest.h"
#include "fs/region_map.h"
#include "fs/vmdk_descriptor.h"

namespace vmvault::fs {

uint64_t Node::size() const {
  switch (kind) {
    case NodeKind::kFile: return view ? view->size() : 0;
    case NodeKind::kSymlink: return link_target.size();
    case NodeKind::kDirectory: return children.size();
  }
  return 0;
}

uint64_t Tree::InodeOfPath(std::string_view path) {
  if (path.empty()) return kRootInode;
  const uint64_t h = XXH3_64bits(path.data(), path.size());
  return h <= kRootInode ? h + 2 : h;
}

const Node* Tree::Find(uint64_t ino) const {
  auto it = nodes_.find(ino);
  return it == nodes_.end() ? nullptr : &it->second;
}

const Node* Tree::Child(const Node& dir, std::string_view name) const {
  auto it = std::lower_bound(dir.children.begin(), dir.children.end(), name,
                             [](const auto& child, std::string_view n) { return child.first < n; });
  if (it == dir.children.end() || it->first != name) return nullptr;
  return Find(it->second);
}

const Node* Tree::FindPath(std::string_view path) const {
  const Node* node = &root();
  size_t pos = 0;
  while (node != nullptr && pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    const size_t slash = std::min(path.find('/', pos), path.size());
    node = Child(*node, path.substr(pos, slash - pos));
    pos = slash;
  }
  return node;
}

Result<Layout> ParseLayout(std::string_view word) {
  if (word == "vm") return Layout::kByVm;
  if (word == "staging") return Layout::kStaging;
  return Status::InvalidArgument(
      fmt::format("unknown layout '{}' (vm: every backup by VM and period; staging: each "
                  "VM's latest backup by tier and original path)",
                  Printable(word)));
}

std::string_view LayoutName(Layout layout) { return layout == Layout::kStaging ? "staging" : "vm"; }

Result<ViewSet> ViewSet::Parse(std::string_view list) {
  ViewSet v{false, false, false, false, false};
  size_t start = 0;
  bool any = false;
  while (start <= list.size()) {
    size_t end = list.find_first_of(",:", start);
    if (end == std::string_view::npos) end = list.size();
    const std::string_view word = list.substr(start, end - start);
    start = end + 1;
    if (word.empty()) continue;
    any = true;
    if (word == "all") {
      v = ViewSet{};
    } else if (word == "raw") {
      v.raw = true;
    } else if (word == "qcow2") {
      v.qcow2 = true;
    } else if (word == "vhdx") {
      v.vhdx = true;
    } else if (word == "vmdk") {
      v.vmdk = true;
    } else if (word == "part") {
      v.partitions = true;
    } else {
      return Status::InvalidArgument(fmt::format(
          "unknown view '{}' (views are raw, qcow2, vhdx, vmdk, part, or all)", Printable(word)));
    }
  }
  if (!any) {
    return Status::InvalidArgument(
        "no view given (views are raw, qcow2, vhdx, vmdk, part, or all)");
  }
  if (v.vmdk && !v.raw) {
    return Status::InvalidArgument(
        "the vmdk view needs the raw view too: the VMDK descriptor names the .raw file");
  }
  return v;
}

std::string ViewSet::ToString() const {
  std::string out;
  for (const auto& [shown, word] : {std::pair{raw, "raw"},
                                    {qcow2, "qcow2"},
                                    {vhdx, "vhdx"},
                                    {vmdk, "vmdk"},
                                    {partitions, "part"}}) {
    if (shown) out += (out.empty() ? "" : ",") + std::string(word);
  }
  return out;
}

namespace {

// The components of `path` normalized lexically, without the root; empty for a path
// that is not absolute.
std::vector<std::string> AbsoluteComponents(const std::string& path) {
  if (path.empty() || path[0] != '/') return {};
  std::vector<std::string> out;
  for (const auto& c : std::filesystem::path(path).lexically_normal().relative_path()) {
    const std::string s = c.string();
    if (s.empty() || s == "." || s == "..") continue;  // ".." only above the root
    out.push_back(s);
  }
  return out;
}

}  // namespace

std::vector<std::string> StagingPath(const store::VmRecord& vm, const store::BackupRecord& latest) {
  if (latest.config_kind == "vbox") {
    std::vector<std::string> folder = AbsoluteComponents(vm.origin);
    if (folder.size() >= 2) {
      folder.pop_back();  // the .vbox file
      return folder;
    }
  }
  if (!latest.disks.empty()) {
    std::vector<std::string> folder = AbsoluteComponents(latest.disks.front().source_path);
    if (!folder.empty()) {
      folder.back() = vm.name;  // the file itself, replaced by the VM
      return folder;
    }
  }
  return {vm.name};
}

// Builds a Tree. Not thread-safe; used only inside Tree::Build.
class TreeBuilder {
 public:
  TreeBuilder(const store::Catalog* catalog, IndexPageCache* pages, int64_t built_us,
              uint64_t repo_seed, InodeHistory* history, const TreeOptions& options)
      : catalog_(catalog),
        pages_(pages),
        repo_seed_(repo_seed),
        history_(history),
        options_(options),
        tree_(new Tree()) {
    tree_->built_us_ = built_us;
    Node root;
    root.ino = kRootInode;
    root.parent = kRootInode;
    root.changes = true;
    tree_->nodes_.emplace(kRootInode, std::move(root));
    paths_.insert("");
  }

  void AddVm(const store::VmRecord& vm, const std::vector<store::BackupRecord>& backups);
  // Layout::kStaging: the VM's latest backup under /<tier>/<StagingPath>/.
  void AddStagingVm(const store::VmRecord& vm, const std::vector<store::BackupRecord>& backups);

  std::shared_ptr<const Tree> Finish() {
    for (auto& [ino, node] : tree_->nodes_) {
      std::sort(node.children.begin(), node.children.end());
    }
    // The root's time is its newest backup's; with none yet, when it was listed.
    Node& root = tree_->nodes_.at(kRootInode);
    if (root.mtime_us == 0) root.mtime_us = tree_->built_us_;
    return std::shared_ptr<const Tree>(tree_.release());
  }

 private:
  // Adds `node` as a child of `parent` under a unique version of `name`; returns it.
  Node& Add(uint64_t parent, std::string_view name, Node node);
  Node& Dir(uint64_t ino) { return tree_->nodes_.at(ino); }
  void Touch(uint64_t ino, int64_t mtime_us) {
    Node& n = Dir(ino);
    n.mtime_us = std::max(n.mtime_us, mtime_us);
  }
  // `replaceable`: the files' names will name a newer backup's files (staging).
  void AddBackup(const store::VmRecord& vm, const store::BackupRecord& b, uint64_t backup_dir,
                 const std::optional<std::string>& parent_name, bool replaceable = false);
  // The directory `name` in `parent` that staging paths share, made when missing.
  uint64_t SharedDir(uint64_t parent, std::string_view name, int64_t mtime_us);

  const store::Catalog* catalog_;
  IndexPageCache* pages_;
  const uint64_t repo_seed_;  // mixed into the identities of image views
  InodeHistory* const history_;  // may be null
  const TreeOptions options_;
  std::unique_ptr<Tree> tree_;
  std::unordered_set<std::string> paths_;
  std::unordered_map<std::string, uint64_t> staging_dirs_;  // by path
  std::unordered_set<uint64_t> staging_leaves_;             // directories holding a VM's files
};

Node& TreeBuilder::Add(uint64_t parent, std::string_view raw_name, Node node) {
  Node& dir = Dir(parent);
  const std::string base = ValidateName(raw_name, "name").ok() ? std::string(raw_name)
                                                               : SanitizeName(raw_name);
  std::string name = base;
  for (int n = 2; paths_.count(dir.path + "/" + name) != 0; ++n) {
    name = base + "~" + std::to_string(n);
  }
  node.name = name;
  node.path = dir.path + "/" + name;
  node.parent = parent;
  paths_.insert(node.path);
  // Whether `ino` was handed out for another identity than this node's.
  auto taken_by_another = [&](uint64_t ino) {
    if (history_ == nullptr || node.identity == 0) return false;
    auto it = history_->find(ino);
    return it != history_->end() && it->second != node.identity;
  };
  uint64_t ino = Tree::InodeOfPath(node.path);
  for (uint64_t seed = 1;
       ino <= kRootInode || tree_->nodes_.count(ino) != 0 || taken_by_another(ino); ++seed) {
    if (!taken_by_another(ino)) {
      spdlog::warn("inode collision for {}; rehashing", Printable(node.path));
    }
    ino = XXH3_64bits_withSeed(node.path.data(), node.path.size(), seed);
  }
  node.ino = ino;
  if (history_ != nullptr && node.identity != 0) history_->emplace(ino, node.identity);
  if (node.kind == NodeKind::kDirectory) ++dir.subdirs;
  dir.children.emplace_back(name, ino);
  Touch(parent, node.mtime_us);
  return tree_->nodes_.emplace(ino, std::move(node)).first->second;
}

void TreeBuilder::AddVm(const store::VmRecord& vm,
                        const std::vector<store::BackupRecord>& backups) {
  Node vm_node;
  vm_node.kind = NodeKind::kDirectory;
  vm_node.changes = true;
  vm_node.mtime_us = vm.created_us;
  vm_node.xattrs = {{"user.vmvault.origin", vm.origin},
                    {"user.vmvault.period", std::string(PeriodName(vm.period))},
                    {"user.vmvault.tier", vm.tier}};
  vm_node.state_of = vm.name;
  const uint64_t vm_dir = Add(kRootInode, vm.name, std::move(vm_node)).ino;

  std::map<uint64_t, std::string> names_by_id;
  for (const auto& b : backups) names_by_id[b.id] = b.name();
  std::map<std::string, uint64_t> periods;
  std::string latest_target;
  int64_t latest_time = 0;
  for (const store::BackupRecord& b : backups) {
    const std::string period = PeriodOf(b.time_us, vm.period);
    auto [it, inserted] = periods.emplace(period, 0);
    if (inserted) {
      Node p;
      p.kind = NodeKind::kDirectory;
      p.changes = true;
      p.mtime_us = b.time_us;
      it->second = Add(vm_dir, period, std::move(p)).ino;
    }
    Node bnode;
    bnode.kind = NodeKind::kDirectory;
    bnode.removable = true;
    bnode.mtime_us = b.time_us;
    bnode.backup_id = b.id;
    bnode.identity = b.id;
    const Node& backup_dir = Add(it->second, b.name(), std::move(bnode));
    const uint64_t backup_ino = backup_dir.ino;
    if (latest_target.empty() || b.time_us >= latest_time) {
      latest_target = Dir(it->second).name + "/" + backup_dir.name;
      latest_time = b.time_us;
    }
    std::optional<std::string> parent_name;
    if (b.parent_id) {
      if (auto p = names_by_id.find(*b.parent_id); p != names_by_id.end()) parent_name = p->second;
    }
    AddBackup(vm, b, backup_ino, parent_name);
    Touch(it->second, b.time_us);
    Touch(vm_dir, b.time_us);
  }
  Touch(kRootInode, Dir(vm_dir).mtime_us);
  if (!latest_target.empty()) {
    Node link;
    link.kind = NodeKind::kSymlink;
    link.changes = true;
    link.mtime_us = latest_time;
    link.link_target = latest_target;
    Add(vm_dir, "latest", std::move(link));
  }
}

namespace {

// A directory of the staging layout: what it holds changes with new backups and VMs.
Node StagingDir(int64_t mtime_us) {
  Node d;
  d.kind = NodeKind::kDirectory;
  d.changes = true;
  d.mtime_us = mtime_us;
  return d;
}

}  // namespace

uint64_t TreeBuilder::SharedDir(uint64_t parent, std::string_view raw_name, int64_t mtime_us) {
  const std::string name =
      ValidateName(raw_name, "name").ok() ? std::string(raw_name) : SanitizeName(raw_name);
  if (auto it = staging_dirs_.find(Dir(parent).path + "/" + name); it != staging_dirs_.end()) {
    Touch(it->second, mtime_us);
    Touch(parent, mtime_us);
    return it->second;
  }
  // A file's name taken: made unique.
  const Node& made = Add(parent, name, StagingDir(mtime_us));
  staging_dirs_.emplace(made.path, made.ino);
  return made.ino;
}

void TreeBuilder::AddStagingVm(const store::VmRecord& vm,
                               const std::vector<store::BackupRecord>& backups) {
  if (backups.empty()) return;
  const store::BackupRecord* latest = &backups.front();
  for (const store::BackupRecord& b : backups) {
    if (b.time_us >= latest->time_us) latest = &b;
  }
  const int64_t t = latest->time_us;
  const std::vector<std::string> path = StagingPath(vm, *latest);
  uint64_t dir = SharedDir(kRootInode, vm.tier, t);
  for (size_t i = 0; i + 1 < path.size(); ++i) dir = SharedDir(dir, path[i], t);
  // The VM's own directory may hold the paths of other VMs (SharedDir), never their
  // files: a path that is another VM's already gets a unique name.
  uint64_t leaf = SharedDir(dir, path.back(), t);
  if (staging_leaves_.count(leaf) != 0) {
    leaf = Add(dir, path.back(), StagingDir(t)).ino;
  }
  staging_leaves_.insert(leaf);
  Dir(leaf).xattrs = {{"user.vmvault.backup", latest->name()},
                      {"user.vmvault.origin", vm.origin},
                      {"user.vmvault.period", std::string(PeriodName(vm.period))},
                      {"user.vmvault.tier", vm.tier},
                      {"user.vmvault.vm", vm.name}};
  Dir(leaf).state_of = vm.name;
  std::optional<std::string> parent_name;
  if (latest->parent_id) {
    for (const store::BackupRecord& b : backups) {
      if (b.id == *latest->parent_id) parent_name = b.name();
    }
  }
  AddBackup(vm, *latest, leaf, parent_name, /*replaceable=*/true);
}

void TreeBuilder::AddBackup(const store::VmRecord& vm, const store::BackupRecord& b,
                            uint64_t backup_dir, const std::optional<std::string>& parent_name,
                            bool replaceable) {
  // `changing_identity`: for a file whose bytes can change (manifest.json), a hash
  // of them.
  auto add_file = [&](std::string_view name, std::shared_ptr<const View> view,
                      std::optional<uint64_t> changing_identity = std::nullopt) -> std::string {
    Node f;
    f.kind = NodeKind::kFile;
    f.mtime_us = b.time_us;
    f.backup_id = b.id;
    f.identity = changing_identity.value_or(b.id);
    f.removable = replaceable || changing_identity.has_value();
    f.view = std::move(view);
    return Add(backup_dir, name, std::move(f)).name;
  };
  ManifestInput in;
  if (auto v = catalog_->GetVerification(b.id); v.ok()) in.verification = *v;
  in.vm = &vm;
  in.backup = &b;
  in.parent_name = parent_name;
  const ViewSet& shown = options_.views;
  std::unordered_set<std::string> disk_names;
  std::vector<std::string> disks;  // each disk's unique base name
  std::vector<DiskViews> views;
  for (uint32_t i = 0; i < b.disks.size(); ++i) {
    const store::DiskRecord& d = b.disks[i];
    const std::string base = ValidateName(d.name, "disk").ok() ? d.name : SanitizeName(d.name);
    std::string disk = base;
    for (int n = 2; !disk_names.insert(disk).second; ++n) disk = base + "~" + std::to_string(n);
    views.push_back(MakeDiskViews(catalog_, pages_, b, i, DiskIdentity(repo_seed_, b.id, i)));
    tree_->logical_bytes_ += d.virtual_size;  // statfs counts each disk once
    in.disk_files.push_back(shown.raw ? add_file(disk + ".raw", views.back().raw) : "");
    in.disk_views.emplace_back();
    if (shown.raw) {
      const std::string& raw_file = in.disk_files.back();
      in.disk_views.back().push_back(raw_file);
      if (raw_file.ends_with(".raw")) disk = raw_file.substr(0, raw_file.size() - 4);  // as shown
    }
    disks.push_back(std::move(disk));
  }
  // The other views of each disk, after every raw file has its name.
  for (uint32_t i = 0; i < b.disks.size(); ++i) {
    const std::string& disk = disks[i];
    std::vector<std::string>& files = in.disk_views[i];
    if (shown.qcow2) files.push_back(add_file(disk + ".qcow2", views[i].qcow2));
    if (shown.vhdx) files.push_back(add_file(disk + ".vhdx", views[i].vhdx));
    const auto cid = static_cast<uint32_t>(DiskIdentity(repo_seed_, b.id, i));
    if (shown.vmdk && shown.raw) {
      if (auto vmdk = VmdkDescriptor(in.disk_files[i], b.disks[i].virtual_size, cid)) {
        files.push_back(add_file(disk + ".vmdk", MakeBytesView(std::move(*vmdk))));
      }
    }
    if (!shown.partitions) continue;
    for (const DiskViews::PartitionView& p : views[i].partitions) {
      files.push_back(add_file(fmt::format("{}.part{}.raw", disk, p.partition.number), p.view));
    }
  }
  if (!b.config.empty()) {
    const std::string name = b.config_kind == "libvirt-xml" ? "domain.xml"
                             : b.config_kind == "vbox"      ? "machine.vbox"
                                                            : "config.txt";
    in.config_file = add_file(name, MakeBytesView(b.config));
  }
  // What the manifest says changes with a verify, or a prune of the parent backup; the
  // rest of a backup never changes.
  std::string manifest = BuildManifest(in);
  const uint64_t manifest_identity =
      std::max<uint64_t>(1, XXH3_64bits_withSeed(manifest.data(), manifest.size(), b.id));
  add_file("manifest.json", MakeBytesView(std::move(manifest)), manifest_identity);
}

Result<std::shared_ptr<const Tree>> Tree::Build(const store::Catalog& catalog,
                                                IndexPageCache* pages, int64_t built_us,
                                                std::string_view repo_id, InodeHistory* history,
                                                const TreeOptions& options) {
  VV_ASSIGN_OR_RETURN(std::vector<store::VmRecord> vms, catalog.ListVms());
  if (options.layout == Layout::kStaging) {
    // Where two VMs' paths meet, the older VM keeps the path (AddStagingVm): a new VM
    // never moves the files of one a tape tool already knows.
    std::stable_sort(vms.begin(), vms.end(),
                     [](const auto& a, const auto& b) { return a.created_us < b.created_us; });
  }
  TreeBuilder builder(&catalog, pages, built_us, RepoSeed(repo_id), history, options);
  for (const store::VmRecord& vm : vms) {
    Result<std::vector<store::BackupRecord>> backups = catalog.ListBackups(vm.name);
    if (!backups.ok()) {
      // Show the rest of the repository; this VM appears empty (by VM) or not at all.
      spdlog::error("cannot list backups of VM {}: {}", Printable(vm.name),
                    backups.status().ToString());
      backups = std::vector<store::BackupRecord>{};
    }
    if (options.layout == Layout::kStaging) {
      builder.AddStagingVm(vm, *backups);
    } else {
      builder.AddVm(vm, *backups);
    }
  }
  return builder.Finish();
}

}  // namespace vmvault::fs
