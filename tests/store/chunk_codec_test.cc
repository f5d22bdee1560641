#include "store/chunk_codec.h"

#include <gtest/gtest.h>

#include "store/chunk_id.h"
#include "test_util.h"

namespace vmvault::store {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ChunkCodecTest, CompressibleDataIsZstd) {
  const std::string plain = testing::TextBytes(1 << 20, 1);
  ChunkEncoder enc(3);
  std::string value;
  enc.Encode(Bytes(plain), &value);
  EXPECT_EQ(value[0], static_cast<char>(ChunkCodec::kZstd));
  EXPECT_LT(value.size(), plain.size() / 4);
  EXPECT_EQ(EncodedPlainLength(value), plain.size());
  ChunkDecoder dec;
  std::string out;
  ASSERT_TRUE(dec.Decode(value, &out).ok());
  EXPECT_EQ(out, plain);
}

TEST(ChunkCodecTest, IncompressibleDataIsStoredRaw) {
  const std::string plain = testing::RandomBytes(65536, 2);
  ChunkEncoder enc(3);
  std::string value;
  enc.Encode(Bytes(plain), &value);
  EXPECT_EQ(value[0], static_cast<char>(ChunkCodec::kRaw));
  EXPECT_EQ(value.size(), plain.size() + kChunkHeaderSize);
  ChunkDecoder dec;
  std::string out;
  ASSERT_TRUE(dec.Decode(value, &out).ok());
  EXPECT_EQ(out, plain);
}

TEST(ChunkCodecTest, CorruptValuesAreErrorsNotBytes) {
  const std::string plain = testing::TextBytes(100000, 3);
  ChunkEncoder enc(3);
  std::string value;
  enc.Encode(Bytes(plain), &value);
  ChunkDecoder dec;
  std::string out;
  EXPECT_TRUE(dec.Decode(value.substr(0, 3), &out).IsCorruption());
  EXPECT_TRUE(dec.Decode(value.substr(0, value.size() - 10), &out).IsCorruption());
  std::string bad_codec = value;
  bad_codec[0] = 9;
  EXPECT_TRUE(dec.Decode(bad_codec, &out).IsCorruption());
  std::string bad_len = value;
  bad_len[1] ^= 1;
  EXPECT_TRUE(dec.Decode(bad_len, &out).IsCorruption());
}

TEST(ChunkIdTest, KeyedBySecret) {
  const std::string plain = "hello";
  ChunkHasher a("secret-a-0123456789abcdef0123456"), b("secret-b-0123456789abcdef0123456");
  EXPECT_EQ(a.Hash(Bytes(plain)), a.Hash(Bytes(plain)));
  EXPECT_NE(a.Hash(Bytes(plain)), b.Hash(Bytes(plain)));
  EXPECT_FALSE(a.Hash(Bytes(plain)).is_zero());
  EXPECT_TRUE(kZeroChunkId.is_zero());
  EXPECT_EQ(a.Hash(Bytes(plain)).hex().size(), 32u);
}

// Chunk ids are part of the repository format: a later ingest must find the chunks an
// earlier one stored, and verify recomputes them. These were computed by the portable
// (SSE2) XXH3 the hasher used before it took the library's run-time dispatch; whatever
// vectors the CPU has, the ids must stay the same. The sizes cross XXH3's short-input
// paths (16, 128, 240 bytes) into its long, vectorized one.
TEST(ChunkIdTest, KnownAnswers) {
  const ChunkHasher hasher("known-answer-secret-0123456789abcdef");
  const std::pair<size_t, std::string_view> known[] = {
      {0, "f4cbf2718c7ffcc5b42ce72d70be09bb"},     {1, "410909aa49da92cbe99007379754cc1a"},
      {16, "17508c275d8d7afcef3c2bd12594bdf1"},    {17, "a20571e15e5b99bcde8068d4872e5016"},
      {128, "dbffe5e670350add169db218e811171f"},   {129, "a34866af0d5e5fde0b5e402fc66d3d40"},
      {240, "f1b1e5f9e0f8eb2057b5d297ee92dd43"},   {241, "5f277b7fefd2dac8efc659593d01e330"},
      {1024, "a07d8d7b39b5632436d0b39a21ed62ea"},  {4096, "6aae2db084069a0d77e77ed1396ca3b5"},
      {65536, "c0d3833542e328d5785f29067698c607"}, {1048576, "1ddfbae98232824055a845dc997320c9"},
  };
  for (const auto& [size, hex] : known) {
    std::string plain(size, '\0');
    for (size_t i = 0; i < size; i++) plain[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
    EXPECT_EQ(hasher.Hash(Bytes(plain)).hex(), hex) << size << " bytes";
  }
}

}  // namespace
}  // namespace vmvault::store
