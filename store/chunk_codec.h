// The stored form of a chunk (see store/FORMAT.md, "Chunk values"):
//
//   byte 0      codec: 0 = raw bytes, 1 = one zstd frame
//   bytes 1..4  plaintext length, little-endian uint32
//   bytes 5..   payload
//
// ChunkEncoder compresses with zstd at the repository's level and falls back to the raw
// bytes when compression does not make them smaller. ChunkDecoder reverses it. Each
// owns a zstd context: one per thread, neither is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace vmvault::store {

enum class ChunkCodec : uint8_t { kRaw = 0, kZstd = 1 };
inline constexpr size_t kChunkHeaderSize = 5;

class ChunkEncoder {
 public:
  explicit ChunkEncoder(int zstd_level);
  ~ChunkEncoder();
  ChunkEncoder(const ChunkEncoder&) = delete;
  ChunkEncoder& operator=(const ChunkEncoder&) = delete;

  // Replaces *out with the stored form of `plaintext`.
  void Encode(std::span<const uint8_t> plaintext, std::string* out);

 private:
  int level_;
  ZSTD_CCtx_s* cctx_;
};

class ChunkDecoder {
 public:
  ChunkDecoder();
  ~ChunkDecoder();
  ChunkDecoder(const ChunkDecoder&) = delete;
  ChunkDecoder& operator=(const ChunkDecoder&) = delete;

  // Replaces *out with the plaintext of stored value `value`. A value that does not
  // decode, or decodes to a length other than its header says, is Corruption.
  Status Decode(std::string_view value, std::string* out);

 private:
  ZSTD_DCtx_s* dctx_;
};

// The plaintext length recorded in a stored value's header, or 0 if it has none.
uint32_t EncodedPlainLength(std::string_view value);

}  // namespace vmvault::store
