#include "ingest/vdi_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/bytes.h"
#include "base/names.h"
#include "ingest/virtualbox.h"

namespace vmvault::ingest {
namespace {

// Offsets in the file (pre-header, then VDIHEADER1 at 72).
constexpr size_t kOffSignature = 64;
constexpr size_t kOffVersion = 68;
constexpr size_t kOffHeaderSize = 72;
constexpr size_t kOffType = 76;
constexpr size_t kOffFlags = 80;
constexpr size_t kOffBlocksOffset = 340;  // after the 256-byte comment
constexpr size_t kOffDataOffset = 344;
constexpr size_t kOffDiskSize = 368;  // after legacy geometry (16) and an unused u32
constexpr size_t kOffBlockSize = 376;
constexpr size_t kOffBlockExtra = 380;
constexpr size_t kOffBlocks = 384;
constexpr size_t kOffBlocksAllocated = 388;
constexpr size_t kOffUuidCreate = 392;
constexpr size_t kOffUuidModify = 408;
constexpr size_t kOffUuidLinkage = 424;
constexpr size_t kOffUuidParentModify = 440;
static_assert(kOffUuidParentModify + 16 == kVdiPreHeaderSize + kVdiHeaderMinSize);

bool IsNull(const VdiUuid& u) {
  return std::all_of(u.begin(), u.end(), [](uint8_t b) { return b == 0; });
}

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

Status ReadFull(int fd, uint64_t offset, std::span<uint8_t> out, const std::string& path) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, fmt::format("read {}", Printable(path)));
    }
    if (n == 0) {
      return Status::Corruption(
          fmt::format("{} ends at byte {}, before the {} bytes at {} it "
                      "should hold (did it shrink?)",
                      Printable(path), offset + done, out.size(), offset));
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

// The bytes of block `index` that lie inside the disk.
uint64_t BlockBytesInDisk(const VdiHeader& h, uint64_t index) {
  const uint64_t start = index * h.block_size;
  return start >= h.disk_size ? 0 : std::min<uint64_t>(h.block_size, h.disk_size - start);
}

uint64_t DataOffset(const VdiHeader& h, uint32_t entry) {
  return h.offset_data + uint64_t{entry} * (uint64_t{h.block_size} + h.block_extra) + h.block_extra;
}

enum class BlockKind { kData, kZero, kFree };
BlockKind KindOf(uint32_t entry) {
  return entry == kVdiBlockFree   ? BlockKind::kFree
         : entry == kVdiBlockZero ? BlockKind::kZero
                                  : BlockKind::kData;
}

}  // namespace

std::string VdiUuidString(const VdiUuid& u) {
  return fmt::format("{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                     GetLittleEndian32(u.data()), GetLittleEndian16(u.data() + 4),
                     GetLittleEndian16(u.data() + 6), u[8], u[9], u[10], u[11], u[12], u[13], u[14],
                     u[15]);
}

Result<VdiHeader> ParseVdiHeader(std::span<const uint8_t> b, uint64_t file_size,
                                 const std::string& path) {
  const std::string p = Printable(path);
  if (b.size() < kOffVersion + 4 || file_size < kOffVersion + 4) {
    return Status::InvalidArgument(fmt::format("{} is too short to be a VDI image", p));
  }
  if (GetLittleEndian32(b.data() + kOffSignature) != kVdiSignature) {
    return Status::InvalidArgument(
        fmt::format("{} is not a VDI image (no signature 0x{:08x} at byte 64)", p, kVdiSignature));
  }
  VdiHeader h;
  const uint32_t version = GetLittleEndian32(b.data() + kOffVersion);
  h.version_major = static_cast<uint16_t>(version >> 16);
  h.version_minor = static_cast<uint16_t>(version & 0xffff);
  if (h.version_major != 1) {
    return Status::Unsupported(fmt::format("{}: VDI version {}.{} is not supported (only 1.x)", p,
                                           h.version_major, h.version_minor));
  }
  const uint64_t need = kVdiPreHeaderSize + kVdiHeaderMinSize;
  if (b.size() < need || file_size < need) {
    return Status::Corruption(fmt::format("{}: VDI header cut short: the file has {} bytes", p,
                                          std::min<uint64_t>(file_size, b.size())));
  }
  h.header_size = GetLittleEndian32(b.data() + kOffHeaderSize);
  const uint32_t type = GetLittleEndian32(b.data() + kOffType);
  h.flags = GetLittleEndian32(b.data() + kOffFlags);
  h.offset_blocks = GetLittleEndian32(b.data() + kOffBlocksOffset);
  h.offset_data = GetLittleEndian32(b.data() + kOffDataOffset);
  h.disk_size = GetLittleEndian64(b.data() + kOffDiskSize);
  h.block_size = GetLittleEndian32(b.data() + kOffBlockSize);
  h.block_extra = GetLittleEndian32(b.data() + kOffBlockExtra);
  h.blocks = GetLittleEndian32(b.data() + kOffBlocks);
  h.blocks_allocated = GetLittleEndian32(b.data() + kOffBlocksAllocated);
  std::memcpy(h.uuid_create.data(), b.data() + kOffUuidCreate, 16);
  std::memcpy(h.uuid_modify.data(), b.data() + kOffUuidModify, 16);
  std::memcpy(h.uuid_linkage.data(), b.data() + kOffUuidLinkage, 16);
  std::memcpy(h.uuid_parent_modify.data(), b.data() + kOffUuidParentModify, 16);

  auto bad = [&](std::string what) {
    return Status::Corruption(fmt::format("{}: damaged VDI header: {}", p, what));
  };
  if (type == static_cast<uint32_t>(VdiType::kUndo)) {
    return Status::Unsupported(fmt::format("{}: VDI undo images (type 3) are not supported", p));
  }
  if (type != 1 && type != 2 && type != 4) return bad(fmt::format("image type {}", type));
  h.type = static_cast<VdiType>(type);
  if (h.header_size < kVdiHeaderMinSize) {
    return bad(fmt::format("header size {} < {}", h.header_size, kVdiHeaderMinSize));
  }
  if (uint64_t{h.offset_blocks} < kVdiPreHeaderSize + h.header_size) {
    return bad(fmt::format("block map at byte {} overlaps the {}-byte header", h.offset_blocks,
                           h.header_size));
  }
  if (h.disk_size == 0) return bad("disk size 0");
  if (!IsPowerOfTwo(h.block_size) || h.block_size < 512 || h.block_size > kVdiMaxBlockSize) {
    return bad(fmt::format("block size {}", h.block_size));
  }
  if (h.block_extra != 0 && (!IsPowerOfTwo(h.block_extra) || h.block_extra > kVdiMaxBlockSize)) {
    return bad(fmt::format("block extra size {}", h.block_extra));
  }
  if (h.blocks == 0 || uint64_t{h.blocks} * h.block_size < h.disk_size) {
    return bad(fmt::format("{} blocks of {} bytes cannot hold a disk of {} bytes", h.blocks,
                           h.block_size, h.disk_size));
  }
  if (h.blocks_allocated > h.blocks) {
    return bad(fmt::format("{} blocks allocated of {}", h.blocks_allocated, h.blocks));
  }
  const uint64_t map_end = uint64_t{h.offset_blocks} + uint64_t{h.blocks} * 4;
  if (map_end > h.offset_data) {
    return bad(fmt::format("data at byte {} overlaps the block map (bytes {} to {})", h.offset_data,
                           h.offset_blocks, map_end));
  }
  if (map_end > file_size) {
    return Status::Corruption(fmt::format(
        "{}: the block map ends at byte {}, past the end of the file ({} bytes): truncated?", p,
        map_end, file_size));
  }
  if (IsNull(h.uuid_create)) return bad("null creation uuid");
  if (h.type == VdiType::kDifferencing && IsNull(h.uuid_linkage)) {
    return bad("differencing image without a parent uuid");
  }
  return h;
}

Status CheckVdiBlockMap(const VdiHeader& h, std::span<const uint32_t> map, uint64_t file_size,
                        const std::string& path) {
  if (map.size() != h.blocks) {
    return Status::Corruption(fmt::format("{}: block map has {} entries, the header says {}",
                                          Printable(path), map.size(), h.blocks));
  }
  for (uint64_t i = 0; i < map.size(); ++i) {
    const uint32_t e = map[i];
    if (KindOf(e) != BlockKind::kData) continue;
    const uint64_t bytes = BlockBytesInDisk(h, i);
    if (bytes == 0) continue;  // a block past the disk's end is never read
    if (e >= h.blocks) {
      return Status::Corruption(
          fmt::format("{}: block {} points at data block {}, beyond the {} "
                      "the image can hold",
                      Printable(path), i, e, h.blocks));
    }
    const uint64_t end = DataOffset(h, e) + bytes;
    if (end > file_size) {
      return Status::Corruption(
          fmt::format("{}: block {} has its data at bytes {} to {}, past the "
                      "end of the file ({} bytes): truncated?",
                      Printable(path), i, DataOffset(h, e), end, file_size));
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<VdiChainImage>> VdiChainImage::Open(
    const std::vector<std::string>& chain, const std::vector<std::string>& expected_uuids) {
  if (chain.empty()) return Status::InvalidArgument("an empty VDI chain");
  if (chain.size() > kVdiMaxChainLength) {
    return Status::InvalidArgument(
        fmt::format("a VDI chain of {} images; at most {}", chain.size(), kVdiMaxChainLength));
  }
  if (!expected_uuids.empty() && expected_uuids.size() != chain.size()) {
    return Status::InvalidArgument("VdiChainImage::Open: one expected uuid per layer");
  }
  std::unique_ptr<VdiChainImage> image(new VdiChainImage());
  for (size_t i = 0; i < chain.size(); ++i) {
    Layer& layer = image->layers_.emplace_back();
    layer.path = chain[i];
    const std::string p = Printable(layer.path);
    // O_NONBLOCK: a FIFO in the chain must not hang the open (it fails the check below).
    layer.fd = ::open(layer.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (layer.fd < 0) return Status::FromErrno(errno, fmt::format("open {}", p));
    struct stat st;
    if (::fstat(layer.fd, &st) != 0) return Status::FromErrno(errno, fmt::format("stat {}", p));
    if (!S_ISREG(st.st_mode)) {
      return Status::InvalidArgument(fmt::format("{} is not a regular file", p));
    }
    const uint64_t file_size = static_cast<uint64_t>(st.st_size);
    std::vector<uint8_t> head(std::min<uint64_t>(file_size, 512));
    VV_RETURN_IF_ERROR(ReadFull(layer.fd, 0, head, layer.path));
    VV_ASSIGN_OR_RETURN(layer.header, ParseVdiHeader(head, file_size, layer.path));
    const VdiHeader& h = layer.header;

    // The chain's links.
    const bool differencing = h.type == VdiType::kDifferencing;
    if (i == 0 && differencing) {
      return Status::InvalidArgument(
          fmt::format("{} is a differencing VDI image, but no parent was given for it", p));
    }
    if (i > 0 && !differencing) {
      return Status::InvalidArgument(fmt::format(
          "{} is a base VDI image, not a differencing image of {}", p, Printable(chain[i - 1])));
    }
    if (i > 0) {
      const VdiHeader& parent = image->layers_[i - 1].header;
      if (h.uuid_linkage != parent.uuid_create) {
        return Status::Corruption(
            fmt::format("{} is a differencing image of {}, but its parent {} is {}", p,
                        VdiUuidString(h.uuid_linkage), Printable(chain[i - 1]),
                        VdiUuidString(parent.uuid_create)));
      }
      if (parent.disk_size > h.disk_size) {
        return Status::Corruption(fmt::format("{} holds {} bytes, less than its parent {} ({})", p,
                                              h.disk_size, Printable(chain[i - 1]),
                                              parent.disk_size));
      }
    }
    if (!expected_uuids.empty()) {
      VV_ASSIGN_OR_RETURN(const std::string want, NormalizeVboxUuid(expected_uuids[i]));
      if (VdiUuidString(h.uuid_create) != want) {
        return Status::InvalidArgument(
            fmt::format("{} has uuid {}, but the media registry lists it as {}", p,
                        VdiUuidString(h.uuid_create), want));
      }
    }

    std::vector<uint8_t> raw(uint64_t{h.blocks} * 4);
    VV_RETURN_IF_ERROR(ReadFull(layer.fd, h.offset_blocks, raw, layer.path));
    layer.map.resize(h.blocks);
    for (size_t k = 0; k < layer.map.size(); ++k) {
      layer.map[k] = GetLittleEndian32(raw.data() + 4 * k);
    }
    VV_RETURN_IF_ERROR(CheckVdiBlockMap(h, layer.map, file_size, layer.path));
  }
  image->size_ = image->layers_.back().header.disk_size;
  return image;
}

VdiChainImage::~VdiChainImage() {
  for (const Layer& l : layers_) {
    if (l.fd >= 0) ::close(l.fd);
  }
}

Status VdiChainImage::ReadLayer(size_t layer, uint64_t offset, std::span<uint8_t> out) const {
  const Layer& l = layers_[layer];
  const VdiHeader& h = l.header;
  while (!out.empty()) {
    if (offset >= h.disk_size) {  // a lower layer smaller than the disk
      std::memset(out.data(), 0, out.size());
      return Status::OK();
    }
    const uint64_t block = offset / h.block_size;
    const uint64_t in_block = offset % h.block_size;
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>({out.size(), h.block_size - in_block, h.disk_size - offset}));
    const uint32_t entry = l.map[block];
    switch (KindOf(entry)) {
      case BlockKind::kData:
        VV_RETURN_IF_ERROR(ReadFull(l.fd, DataOffset(h, entry) + in_block, out.first(n), l.path));
        break;
      case BlockKind::kZero:
        std::memset(out.data(), 0, n);
        break;
      case BlockKind::kFree:
        if (layer == 0) {
          std::memset(out.data(), 0, n);
        } else {
          VV_RETURN_IF_ERROR(ReadLayer(layer - 1, offset, out.first(n)));
        }
        break;
    }
    offset += n;
    out = out.subspan(n);
  }
  return Status::OK();
}

Status VdiChainImage::ReadAt(uint64_t offset, std::span<uint8_t> out) {
  if (offset > size_ || out.size() > size_ - offset) {
    return Status::InvalidArgument(
        fmt::format("read of {} bytes at {} past the end ({} bytes) of {}", out.size(), offset,
                    size_, Printable(layers_.back().path)));
  }
  return ReadLayer(layers_.size() - 1, offset, out);
}

void VdiChainImage::CollectExtents(size_t layer, uint64_t start, uint64_t end,
                                   std::vector<Extent>* out) const {
  const Layer& l = layers_[layer];
  const VdiHeader& h = l.header;
  const uint64_t stop = std::min(end, h.disk_size);
  uint64_t offset = start;
  while (offset < stop) {
    // A run of blocks of one kind.
    uint64_t block = offset / h.block_size;
    const BlockKind kind = KindOf(l.map[block]);
    uint64_t run_end = std::min(stop, (block + 1) * h.block_size);
    while (run_end < stop && KindOf(l.map[run_end / h.block_size]) == kind) {
      run_end = std::min(stop, run_end + h.block_size);
    }
    if (kind == BlockKind::kData) {
      out->push_back({offset, run_end - offset, true});
    } else if (kind == BlockKind::kZero || layer == 0) {
      out->push_back({offset, run_end - offset, false});
    } else {
      CollectExtents(layer - 1, offset, run_end, out);
    }
    offset = run_end;
  }
  if (offset < end) out->push_back({offset, end - offset, false});
}

Result<std::vector<Extent>> VdiChainImage::Extents() {
  std::vector<Extent> out;
  CollectExtents(layers_.size() - 1, 0, size_, &out);
  return NormalizeExtents(std::move(out));
}

}  // namespace vmvault::ingest
