// JSON forms of catalog records. One definition serves the catalog's stored encoding
// (catalog.cc), each backup's manifest.json in the mount, and `vmvault list --json`, so
// a disk is described the same way everywhere. Field meanings: store/FORMAT.md.
#pragma once

#include <nlohmann/json.hpp>

#include "store/catalog.h"

namespace vmvault::store {

nlohmann::json DiskRecordToJson(const DiskRecord& d);
// Throws nlohmann::json::exception when a field is missing or of the wrong type; the
// catalog's decoder turns that into Corruption.
DiskRecord DiskRecordFromJson(const nlohmann::json& j);
// {"time", "ok", "sample_percent", "chunks", "problems"}, or null when never verified.
nlohmann::json VerificationToJson(const std::optional<VerifyRecord>& v);

}  // namespace vmvault::store
