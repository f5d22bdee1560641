#include "store/repository.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/file_util.h"

namespace vmvault::store {
namespace {

namespace fsys = std::filesystem;
using nlohmann::json;

constexpr char kFormatFile[] = "vmvault.json";
constexpr char kSecretFile[] = "secret";
constexpr char kDbDir[] = "db";
constexpr char kLockFile[] = "lock";
constexpr size_t kSecretBytes = 32;

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "getrandom");
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

std::string EncodeConfig(const RepoConfig& c) {
  json j{{"format", kFormatName},
         {"version", c.format_version},
         {"chunk_size", c.chunk_size},
         {"zstd_level", c.zstd_level},
         {"id", c.id},
         {"created_us", c.created_us}};
  return j.dump(2) + "\n";
}

Result<RepoConfig> DecodeConfig(const std::string& path, std::string_view text) {
  RepoConfig c;
  try {
    const json j = json::parse(text);
    if (j.at("format").get<std::string>() != kFormatName) {
      return Status::FailedPrecondition(fmt::format("{} is not a vmvault format file", path));
    }
    c.format_version = j.at("version").get<uint32_t>();
    if (c.format_version < kOldestFormatVersion || c.format_version > kFormatVersion) {
      return Status::FailedPrecondition(fmt::format(
          "repository format version {} is not supported: this vmvault reads versions {} to {}",
          c.format_version, kOldestFormatVersion, kFormatVersion));
    }
    c.chunk_size = j.at("chunk_size").get<uint32_t>();
    c.zstd_level = j.at("zstd_level").get<int>();
    c.id = j.at("id").get<std::string>();
    c.created_us = j.at("created_us").get<int64_t>();
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format("{} does not parse: {}", path, e.what()));
  }
  VV_RETURN_IF_ERROR(ValidateRepoConfig(c).WithContext(path));
  return c;
}

// Takes the writer lock. Busy when another process holds it; ReadOnly when the
// repository cannot be written.
Result<int> LockForWriting(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IWUSR) == 0) {
    return Status::ReadOnly(fmt::format("repository {} is read-only (its directory is not writable)", path));
  }
  const std::string lock_path = path + "/" + kLockFile;
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EROFS || err == EACCES || err == EPERM) {
      return Status::ReadOnly(fmt::format("repository {} is read-only: {}", path, strerror(err)));
    }
    return Status::FromErrno(err, "open " + lock_path);
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::Busy(fmt::format(
          "repository {} is busy: another vmvault process (ingest, prune or gc) is writing to it",
          path));
    }
    return Status::FromErrno(err, "lock " + lock_path);
  }
  return fd;
}

// A repository other users can read gives its backups away, and its secret lets them
// tell which chunks it holds. Init makes both private; this warns when that was
// widened since (group access may be deliberate, so it is not refused).
void WarnIfOpenToOthers(const std::string& path) {
  std::string wide;
  for (const std::string& p : {path, path + "/" + kSecretFile}) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & 077) == 0) continue;
    if (!wide.empty()) wide += ", ";
    wide += fmt::format("{} is mode {:04o}", p, st.st_mode & 07777);
  }
  if (wide.empty()) return;
  spdlog::warn("repository {} is open to other users ({}); unless that is meant, make it "
               "private again with: chmod -R go= {}",
               path, wide, path);
}

}  // namespace

Status ValidateRepoConfig(const RepoConfig& c) {
  const uint32_t cs = c.chunk_size;
  if (cs < kMinChunkSize || cs > kMaxChunkSize || (cs & (cs - 1)) != 0) {
    return Status::InvalidArgument(fmt::format(
        "chunk size {} is not a power of two from 64 KiB to 4 MiB", cs));
  }
  if (c.zstd_level < 1 || c.zstd_level > 19) {
    return Status::InvalidArgument(
        fmt::format("zstd level {} is outside 1..19", c.zstd_level));
  }
  return Status::OK();
}

Repository::Repository(std::string path, RepoMode mode, RepoConfig config,
                       std::string_view secret, std::shared_ptr<KvEngine> kv, int lock_fd)
    : path_(std::move(path)),
      mode_(mode),
      config_(std::move(config)),
      hasher_(secret),
      kv_(std::move(kv)),
      chunks_(std::make_unique<ChunkStore>(kv_.get(), &hasher_)),
      catalog_(std::make_unique<Catalog>(kv_.get())),
      lock_fd_(lock_fd) {}

Repository::~Repository() {
  catalog_.reset();
  chunks_.reset();
  kv_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status Repository::Init(const std::string& path, const RepoConfig& requested) {
  RepoConfig config = requested;
  config.format_version = kFormatVersion;
  VV_RETURN_IF_ERROR(ValidateRepoConfig(config));
  std::error_code ec;
  if (fsys::exists(path, ec)) {
    if (!fsys::is_directory(path, ec)) {
      return Status::AlreadyExists(fmt::format("{} exists and is not a directory", path));
    }
    if (fsys::exists(fsys::path(path) / kFormatFile, ec)) {
      return Status::AlreadyExists(fmt::format("{} is already a vmvault repository", path));
    }
    if (!fsys::is_empty(path, ec)) {
      return Status::AlreadyExists(fmt::format("{} is not empty", path));
    }
  } else if (::mkdir(path.c_str(), 0700) != 0) {
    return Status::FromErrno(errno, "create repository directory " + path);
  }
  if (::chmod(path.c_str(), 0700) != 0) return Status::FromErrno(errno, "chmod " + path);

  VV_ASSIGN_OR_RETURN(std::string secret, RandomBytes(kSecretBytes));
  VV_ASSIGN_OR_RETURN(std::string id, RandomBytes(16));
  config.id = ToHex(id);
  config.created_us = SystemClock::Default().NowMicros();
  VV_RETURN_IF_ERROR(WriteFileAtomic(path + "/" + kSecretFile, secret, 0600));

  RocksKvOptions options;
  options.create = true;
  {
    VV_ASSIGN_OR_RETURN(auto engine,
                        OpenRocksKvEngine(path + "/" + kDbDir, KvOpenMode::kReadWrite, options));
  }
  // RocksDB makes its directory as the umask says; the files in it hold the backups.
  const std::string db = path + "/" + kDbDir;
  if (::chmod(db.c_str(), 0700) != 0) return Status::FromErrno(errno, "chmod " + db);
  if (Status r = MakeReserve(path); !r.ok()) return r.WithContext("create the space reserve");
  // The format file is written last: its presence marks a complete repository.
  return WriteFileAtomic(path + "/" + kFormatFile, EncodeConfig(config), 0600);
}

Status MakeReserve(const std::string& repo_path) {
  const std::string path = repo_path + "/" + std::string(kReserveFile);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= kReserveBytes) {
    return Status::OK();
  }
  const std::string tmp = path + ".new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(kReserveBytes));
  ::close(fd);
  if (err != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = err != 0 ? err : errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno(e, "reserve space in " + path);
  }
  return Status::OK();
}

void ReleaseReserve(const std::string& repo_path) {
  ::unlink((repo_path + "/" + std::string(kReserveFile)).c_str());
}

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& path, RepoMode mode) {
  std::error_code ec;
  if (!fsys::exists(path, ec)) {
    return Status::NotFound(fmt::format(
        "no repository at {} (create one with 'vmvault init --repo {}')", path, path));
  }
  const std::string format_path = path + "/" + kFormatFile;
  if (!fsys::exists(format_path, ec)) {
    return Status::NotFound(fmt::format("{} is not a vmvault repository (it has no {})", path,
                                        kFormatFile));
  }
  VV_ASSIGN_OR_RETURN(std::string text, ReadFile(format_path));
  VV_ASSIGN_OR_RETURN(RepoConfig config, DecodeConfig(format_path, text));
  WarnIfOpenToOthers(path);
  VV_ASSIGN_OR_RETURN(std::string secret, ReadFile(path + "/" + kSecretFile));
  if (secret.size() < kSecretBytes) {
    return Status::Corruption(fmt::format("the secret of repository {} is truncated", path));
  }

  if (!fsys::exists(path + "/" + kDbDir + "/CURRENT", ec)) {
    return Status::Corruption(fmt::format(
        "repository {} is damaged: its database ({}/{}) is missing", path, path, kDbDir));
  }
  int lock_fd = -1;
  KvOpenMode kv_mode = KvOpenMode::kReadOnly;
  if (mode == RepoMode::kWrite) {
    VV_ASSIGN_OR_RETURN(lock_fd, LockForWriting(path));
    kv_mode = KvOpenMode::kReadWrite;
  } else if (mode == RepoMode::kFollow) {
    kv_mode = KvOpenMode::kFollower;
  }
  auto engine = OpenRocksKvEngine(path + "/" + kDbDir, kv_mode, RocksKvOptions());
  if (!engine.ok()) {
    if (lock_fd >= 0) ::close(lock_fd);
    return engine.status().WithContext(fmt::format("repository {}", path));
  }
  std::unique_ptr<Repository> repo(new Repository(path, mode, config, secret,
                                                 std::move(engine).value(), lock_fd));
  if (mode == RepoMode::kWrite && config.format_version < kFormatVersion) {
    VV_RETURN_IF_ERROR(repo->Upgrade(format_path));
  }
  return repo;
}

Status Repository::Upgrade(const std::string& format_path) {
  // 1 -> 2: store the disk summaries. The format file moves last, so a crash midway
  // leaves a version 1 repository that the next writer upgrades again.
  VV_RETURN_IF_ERROR(catalog_->AddMissingSummaries().WithContext("upgrade the repository format"));
  RepoConfig upgraded = config_;
  upgraded.format_version = kFormatVersion;
  VV_RETURN_IF_ERROR(WriteFileAtomic(format_path, EncodeConfig(upgraded), 0600));
  config_ = upgraded;
  return Status::OK();
}

std::unique_ptr<Repository> Repository::OpenInMemory(const RepoConfig& config,
                                                     std::shared_ptr<KvEngine> engine,
                                                     std::string secret) {
  if (!engine) engine = std::make_shared<MemKvEngine>();
  return std::unique_ptr<Repository>(new Repository(":memory:", RepoMode::kWrite, config, secret,
                                                    std::move(engine), -1));
}

}  // namespace vmvault::store
