#include "base/bytes.h"

#include <vector>

#include <gtest/gtest.h>

#include "base/image.h"

namespace vmvault {
namespace {

TEST(BytesTest, BigEndianRoundTripSortsNumerically) {
  std::string a, b;
  PutBigEndian64(&a, 255);
  PutBigEndian64(&b, 256);
  EXPECT_LT(a, b);
  EXPECT_EQ(GetBigEndian64(a.data()), 255u);
  std::string c;
  PutBigEndian32(&c, 0xdeadbeef);
  EXPECT_EQ(GetBigEndian32(c.data()), 0xdeadbeefu);
}

TEST(BytesTest, HexRoundTrip) {
  std::string out;
  EXPECT_EQ(ToHex(std::string_view("\x01\xab", 2)), "01ab");
  ASSERT_TRUE(FromHex("01AB", &out));
  EXPECT_EQ(out, std::string("\x01\xab", 2));
  EXPECT_FALSE(FromHex("0", &out));
  EXPECT_FALSE(FromHex("zz", &out));
}

TEST(BytesTest, LittleEndianReads) {
  const uint8_t b[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88};
  EXPECT_EQ(GetLittleEndian16(b), 0x0201u);
  EXPECT_EQ(GetLittleEndian32(b), 0x04030201u);
  EXPECT_EQ(GetLittleEndian64(b), 0x8807060504030201u);
}

TEST(BytesTest, Crc32MatchesTheCheckValue) {
  const std::string_view check = "123456789";
  EXPECT_EQ(Crc32({reinterpret_cast<const uint8_t*>(check.data()), check.size()}), 0xcbf43926u);
  EXPECT_EQ(Crc32({}), 0u);
}

TEST(BytesTest, IsAllZeroFindsAnyNonZeroByte) {
  std::vector<uint8_t> buf(4099, 0);
  EXPECT_TRUE(IsAllZero(buf));
  for (size_t pos : {size_t{0}, size_t{7}, size_t{64}, size_t{4000}, size_t{4098}}) {
    buf[pos] = 1;
    EXPECT_FALSE(IsAllZero(buf)) << pos;
    // Unaligned starts too.
    EXPECT_FALSE(IsAllZero(std::span<const uint8_t>(buf).subspan(pos > 3 ? 3 : 0))) << pos;
    buf[pos] = 0;
  }
  EXPECT_TRUE(IsAllZero(std::span<const uint8_t>()));
}

TEST(ImageTest, NormalizeMergesAndDropsEmpty) {
  auto out = NormalizeExtents({{0, 10, true}, {10, 5, true}, {15, 0, false}, {15, 5, false},
                               {20, 5, false}, {25, 1, true}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], (Extent{0, 15, true}));
  EXPECT_EQ(out[1], (Extent{15, 10, false}));
  EXPECT_EQ(out[2], (Extent{25, 1, true}));
}

}  // namespace
}  // namespace vmvault
