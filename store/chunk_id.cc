#include "store/chunk_id.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/bytes.h"

namespace vmvault::store {

std::string ChunkId::hex() const { return ToHex(std::span<const uint8_t>(bytes)); }

ChunkHasher::ChunkHasher(std::string_view secret) {
  static_assert(sizeof(xxh_secret_) >= XXH3_SECRET_SIZE_MIN);
  // Derive a full-entropy XXH3 secret from the repository secret.
  (void)XXH3_generateSecret(xxh_secret_.data(), xxh_secret_.size(), secret.data(), secret.size());
}

ChunkId ChunkHasher::Hash(std::span<const uint8_t> plaintext) const {
  const XXH128_hash_t h =
      XXH3_128bits_withSecret(plaintext.data(), plaintext.size(), xxh_secret_.data(),
                              xxh_secret_.size());
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, h);
  ChunkId id;
  std::memcpy(id.bytes.data(), canon.digest, 16);
  if (id.is_zero()) id.bytes[15] = 1;  // the zero id is reserved for holes
  return id;
}

}  // namespace vmvault::store
