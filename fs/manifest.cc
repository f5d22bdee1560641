#include "fs/manifest.h"

#include <nlohmann/json.hpp>

#include "base/time_format.h"

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
  j["vm_origin"] = vm.origin;
  j["vm_period"] = std::string(PeriodName(vm.period));
  json disks = json::array();
  for (size_t i = 0; i < b.disks.size(); ++i) {
    const store::DiskRecord& d = b.disks[i];
    disks.push_back({
        {"name", d.name},
        {"file", i < in.disk_files.size() ? in.disk_files[i] : std::string()},
        {"virtual_size", d.virtual_size},
        {"chunk_size", d.chunk_size},
        {"source_format", d.source_format},
        {"source_path", d.source_path},
        {"allocated_bytes", d.allocated_bytes},
        {"bytes_read", d.bytes_read},
        {"data_chunks", d.data_chunks},
        {"new_chunks", d.new_chunks},
        {"new_bytes", d.new_stored_bytes},
        {"stored_bytes", d.stored_bytes},
    });
  }
  j["disks"] = std::move(disks);
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace vmvault::fs
