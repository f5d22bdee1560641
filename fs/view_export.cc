#include "fs/view_export.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace vmvault::fs {
namespace {

constexpr uint64_t kPiece = 4 << 20;      // read and written at a time
constexpr uint64_t kZeroBlock = 64 << 10;  // all-zero blocks this size stay holes
constexpr uint64_t kReadAhead = 32 << 20;  // kept loading ahead of the writer

Status WriteAll(int fd, const uint8_t* data, uint64_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, std::min<uint64_t>(n, 1 << 30), static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, fmt::format("write at offset {}", offset));
    }
    data += w;
    n -= static_cast<uint64_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::OK();
}

bool IsZero(const uint8_t* p, uint64_t n) {
  if (n == 0) return true;
  return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
}

// Zeros [offset, offset + length) of a block device: BLKZEROOUT, else written zeros.
Status ZeroDevice(int fd, uint64_t offset, uint64_t length) {
  uint64_t range[2] = {offset, length};
  if (::ioctl(fd, BLKZEROOUT, range) == 0) return Status::OK();
  static const std::vector<uint8_t> zeros(kPiece, 0);
  for (uint64_t done = 0; done < length;) {
    const uint64_t n = std::min(kPiece, length - done);
    VV_RETURN_IF_ERROR(WriteAll(fd, zeros.data(), n, offset + done));
    done += n;
  }
  return Status::OK();
}

}  // namespace

Result<ExportStats> ExportView(const std::shared_ptr<const View>& view, const ViewReader& reader,
                               int fd, const ExportOptions& options) {
  VV_RETURN_IF_ERROR(view->Load());
  const uint64_t size = view->size();
  ExportStats stats;
  if (!options.device && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return Status::FromErrno(errno, "set the size of the restored file");
  }
  std::vector<uint8_t> buf(kPiece);
  uint64_t pos = 0;
  uint64_t warmed = 0;
  while (pos < size) {
    VV_ASSIGN_OR_RETURN(uint64_t data, view->SeekData(pos));
    if (data > pos) {  // a hole
      if (options.device) {
        VV_RETURN_IF_ERROR(ZeroDevice(fd, pos, data - pos));
        stats.bytes_zeroed += data - pos;
      }
      if (options.progress != nullptr) options.progress->Add(data - pos);
      pos = data;
      if (pos >= size) break;
    }
    VV_ASSIGN_OR_RETURN(uint64_t hole, view->SeekHole(pos));
    hole = std::min(hole, size);
    if (hole <= pos) return Status::Corruption("the view's SEEK_HOLE does not advance");
    while (pos < hole) {
      const uint64_t n = std::min(kPiece, hole - pos);
      if (warmed < pos + n + kReadAhead && warmed < hole) {
        const uint64_t from = std::max(warmed, pos + n);
        const uint64_t to = std::min(hole, pos + n + 2 * kReadAhead);
        if (to > from) reader.Prefetch(view, from, to - from);
        warmed = std::max(warmed, to);
      }
      VV_RETURN_IF_ERROR(reader.ReadAt(*view, pos, std::span<uint8_t>(buf.data(), n)));
      if (options.device) {
        VV_RETURN_IF_ERROR(WriteAll(fd, buf.data(), n, pos));
        stats.bytes_written += n;
      } else {
        // Write the runs of blocks that are not all zeros; the rest stay holes.
        for (uint64_t b = 0; b < n;) {
          const uint64_t len = std::min(kZeroBlock, n - b);
          if (IsZero(buf.data() + b, len)) {
            b += len;
            continue;
          }
          uint64_t end = b + len;
          while (end < n && !IsZero(buf.data() + end, std::min(kZeroBlock, n - end))) {
            end += std::min(kZeroBlock, n - end);
          }
          VV_RETURN_IF_ERROR(WriteAll(fd, buf.data() + b, end - b, pos + b));
          stats.bytes_written += end - b;
          b = end;
        }
      }
      if (options.progress != nullptr) options.progress->Add(n);
      pos += n;
    }
  }
  if (::fsync(fd) != 0) return Status::FromErrno(errno, "flush the restored data");
  return stats;
}

}  // namespace vmvault::fs
