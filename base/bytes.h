// Byte helpers for keys and on-disk records: big-endian integers (so keys sort in
// numeric order), little-endian integers (for on-disk formats that use them), hex, and
// the CRC-32 of zlib, gzip and GPT.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace vmvault {

inline void PutBigEndian64(std::string* dst, uint64_t v) {
  for (int i = 7; i >= 0; --i) dst->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void PutBigEndian32(std::string* dst, uint32_t v) {
  for (int i = 3; i >= 0; --i) dst->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline uint64_t GetBigEndian64(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
  return v;
}
inline uint32_t GetBigEndian32(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}
inline void PutLittleEndian32(std::string* dst, uint32_t v) {
  for (int i = 0; i < 4; ++i) dst->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline uint16_t GetLittleEndian16(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}
inline uint32_t GetLittleEndian32(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  return uint32_t{b[0]} | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
}
inline uint64_t GetLittleEndian64(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

std::string ToHex(std::span<const uint8_t> bytes);
inline std::string ToHex(std::string_view s) {
  return ToHex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}
// False when `hex` is not an even number of hex digits.
bool FromHex(std::string_view hex, std::string* out);

// The CRC-32 (ISO-HDLC: reflected polynomial 0xedb88320, as in zlib's crc32()) of
// `data`. Crc32("123456789") is 0xcbf43926.
uint32_t Crc32(std::span<const uint8_t> data);

// True when every byte of `data` is zero. Fast: compares words.
bool IsAllZero(std::span<const uint8_t> data);

}  // namespace vmvault
