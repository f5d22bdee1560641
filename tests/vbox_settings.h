// VirtualBox settings files for tests, written after VirtualBox's own format (no
// VirtualBox is installed where the tests run): one machine with one hard disk.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace vmvault::testing {

// The machine uuid VboxMachineXml writes, without braces, as VBoxManage prints it.
inline constexpr char kVboxMachineUuid[] = "7e2d9f3a-1c8b-4d4a-8a2f-4b6c8d0e2f3a";

// The uuid of layer `i` (0: the base) of the disk VboxMachineXml writes.
inline std::string VboxLayerUuid(size_t i) {
  return fmt::format("c0000000-0000-4000-8000-{:012}", i + 1);
}

// A .vbox file's text: machine `name` whose one hard disk (port 0 of `controller`) is
// the snapshot chain `layers` (location relative to the .vbox, format), base first,
// nested in the media registry as VirtualBox writes it, the top attached. `name` and
// `controller` go into the XML as they are (character references included).
inline std::string VboxMachineXml(const std::string& name,
                                  const std::vector<std::pair<std::string, std::string>>& layers,
                                  const std::string& controller = "SATA") {
  std::string disks, closing;
  for (size_t i = 0; i < layers.size(); ++i) {
    disks += fmt::format(R"(<HardDisk uuid="{{{}}}" location="{}" format="{}"{}>)",
                         VboxLayerUuid(i), layers[i].first, layers[i].second,
                         i == 0 ? R"( type="Normal")" : "");
    closing = "</HardDisk>" + closing;
  }
  return fmt::format(R"(<?xml version="1.0"?>
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
  <Machine uuid="{{{}}}" name="{}" OSType="Debian_64">
    <MediaRegistry><HardDisks>
      {}{}
    </HardDisks></MediaRegistry>
    <Hardware>
      <StorageControllers>
        <StorageController name="{}" type="AHCI" PortCount="1">
          <AttachedDevice type="HardDisk" port="0" device="0"><Image uuid="{{{}}}"/></AttachedDevice>
        </StorageController>
      </StorageControllers>
    </Hardware>
  </Machine>
</VirtualBox>
)",
                     kVboxMachineUuid, name, disks, closing, controller,
                     VboxLayerUuid(layers.size() - 1));
}

}  // namespace vmvault::testing
