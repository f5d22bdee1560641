#include "store/chunk_codec.h"

#include "store/catalog.h"  // kMaxChunkSize

#include <zstd.h>

#include <fmt/format.h>

#include "base/bytes.h"

namespace vmvault::store {

ChunkEncoder::ChunkEncoder(int zstd_level) : level_(zstd_level), cctx_(ZSTD_createCCtx()) {
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level_);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 0);  // the chunk id is the checksum
}

ChunkEncoder::~ChunkEncoder() { ZSTD_freeCCtx(cctx_); }

void ChunkEncoder::Encode(std::span<const uint8_t> plaintext, std::string* out) {
  const size_t bound = ZSTD_compressBound(plaintext.size());
  out->resize(kChunkHeaderSize + bound);
  const size_t n = ZSTD_compress2(cctx_, out->data() + kChunkHeaderSize, bound,
                                  plaintext.data(), plaintext.size());
  const bool compressed = !ZSTD_isError(n) && n < plaintext.size();
  if (compressed) {
    out->resize(kChunkHeaderSize + n);
  } else {
    out->resize(kChunkHeaderSize + plaintext.size());
    std::memcpy(out->data() + kChunkHeaderSize, plaintext.data(), plaintext.size());
  }
  (*out)[0] = static_cast<char>(compressed ? ChunkCodec::kZstd : ChunkCodec::kRaw);
  std::string len;
  PutLittleEndian32(&len, static_cast<uint32_t>(plaintext.size()));
  std::memcpy(out->data() + 1, len.data(), 4);
}

ChunkDecoder::ChunkDecoder() : dctx_(ZSTD_createDCtx()) {}
ChunkDecoder::~ChunkDecoder() { ZSTD_freeDCtx(dctx_); }

uint32_t EncodedPlainLength(std::string_view value) {
  if (value.size() < kChunkHeaderSize) return 0;
  return GetLittleEndian32(value.data() + 1);
}

Status ChunkDecoder::Decode(std::string_view value, std::string* out) {
  if (value.size() < kChunkHeaderSize) {
    return Status::Corruption(fmt::format("chunk value of {} bytes is too short", value.size()));
  }
  const uint32_t plain_len = GetLittleEndian32(value.data() + 1);
  if (plain_len > kMaxChunkSize) {  // a damaged header must not size an allocation
    return Status::Corruption(fmt::format("chunk header claims {} bytes", plain_len));
  }
  const std::string_view payload = value.substr(kChunkHeaderSize);
  switch (static_cast<ChunkCodec>(value[0])) {
    case ChunkCodec::kRaw:
      if (payload.size() != plain_len) {
        return Status::Corruption(fmt::format("raw chunk holds {} bytes, its header says {}",
                                              payload.size(), plain_len));
      }
      out->assign(payload);
      return Status::OK();
    case ChunkCodec::kZstd: {
      out->resize(plain_len);
      const size_t n =
          ZSTD_decompressDCtx(dctx_, out->data(), plain_len, payload.data(), payload.size());
      if (ZSTD_isError(n)) {
        return Status::Corruption(
            fmt::format("zstd chunk does not decode: {}", ZSTD_getErrorName(n)));
      }
      if (n != plain_len) {
        return Status::Corruption(
            fmt::format("zstd chunk decodes to {} bytes, its header says {}", n, plain_len));
      }
      return Status::OK();
    }
  }
  return Status::Corruption(
      fmt::format("chunk value has unknown codec {}", static_cast<int>(value[0])));
}

}  // namespace vmvault::store
