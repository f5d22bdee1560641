// The domain-XML reader on untrusted text (a backup's domain.xml, or what a libvirt
// host returns): ParseDomainXml, the disk choice, and the documents written from what
// it parsed (backup job XML, restore rewrite), which must themselves parse again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "ingest/domain_xml.h"

using vmvault::fuzz::Check;
using namespace vmvault::ingest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  auto dom = ParseDomainXml(xml);
  (void)DacOwner(xml);
  if (!dom.ok()) return 0;
  for (bool all : {false, true}) {
    DiskChoiceOptions o;
    o.include_readonly = o.include_removable = o.skip_unreadable = all;
    auto choices = ChooseDisks(*dom, o);
    if (!choices.ok()) continue;
    Check(choices->size() == dom->disks.size());
    BackupSpec spec;
    spec.socket_path = "/run/vmvault/backup.sock";
    spec.disks = *choices;
    if (auto backup = BackupXml(spec); backup.ok()) Check(!backup->empty());
  }
  // The restore rewrite of every disk onto a new image; the result parses again.
  RestoreRewrite r;
  r.name = "fuzz-restored";
  r.uuid = "6f0c1cde-2f3c-4f7e-9d7a-5a1b2c3d4e5f";
  r.drop_unmapped_disks = true;
  uint32_t seed = 1;
  r.random = [&seed] { return seed = seed * 1664525u + 1013904223u; };
  for (const DiskConfig& d : dom->disks) {
    if (!d.target_dev.empty()) r.disks[d.target_dev] = {"/var/lib/libvirt/images/" + d.target_dev + ".qcow2", "qcow2"};
  }
  if (auto rewritten = RewriteDomainForRestore(xml, r); rewritten.ok()) {
    auto again = ParseDomainXml(*rewritten);
    Check(again.ok() && again->name == "fuzz-restored");
  }
  return 0;
}
