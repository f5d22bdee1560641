// VdiChainImage: a VirtualBox disk read straight from its chain of VDI files (a base
// image and the differencing images of its snapshots above it), because qemu's vdi
// driver refuses differencing images (image type 4). Layout after VirtualBox's
// src/VBox/Storage/VDICore.h:
//
//   0     pre-header: 64 bytes of text, signature 0xbeda107f, version (major << 16 | minor)
//   72    header 1.1: size, type (1 dynamic, 2 static, 3 undo, 4 differencing), flags,
//         comment[256], block map offset, data offset, legacy geometry, unused, disk size
//         (u64), block size, block extra, blocks, blocks allocated, uuids create, modify,
//         linkage (the parent's create uuid), parent modify; all little-endian
//   ...   block map: one u32 per block: the index of its data block, 0xffffffff (not
//         allocated: zeros in a base image, the parent's bytes in a differencing one) or
//         0xfffffffe (zeros)
//   ...   data: block i at data offset + i * (block size + block extra) + block extra
//
// Open() checks every header field and every block-map entry against the file's size
// and the chain's links (each child's linkage uuid is its parent's create uuid; a lower
// layer is never larger than the one above it), so a damaged file is an error there,
// never a read out of range later. Reads at or beyond a layer's own disk size (a disk
// grown after a snapshot) see zeros there.
//
// The image owns one read-only file descriptor per layer and reads with pread: after
// Open() nothing changes, so ReadAt and Extents are thread-safe and one VdiChainImage can
// serve every reader thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/image.h"
#include "base/result.h"

namespace vmvault::ingest {

inline constexpr uint32_t kVdiSignature = 0xbeda107f;
inline constexpr uint64_t kVdiPreHeaderSize = 72;
inline constexpr uint32_t kVdiHeaderMinSize = 384;  // VDIHEADER1; VDIHEADER1PLUS is 400
inline constexpr uint32_t kVdiBlockFree = 0xffffffff;
inline constexpr uint32_t kVdiBlockZero = 0xfffffffe;
// Beyond VirtualBox's own limits (it writes 1 MiB blocks); bounds what a crafted header
// can make us allocate.
inline constexpr uint32_t kVdiMaxBlockSize = 256u << 20;
inline constexpr size_t kVdiMaxChainLength = 300;

enum class VdiType : uint32_t { kDynamic = 1, kStatic = 2, kUndo = 3, kDifferencing = 4 };

using VdiUuid = std::array<uint8_t, 16>;

struct VdiHeader {
  uint16_t version_major = 0;
  uint16_t version_minor = 0;
  uint32_t header_size = 0;
  VdiType type = VdiType::kDynamic;
  uint32_t flags = 0;
  uint32_t offset_blocks = 0;
  uint32_t offset_data = 0;
  uint64_t disk_size = 0;
  uint32_t block_size = 0;
  uint32_t block_extra = 0;
  uint32_t blocks = 0;
  uint32_t blocks_allocated = 0;
  VdiUuid uuid_create{};
  VdiUuid uuid_modify{};
  VdiUuid uuid_linkage{};
  VdiUuid uuid_parent_modify{};
};

// Parses and checks the pre-header and header at the start of a VDI file. `bytes` is
// the file's first bytes (at least kVdiPreHeaderSize + kVdiHeaderMinSize of them unless
// the file is shorter), `file_size` its size; `path` names it in messages.
// InvalidArgument for a file that is no VDI image, Unsupported for versions other than
// 1.x and undo images, Corruption for a header that contradicts itself or the file size.
// Pure: fuzzable.
Result<VdiHeader> ParseVdiHeader(std::span<const uint8_t> bytes, uint64_t file_size,
                                 const std::string& path);

// Checks a block map (already in host byte order) against its header and the file size:
// every allocated entry below the header's block count with its data inside the file.
Status CheckVdiBlockMap(const VdiHeader& header, std::span<const uint32_t> map, uint64_t file_size,
                        const std::string& path);

// VirtualBox's string form of a uuid stored in a VDI header (RTUUID: the first three
// fields little-endian): "0a1b2c3d-...", lower case, as in the media registry.
std::string VdiUuidString(const VdiUuid& uuid);

class VdiChainImage final : public Image {
 public:
  // Opens `chain`, base first. `expected_uuids`, when not empty, holds the uuid the media
  // registry gives each layer (any case, braces or not); each layer's create uuid must
  // match it (VirtualBox refuses such a mismatch too).
  static Result<std::unique_ptr<VdiChainImage>> Open(
      const std::vector<std::string>& chain, const std::vector<std::string>& expected_uuids = {});
  ~VdiChainImage() override;
  VdiChainImage(const VdiChainImage&) = delete;
  VdiChainImage& operator=(const VdiChainImage&) = delete;

  // The top layer's disk size.
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override;
  // Data where the topmost layer that decides a block has it allocated; holes where that
  // layer marks it zero, or no layer has it.
  Result<std::vector<Extent>> Extents() override;

  size_t layer_count() const { return layers_.size(); }
  const VdiHeader& header(size_t layer) const { return layers_.at(layer).header; }
  const std::string& path(size_t layer) const { return layers_.at(layer).path; }

 private:
  struct Layer {
    std::string path;
    int fd = -1;
    VdiHeader header;
    std::vector<uint32_t> map;
  };
  VdiChainImage() = default;
  Status ReadLayer(size_t layer, uint64_t offset, std::span<uint8_t> out) const;
  void CollectExtents(size_t layer, uint64_t start, uint64_t end, std::vector<Extent>* out) const;

  std::vector<Layer> layers_;
  uint64_t size_ = 0;
};

}  // namespace vmvault::ingest
