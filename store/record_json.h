// JSON forms of catalog records. One definition serves the catalog's stored encoding
// (catalog.cc), each backup's manifest.json in the mount, and `vmvault list --json`, so
// a disk is described the same way everywhere. Field meanings: store/FORMAT.md.
#pragma once

#include <utility>

#include <nlohmann/json.hpp>

#include "store/catalog.h"

namespace vmvault::store {

nlohmann::json DiskRecordToJson(const DiskRecord& d);
// Throws nlohmann::json::exception when a field is missing or of the wrong type; the
// catalog's decoder turns that into Corruption.
DiskRecord DiskRecordFromJson(const nlohmann::json& j);
// {"time", "ok", "sample_percent", "chunks", "problems"}, or null when never verified.
nlohmann::json VerificationToJson(const std::optional<VerifyRecord>& v);

// The integer `j` holds, as T. Throws nlohmann::json::type_error unless `j` is an
// integer T can hold: nlohmann's own get<T>() converts a float or an out-of-range
// number without a word (undefined behaviour for a float too large, as fuzzing found).
template <typename T>
T JsonInt(const nlohmann::json& j) {
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (std::in_range<T>(v)) return static_cast<T>(v);
  } else if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (std::in_range<T>(v)) return static_cast<T>(v);
  }
  throw nlohmann::json::type_error::create(302, "not an integer in range: " + j.dump(), &j);
}
// The same for an optional member `key` of object `j`: `fallback` when it is absent.
template <typename T>
T JsonInt(const nlohmann::json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  return it == j.end() ? fallback : JsonInt<T>(*it);
}

}  // namespace vmvault::store
