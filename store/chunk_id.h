// ChunkId: the 128-bit content address of a chunk, XXH3-128 of its plaintext keyed
// with the repository secret (so a guest cannot craft collisions with other VMs' data).
// The all-zero id is reserved: in a disk index it marks a zero chunk (a hole), and it
// is never the key of a stored chunk.
//
// ChunkHasher is immutable after construction and thread-safe.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace vmvault::store {

struct ChunkId {
  std::array<uint8_t, 16> bytes{};

  bool is_zero() const {
    uint64_t a, b;
    std::memcpy(&a, bytes.data(), 8);
    std::memcpy(&b, bytes.data() + 8, 8);
    return (a | b) == 0;
  }
  // The 16 bytes as a key.
  std::string_view key() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  std::string hex() const;
  // REQUIRES: key.size() == 16.
  static ChunkId FromKey(std::string_view key) {
    ChunkId id;
    std::memcpy(id.bytes.data(), key.data(), 16);
    return id;
  }
  auto operator<=>(const ChunkId&) const = default;
};

inline constexpr ChunkId kZeroChunkId{};

struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const {
    size_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);
    return h;
  }
};

class ChunkHasher {
 public:
  // `secret` is the repository secret; at least 32 bytes.
  explicit ChunkHasher(std::string_view secret);

  // The id of a chunk with this plaintext. Never the zero id.
  ChunkId Hash(std::span<const uint8_t> plaintext) const;

 private:
  std::array<uint8_t, 192> xxh_secret_;
};

}  // namespace vmvault::store
