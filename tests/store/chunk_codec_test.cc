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

}  // namespace
}  // namespace vmvault::store
