// Tree: an immutable snapshot of the mount's directory tree, built from the catalog.
//
// The default layout (Layout::kByVm) shows every backup:
//
//   /<vm>/                         xattrs user.vmvault.tier, .origin, .period, .state
//     latest -> <period>/<backup>
//     <period>/<backup>/<disk>.raw   RawView
//                       manifest.json, domain.xml | machine.vbox   RegionMap bytes
//
// The staging layout (Layout::kStaging, vmprestage's staging tree for tape tools) shows
// each VM's latest backup only, under its tier and the path it came from:
//
//   /<tier>/<original path>/       the latest backup's files, as in <backup>/ above
//
// The original path (StagingPath) is a VirtualBox machine's folder, else the folder of
// the VM's first disk followed by the VM's name, else the VM's name alone. Where two
// VMs' paths meet, they share directories, but never one holding files: the VM made
// first keeps the path, the other gets a unique name (name~2). A VM's files
// there name another backup's bytes once a newer backup arrives: they get other inode
// numbers then (InodeHistory) and the short entry timeout (Node::removable).
//
// TreeOptions::views leaves out whole kinds of files (say, all but the qcow2 views, so
// a tape tool copies each disk once).
//
// Inode numbers come from the node's path (XXH3-64, never 0 or 1; the root is 1), so
// they are the same in every build and across remounts, and `forget` has nothing to
// clean up. A later build that no longer has a node (a pruned backup) simply answers
// ENOENT for it. Two exceptions, within one mount, so that the kernel never serves
// cached pages or a cached size for bytes that are not the file's (see InodeHistory):
// a backup that takes over the path of a backup that is gone (a backup named like one
// of the same second, once prune removed that one) gets other inode numbers than the
// gone one had, and manifest.json gets another number when its text changes.
// Names that are not valid path components are sanitized (base/names.h) and made
// unique within their directory. mtimes are backup times: a backup's own for it and
// its files, the newest backup's for period and VM directories and for the root.
//
// Building reads only catalog records, never an index page or a chunk. A Tree never
// changes after Build; the Filesystem swaps in a new one to show new backups. Nodes
// hold views by shared_ptr, so an open file keeps its view after a swap. The index
// page cache passed to Build must outlive the tree's views. Thread-safe (immutable).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"
#include "fs/index_page_cache.h"
#include "fs/view.h"
#include "store/catalog.h"

namespace vmvault::fs {

inline constexpr uint64_t kRootInode = 1;

enum class NodeKind : uint8_t { kDirectory, kFile, kSymlink };

struct Node {
  uint64_t ino = 0;
  uint64_t parent = 0;
  NodeKind kind = NodeKind::kDirectory;
  // True for nodes whose contents can change when new backups arrive: the root, VM
  // and period directories and `latest`. They get short cache timeouts.
  bool changes = false;
  // True for names that may go away or come to name another inode: backup directories,
  // which prune removes, and manifest.json, whose text changes when a verify or a prune
  // changes what it says (it then gets another inode number, see `identity`). They get
  // the short entry timeout: the kernel asks again within it and learns what the name
  // is now.
  bool removable = false;
  std::string name;
  std::string path;  // "" for the root, else "/vm/period/..."
  int64_t mtime_us = 0;
  uint32_t subdirs = 0;
  std::vector<std::pair<std::string, uint64_t>> children;  // sorted by name
  std::string link_target;                                 // kSymlink
  std::shared_ptr<const View> view;                        // kFile
  // Backup directories and their files: the backup (store::BackupRecord::id); else 0.
  uint64_t backup_id = 0;
  // What the inode number stands for within one mount (InodeHistory): the backup for
  // its directory and files, and for manifest.json a hash of its text as well; 0 for
  // nodes whose number may stand for whatever their path shows.
  uint64_t identity = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // sorted by name
  // VM directories (a staging directory holding a VM's files too): the VM whose schedule
  // state the xattr user.vmvault.state shows, read when asked (Filesystem::GetXattr),
  // since the schedule changes it without a new tree. "" for other nodes.
  std::string state_of;

  uint64_t size() const;
};

// The inode numbers one mount has handed out for nodes with an identity (backup
// directories and their files), each with that identity, across the trees it built. A
// node whose path's inode number was handed out for another identity (another backup
// of the same name, or manifest.json before its text changed) is given the next hash
// of its path instead: the kernel may still hold the old inode, with its page cache
// (keep_cache) and, with the writeback cache the mount asks for, its size, and a lookup
// that answered with the same number would make them the new file's.
using InodeHistory = std::unordered_map<uint64_t, uint64_t>;  // ino -> Node::identity

enum class Layout : uint8_t {
  kByVm,     // /<vm>/<period>/<backup>/: every backup
  kStaging,  // /<tier>/<original path>/: each VM's latest backup
};

// "vm" or "staging"; InvalidArgument naming the word otherwise.
Result<Layout> ParseLayout(std::string_view word);
std::string_view LayoutName(Layout layout);

// The kinds of files each disk shows.
struct ViewSet {
  bool raw = true;         // <disk>.raw
  bool qcow2 = true;       // <disk>.qcow2
  bool vhdx = true;        // <disk>.vhdx
  bool vmdk = true;        // <disk>.vmdk, a descriptor naming <disk>.raw
  bool partitions = true;  // <disk>.part<N>.raw

  // A list of raw, qcow2, vhdx, vmdk, part (or all), separated by commas or colons (the
  // form an fstab option can hold). InvalidArgument naming the problem for an unknown
  // word, an empty list, or vmdk without raw (the descriptor would name a missing file).
  static Result<ViewSet> Parse(std::string_view list);
  std::string ToString() const;  // "raw,qcow2,..." in that order
  bool operator==(const ViewSet&) const = default;
};

struct TreeOptions {
  Layout layout = Layout::kByVm;
  ViewSet views;
};

// The directories below its tier directory where the staging layout shows a VM whose
// latest backup is `latest`, as raw path components (Build sanitizes them):
//   - a VirtualBox machine (config_kind "vbox") whose origin is an absolute path: the
//     folder of its .vbox file, its machine folder;
//   - else, when the first disk's source_path is absolute: that file's folder, then the
//     VM's name (disk files of several VMs often share one folder);
//   - else (no disk, or a source that is not a path): the VM's name.
// Paths are normalized lexically first ("a/../b" is "b"; ".." above the root is dropped).
std::vector<std::string> StagingPath(const store::VmRecord& vm, const store::BackupRecord& latest);

class Tree {
 public:
  // `repo_id` (the repository's config id) makes the identities the image views carry
  // (VHDX disk ids, VMDK CIDs) differ between repositories.
  // `history`, when given, is read and extended (see InodeHistory); the caller
  // serializes builds that share it.
  static Result<std::shared_ptr<const Tree>> Build(const store::Catalog& catalog,
                                                   IndexPageCache* pages, int64_t built_us,
                                                   std::string_view repo_id = "",
                                                   InodeHistory* history = nullptr,
                                                   const TreeOptions& options = {});

  // The inode number of `path` ("" is the root), before collision handling.
  static uint64_t InodeOfPath(std::string_view path);

  const Node* Find(uint64_t ino) const;
  const Node* Child(const Node& dir, std::string_view name) const;
  const Node* FindPath(std::string_view path) const;  // "/vm/latest"; "" or "/" is the root
  const Node& root() const { return *Find(kRootInode); }

  size_t node_count() const { return nodes_.size(); }
  int64_t built_us() const { return built_us_; }
  uint64_t logical_bytes() const { return logical_bytes_; }

 private:
  friend class TreeBuilder;
  Tree() = default;

  std::unordered_map<uint64_t, Node> nodes_;
  int64_t built_us_ = 0;
  uint64_t logical_bytes_ = 0;
};

}  // namespace vmvault::fs
