// The options of `vmvault restore`, and the terminal menu of `vmvault restore
// --interactive` that fills them in: a VM, then one of its backups (newest first, with
// time, size and verification), then what to do with it (write its disks to files in a
// chosen format, to a block device, or define a new libvirt domain on them), then a
// confirmation. Every question is a numbered list or a line of text read from `in`;
// 'q' quits, anything else re-asks. The answers become the same RestoreOptions the
// command line gives, so the restore itself runs the same code either way.
//
// AskRestore only reads the catalog; it writes nothing. Not thread-safe (it owns the
// streams while it asks).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "base/result.h"

namespace vmvault::store {
class Catalog;
}

namespace vmvault::tools {

struct RestoreOptions {
  std::string vm;
  std::string backup = "latest";
  std::string to;
  std::string format = "raw";
  std::string disk;
  bool force = false;
  std::string define;   // a new libvirt domain on the restored disks
  std::string connect;  // its libvirt URI ("" = libvirt's default)
  std::string config;   // --config: the file whose pre- and post-restore hooks run
};

// Where --define puts the disk images when --to does not say.
inline constexpr char kDefaultImageDir[] = "/var/lib/libvirt/images";

// Asks on `out`/`in` what to restore and where. nullopt when the user quits ('q' or
// the end of input) or does not confirm; NotFound when the repository holds no backup.
// `defaults` supplies --connect.
Result<std::optional<RestoreOptions>> AskRestore(const store::Catalog& catalog,
                                                 const RestoreOptions& defaults, std::istream& in,
                                                 std::ostream& out);

}  // namespace vmvault::tools
