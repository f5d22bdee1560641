// fs_mount_helper REPO MOUNTPOINT [-f] [--cache-bytes N]: runs fs::RunMount in its own
// process for the integration tests, the way `vmvault mount` will.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fs/mount.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s REPO MOUNTPOINT [-f] [--cache-bytes N]\n", argv[0]);
    return 2;
  }
  vmvault::fs::MountOptions o;
  o.repo_path = argv[1];
  o.mountpoint = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-f") {
      o.foreground = true;
    } else if (arg == "--cache-bytes" && i + 1 < argc) {
      o.cache_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  const vmvault::Status s = vmvault::fs::RunMount(o);
  if (!s.ok()) {
    std::fprintf(stderr, "vmvault mount: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
