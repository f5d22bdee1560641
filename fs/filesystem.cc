#include "fs/filesystem.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "base/names.h"
#include "store/vm_state.h"

namespace vmvault::fs {
namespace {

constexpr uint32_t kDirMode = S_IFDIR | 0555;
constexpr uint32_t kFileMode = S_IFREG | 0444;
constexpr uint32_t kLinkMode = S_IFLNK | 0777;

uint32_t ModeOf(NodeKind kind) {
  switch (kind) {
    case NodeKind::kDirectory: return kDirMode;
    case NodeKind::kFile: return kFileMode;
    case NodeKind::kSymlink: return kLinkMode;
  }
  return kFileMode;
}

struct timespec ToTimespec(int64_t us) {
  struct timespec ts {};
  ts.tv_sec = us / 1'000'000;
  ts.tv_nsec = (us % 1'000'000) * 1000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1'000'000'000;
    --ts.tv_sec;
  }
  return ts;
}

Status NoSuchInode(uint64_t ino) {
  return Status::NotFound("no inode " + std::to_string(ino) + " in the mount");
}

}  // namespace

Filesystem::Filesystem(store::Repository* repo, const FilesystemOptions& options)
    : repo_(repo),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : &SystemClock::Default()) {
  pages_ = std::make_unique<IndexPageCache>(&repo_->catalog(), options_.index_cache_bytes);
  cache_ = std::make_unique<ChunkCache>(&repo_->chunks(), options_.cache_bytes,
                                        repo_->config().chunk_size);
  if (options_.prefetch_threads > 0) pool_ = std::make_unique<ThreadPool>(options_.prefetch_threads);
  reader_ = std::make_unique<ViewReader>(cache_.get(), pool_.get());
}

Filesystem::~Filesystem() = default;

Result<std::unique_ptr<Filesystem>> Filesystem::Create(store::Repository* repo,
                                                       const FilesystemOptions& options) {
  std::unique_ptr<Filesystem> fs(new Filesystem(repo, options));
  VV_RETURN_IF_ERROR(fs->Refresh(/*force=*/true));
  return fs;
}

Status Filesystem::Refresh(bool force) {
  std::unique_lock<std::mutex> lock(refresh_mu_, std::defer_lock);
  if (force) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return Status::OK();  // another thread is refreshing; use the current snapshot
  }
  const int64_t now = clock_->NowMicros();
  if (!force && now - refresh_tried_us_.load() < options_.refresh_interval_us) {
    return Status::OK();  // another thread refreshed meanwhile
  }
  refresh_tried_us_.store(now);
  Status s = repo_->Refresh();
  if (!s.ok()) spdlog::warn("repository refresh failed: {}", s.ToString());
  // Rebuild only when the catalog moved: decoding every backup record once a second
  // would cost a large repository real time.
  Result<uint64_t> generation = repo_->catalog().Generation();
  if (generation.ok() && built_generation_ == *generation) return Status::OK();
  Result<std::shared_ptr<const Tree>> built = Tree::Build(
      repo_->catalog(), pages_.get(), now, repo_->config().id, &inode_history_, options_.tree);
  if (!built.ok()) {
    spdlog::error("cannot list the repository: {}", built.status().ToString());
    return built.status();
  }
  built_generation_ = generation.ok() ? std::optional<uint64_t>(*generation) : std::nullopt;
  std::lock_guard<std::mutex> tree_lock(tree_mu_);
  tree_ = std::move(built).value();
  return Status::OK();
}

std::shared_ptr<const Tree> Filesystem::tree() const {
  std::lock_guard<std::mutex> lock(tree_mu_);
  return tree_;
}

std::shared_ptr<const Tree> Filesystem::TreeFor(uint64_t ino) {
  std::shared_ptr<const Tree> t = tree();
  const Node* node = t->Find(ino);
  if ((node == nullptr || node->changes || node->removable) &&
      clock_->NowMicros() - refresh_tried_us_.load() >= options_.refresh_interval_us) {
    // A failed refresh keeps the old snapshot; it is logged in Refresh.
    Refresh(/*force=*/false).IgnoreError();
    t = tree();
  }
  return t;
}

Status Filesystem::LoadView(const Node& node) const {
  if (node.kind != NodeKind::kFile || !node.view) return Status::OK();
  Status s = node.view->Load();
  if (!s.ok()) spdlog::error("cannot lay out {}: {}", Printable(node.path), s.ToString());
  return s;
}

EntryInfo Filesystem::InfoOf(const Node& node) const {
  EntryInfo e;
  struct stat& st = e.attr;
  st.st_ino = node.ino;
  st.st_mode = ModeOf(node.kind);
  st.st_nlink = node.kind == NodeKind::kDirectory ? 2 + node.subdirs : 1;
  st.st_uid = options_.uid;
  st.st_gid = options_.gid;
  st.st_size = static_cast<off_t>(node.size());
  st.st_blksize = 128 << 10;
  const uint64_t allocated =
      node.kind == NodeKind::kFile && node.view ? node.view->allocated_bytes() : 0;
  st.st_blocks = static_cast<blkcnt_t>((allocated + 511) / 512);
  st.st_mtim = st.st_ctim = st.st_atim = ToTimespec(node.mtime_us);
  e.attr_timeout = node.changes ? options_.short_timeout_s : options_.long_timeout_s;
  e.entry_timeout =
      node.changes || node.removable ? options_.short_timeout_s : options_.long_timeout_s;
  return e;
}

Result<EntryInfo> Filesystem::Lookup(uint64_t parent, std::string_view name) {
  std::shared_ptr<const Tree> t = TreeFor(parent);
  const Node* dir = t->Find(parent);
  if (dir == nullptr) return NoSuchInode(parent);
  if (dir->kind != NodeKind::kDirectory) return Status::NotFound("not a directory");
  const Node* child = t->Child(*dir, name);
  if (child == nullptr) return Status::NotFound(std::string(name) + " does not exist");
  VV_RETURN_IF_ERROR(LoadView(*child));
  return InfoOf(*child);
}

Result<EntryInfo> Filesystem::GetAttr(uint64_t ino) {
  std::shared_ptr<const Tree> t = TreeFor(ino);
  const Node* node = t->Find(ino);
  if (node == nullptr) return NoSuchInode(ino);
  VV_RETURN_IF_ERROR(LoadView(*node));
  return InfoOf(*node);
}

Result<std::string> Filesystem::ReadLink(uint64_t ino) {
  std::shared_ptr<const Tree> t = TreeFor(ino);
  const Node* node = t->Find(ino);
  if (node == nullptr) return NoSuchInode(ino);
  if (node->kind != NodeKind::kSymlink) return Status::InvalidArgument("not a symlink");
  return node->link_target;
}

Result<std::vector<DirEntry>> Filesystem::ReadDir(uint64_t ino) {
  std::shared_ptr<const Tree> t = TreeFor(ino);
  const Node* dir = t->Find(ino);
  if (dir == nullptr) return NoSuchInode(ino);
  if (dir->kind != NodeKind::kDirectory) return Status::InvalidArgument("not a directory");
  std::vector<DirEntry> out;
  out.reserve(dir->children.size() + 2);
  out.push_back({".", dir->ino, kDirMode});
  out.push_back({"..", dir->parent, kDirMode});
  for (const auto& [name, child_ino] : dir->children) {
    const Node* child = t->Find(child_ino);
    out.push_back({name, child_ino, child != nullptr ? ModeOf(child->kind) : kFileMode});
  }
  return out;
}

Result<std::unique_ptr<OpenFile>> Filesystem::Open(uint64_t ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0) {
    return Status::ReadOnly("the backup mount is read-only");
  }
  std::shared_ptr<const Tree> t = tree();
  const Node* node = t->Find(ino);
  if (node == nullptr) return NoSuchInode(ino);
  if (node->kind != NodeKind::kFile || !node->view) return Status::InvalidArgument("not a file");
  VV_RETURN_IF_ERROR(LoadView(*node));
  return std::make_unique<OpenFile>(ino, node->backup_id, node->view, options_.readahead_bytes);
}

Status Filesystem::Read(OpenFile* file, uint64_t offset, size_t size, ReadResult* out) {
  const View& view = *file->view;
  if (auto ahead = file->readahead.OnRead(offset, size, view.size())) {
    reader_->Prefetch(file->view, ahead->first, ahead->second);
  }
  Status s = reader_->Read(view, offset, size, out);
  if (s.ok() || s.IsNotFound()) return s;
  // After garbage collection a read can fail in two ways that are not damage: a chunk
  // of a pruned backup is gone (NotFound, reported as Corruption by the chunk cache),
  // or this mount's database instance predates the gc and names a blob file its
  // compaction deleted (IOError). Only the latter needs the fresh instance; with it, a
  // backup that is gone is ENOENT, and one that is still there is read once more.
  const bool stale = s.code() == StatusCode::kIOError;
  if (stale) Refresh(/*force=*/true).IgnoreError();
  if (repo_->catalog().GetBackup(file->backup_id).status().IsNotFound()) {
    out->Clear();
    return Status::NotFound(fmt::format("backup {} has been removed", file->backup_id));
  }
  if (!stale) return s;
  out->Clear();
  return reader_->Read(view, offset, size, out);
}

Result<std::optional<uint64_t>> Filesystem::Lseek(OpenFile* file, uint64_t offset, int whence) {
  const uint64_t size = file->view->size();
  switch (whence) {
    case SEEK_SET:
    case SEEK_CUR:
      return std::optional<uint64_t>(offset);
    case SEEK_END:
      return std::optional<uint64_t>(size + offset);
    case SEEK_DATA: {
      if (offset >= size) return std::optional<uint64_t>();
      VV_ASSIGN_OR_RETURN(uint64_t pos, file->view->SeekData(offset));
      return pos >= size ? std::optional<uint64_t>() : std::optional<uint64_t>(pos);
    }
    case SEEK_HOLE: {
      if (offset >= size) return std::optional<uint64_t>();
      VV_ASSIGN_OR_RETURN(uint64_t pos, file->view->SeekHole(offset));
      return std::optional<uint64_t>(std::min(pos, size));
    }
    default:
      return Status::InvalidArgument("unknown lseek whence");
  }
}

Result<std::optional<std::string>> Filesystem::VmStateOf(const Node& node) {
  if (node.state_of.empty()) return std::optional<std::string>();
  // The schedule writes states without moving the generation: read the record itself,
  // from an instance at most a refresh interval old.
  TreeFor(node.ino);
  VV_ASSIGN_OR_RETURN(std::optional<store::VmStateRecord> rec,
                      store::GetVmState(repo_->kv(), node.state_of));
  if (!rec) return std::optional<std::string>();
  return std::optional<std::string>(std::string(store::VmStateName(rec->state)));
}

Result<std::optional<std::string>> Filesystem::GetXattr(uint64_t ino, std::string_view name) {
  std::shared_ptr<const Tree> t = tree();
  const Node* node = t->Find(ino);
  if (node == nullptr) return NoSuchInode(ino);
  if (name == kStateXattr) return VmStateOf(*node);
  for (const auto& [key, value] : node->xattrs) {
    if (key == name) return std::optional<std::string>(value);
  }
  return std::optional<std::string>();
}

Result<std::vector<std::string>> Filesystem::ListXattr(uint64_t ino) {
  std::shared_ptr<const Tree> t = tree();
  const Node* node = t->Find(ino);
  if (node == nullptr) return NoSuchInode(ino);
  std::vector<std::string> names;
  for (const auto& [key, value] : node->xattrs) names.push_back(key);
  VV_ASSIGN_OR_RETURN(std::optional<std::string> state, VmStateOf(*node));
  if (state) names.emplace_back(kStateXattr);
  return names;
}

struct statvfs Filesystem::StatFs() {
  std::shared_ptr<const Tree> t = tree();
  struct statvfs s {};
  s.f_bsize = 4096;
  s.f_frsize = 4096;
  s.f_blocks = (t->logical_bytes() + 4095) / 4096;
  s.f_bfree = 0;
  s.f_bavail = 0;
  s.f_files = t->node_count();
  s.f_ffree = 0;
  s.f_favail = 0;
  s.f_namemax = 255;
  s.f_flag = ST_RDONLY;
  return s;
}

}  // namespace vmvault::fs
