#include "fs/manifest.h"

#include <nlohmann/json.hpp>

#include "base/time_format.h"
#include "store/record_json.h"

namespace vmvault::fs {

std::string BuildManifest(const ManifestInput& in) {
  using nlohmann::json;
  const store::VmRecord& vm = *in.vm;
  const store::BackupRecord& b = *in.backup;
  json j;
  j["format"] = "vmvault-manifest";
  j["version"] = 1;
  j["vm"] = b.vm;
  j["backup"] = b.name();
  j["id"] = b.id;
  j["time"] = FormatIsoTime(b.time_us);
  j["time_us"] = b.time_us;
  j["tier"] = b.tier;
  j["method"] = b.method;
  j["parent"] = in.parent_name ? json(*in.parent_name) : json(nullptr);
  j["parent_id"] = b.parent_id ? json(*b.parent_id) : json(nullptr);
  j["host"] = b.host;
  j["duration_seconds"] = static_cast<double>(b.duration_us) / 1e6;
  j["config_kind"] = b.config_kind;
  j["config_file"] = in.config_file.empty() ? json(nullptr) : json(in.config_file);
  j["checkpoint"] = b.checkpoint.empty() ? json(nullptr) : json(b.checkpoint);
  j["fs_frozen"] = b.fs_frozen;
  j["pause_seconds"] = static_cast<double>(b.pause_us) / 1e6;
  j["vm_origin"] = vm.origin;
  j["vm_period"] = std::string(PeriodName(vm.period));
  json disks = json::array();
  for (size_t i = 0; i < b.disks.size(); ++i) {
    const store::DiskRecord& d = b.disks[i];
    json disk = store::DiskRecordToJson(d);
    const bool raw_shown = i < in.disk_files.size() && !in.disk_files[i].empty();
    disk["file"] = raw_shown ? json(in.disk_files[i]) : json(nullptr);
    disk["files"] = i < in.disk_views.size() ? in.disk_views[i] : std::vector<std::string>();
    disks.push_back(std::move(disk));
  }
  j["disks"] = std::move(disks);
  j["verified"] = store::VerificationToJson(in.verification);
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace vmvault::fs
