// The VirtualBox readers on untrusted text: VirtualBox.xml, a .vbox file's media
// registry, and a .vbox machine resolved through its own and a global registry. Every
// disk of a machine that parses has a chain whose layers are absolute paths.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "ingest/virtualbox.h"

using vmvault::fuzz::Check;
using namespace vmvault::ingest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string dir = "/home/fuzz/VirtualBox VMs/m";
  (void)ParseVirtualBoxXml(text, "/home/fuzz/.config/VirtualBox/VirtualBox.xml");
  auto registry = ParseVboxMediaRegistry(text, dir + "/m.vbox");
  auto machine = ParseVboxMachine(text, dir + "/m.vbox", registry.ok() ? &*registry : nullptr);
  if (machine.ok()) {
    for (const VboxDisk& d : machine->disks) {
      Check(!d.chain.empty() && !d.name.empty());
      for (const VboxDiskLayer& l : d.chain) Check(!l.path.empty() && l.path[0] == '/');
    }
  }
  (void)NormalizeVboxUuid(text);
  return 0;
}
