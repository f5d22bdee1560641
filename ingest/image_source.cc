#include "ingest/image_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/names.h"
#include "ingest/nbd_image.h"
#include "ingest/nbd_server.h"

namespace vmvault::ingest {
namespace {

class NbdSource final : public ImageSource {
 public:
  NbdSource(std::unique_ptr<NbdServer> server, std::string path)
      : server_(std::move(server)), path_(std::move(path)) {}

  Result<std::unique_ptr<Image>> OpenReader() override {
    auto image = NbdImage::ConnectUnix(server_->socket_path());
    if (!image.ok()) return image.status().WithContext(Printable(path_));
    return std::unique_ptr<Image>(std::move(image).value());
  }

 private:
  const std::unique_ptr<NbdServer> server_;
  const std::string path_;
};

// QEMU's image locking (block/file-posix.c): a process holding permission bit i has a
// read lock on byte kPermBase + i, one that does not share it on kSharedBase + i.
constexpr off_t kQemuLockPermBase = 100;
constexpr off_t kQemuLockSharedBase = 200;
constexpr int kPermConsistentRead = 0;  // BLK_PERM_CONSISTENT_READ = 1 << 0
constexpr int kPermResize = 3;          // BLK_PERM_RESIZE = 1 << 3

// An OFD lock request of `type` on byte `byte`.
struct flock ByteLock(short type, off_t byte) {
  struct flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return fl;
}

// Whether another open file holds a lock on byte `byte` of `fd`.
Result<bool> ByteLockedByOthers(int fd, off_t byte) {
  struct flock fl = ByteLock(F_WRLCK, byte);
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return Status::FromErrno(errno, "F_OFD_GETLK");
  return fl.l_type != F_UNLCK;
}

Status LockByte(int fd, off_t byte) {
  struct flock fl = ByteLock(F_RDLCK, byte);
  if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) return Status::FromErrno(errno, "F_OFD_SETLK");
  return Status::OK();
}

// What `qemu-nbd --read-only` locks: it takes consistent reads and does not share
// resizing, and fails while another process resizes or does not share consistent reads.
Status TakeQemuReadLocks(int fd, const std::string& path) {
  for (const off_t byte : {kQemuLockSharedBase + kPermConsistentRead,
                           kQemuLockPermBase + kPermResize}) {
    VV_ASSIGN_OR_RETURN(const bool taken, ByteLockedByOthers(fd, byte));
    if (taken) {
      return Status::FailedPrecondition(fmt::format(
          "'{}' is in use by another process that does not share it for reading (QEMU's image "
          "lock)",
          Printable(path)));
    }
  }
  VV_RETURN_IF_ERROR(LockByte(fd, kQemuLockPermBase + kPermConsistentRead));
  return LockByte(fd, kQemuLockSharedBase + kPermResize);
}

// One open raw file or block device; readers share its descriptor (pread is
// thread-safe), so they are light and stateless.
class RawSource final : public ImageSource {
 public:
  RawSource(int fd, std::string path, uint64_t file_size, uint64_t virtual_size)
      : fd_(fd), path_(std::move(path)), file_size_(file_size), virtual_size_(virtual_size) {}
  ~RawSource() override { ::close(fd_); }

  Result<std::unique_ptr<Image>> OpenReader() override {
    return std::unique_ptr<Image>(new Reader(*this));
  }

 private:
  class Reader final : public Image {
   public:
    explicit Reader(const RawSource& source) : source_(source) {}
    uint64_t size() const override { return source_.virtual_size_; }
    Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
      return source_.ReadAt(offset, out);
    }

   private:
    const RawSource& source_;
  };

  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const {
    // Up to the file's size from the file, the rest (qemu's rounding) zeros.
    const uint64_t in_file = offset >= file_size_ ? 0 : std::min<uint64_t>(out.size(),
                                                                           file_size_ - offset);
    std::memset(out.data() + in_file, 0, out.size() - in_file);
    uint64_t done = 0;
    while (done < in_file) {
      const ssize_t n = ::pread(fd_, out.data() + done, in_file - done,
                                static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return Status::FromErrno(errno, fmt::format("reading '{}' at offset {}", Printable(path_),
                                                    offset + done));
      }
      if (n == 0) {
        return Status::IOError(fmt::format(
            "'{}' ends at offset {}, but it held {} bytes when the backup began (it shrank)",
            Printable(path_), offset + done, file_size_));
      }
      done += static_cast<uint64_t>(n);
    }
    return Status::OK();
  }

  const int fd_;
  const std::string path_;
  const uint64_t file_size_;
  const uint64_t virtual_size_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenRawSource(const ImageInfo& info) {
  if (info.format != "raw") {
    return Status::InvalidArgument(
        fmt::format("OpenRawSource: '{}' is a {} image", Printable(info.path), info.format));
  }
  const int fd = ::open(info.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, fmt::format("cannot open '{}'", Printable(info.path)));
  auto source_or = [&]() -> Result<std::unique_ptr<ImageSource>> {
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
      return Status::FromErrno(errno, fmt::format("cannot stat '{}'", Printable(info.path)));
    }
    uint64_t file_size = static_cast<uint64_t>(st.st_size);
    if (S_ISBLK(st.st_mode)) {
      const off_t end = ::lseek(fd, 0, SEEK_END);
      if (end < 0) {
        return Status::FromErrno(errno, fmt::format("cannot size '{}'", Printable(info.path)));
      }
      file_size = static_cast<uint64_t>(end);
    } else if (!S_ISREG(st.st_mode)) {
      return Status::InvalidArgument(
          fmt::format("'{}' is neither a file nor a block device", Printable(info.path)));
    }
    if (file_size > info.virtual_size || info.virtual_size - file_size >= 512) {
      return Status::FailedPrecondition(fmt::format(
          "'{}' holds {} bytes, but qemu-img said {} (it changed since it was probed)",
          Printable(info.path), file_size, info.virtual_size));
    }
    if (!info.force_share) VV_RETURN_IF_ERROR(TakeQemuReadLocks(fd, info.path));
    return std::unique_ptr<ImageSource>(
        new RawSource(fd, info.path, file_size, info.virtual_size));
  }();
  if (!source_or.ok()) ::close(fd);
  return source_or;
}

Result<std::unique_ptr<ImageSource>> SourceOpener::Open(const ImageInfo& info, int readers) {
  if (info.format == "raw") return OpenRawSource(info);
  return NbdSourceOpener().Open(info, readers);
}

Result<std::unique_ptr<ImageSource>> NbdSourceOpener::Open(const ImageInfo& info, int readers) {
  NbdServer::Options options;
  options.connections = readers;
  VV_ASSIGN_OR_RETURN(auto server, NbdServer::Start(info, options));
  return std::unique_ptr<ImageSource>(new NbdSource(std::move(server), info.path));
}

}  // namespace vmvault::ingest
