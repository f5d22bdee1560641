// mount.vmvault's command line: what mount(8) passes to a filesystem helper
// (`mount.vmvault SOURCE DIR [-sfnv] [-N NS] [-t TYPE] [-o OPTIONS]`, see mount(8),
// "External helpers") turned into the arguments of `vmvault mount`. Pure: it reads
// nothing but the user and group databases (uid=NAME, gid=NAME). Thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace vmvault::tools {

struct HelperCall {
  std::vector<std::string> vmvault_args;  // after the program: {"mount", "--repo", ...}
  std::vector<std::string> notes;         // to print on stderr before mounting
  bool fake = false;                      // -f: print what would run, mount nothing
  bool verbose = false;                   // -v
};

// `args` are the helper's arguments without the program name. InvalidArgument with a
// message naming the culprit on a missing SOURCE or DIR, an unknown flag, or an unknown
// or bad mount option (unless -s, which ignores unknown options with a note).
Result<HelperCall> ParseHelperArgs(const std::vector<std::string>& args);

}  // namespace vmvault::tools
