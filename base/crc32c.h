// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of iSCSI
// (RFC 3720), ext4 metadata and the VHDX format's headers and region tables.
// Table-driven, slicing-by-8: the tables are built once at static initialization and
// shared read-only, so every function here is thread-safe and allocation-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace vmvault {

// The CRC-32C of `n` bytes at `data` (initial value ~0, final XOR ~0: the standard
// CRC-32C, so Crc32c("123456789") == 0xE3069283).
uint32_t Crc32c(const void* data, size_t n);
inline uint32_t Crc32c(std::span<const uint8_t> data) { return Crc32c(data.data(), data.size()); }
inline uint32_t Crc32c(std::string_view data) { return Crc32c(data.data(), data.size()); }

// Continues a CRC-32C: Crc32cExtend(Crc32c(a), b) == Crc32c(a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

}  // namespace vmvault
