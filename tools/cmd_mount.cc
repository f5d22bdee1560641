// vmvault mount: show every backup as a read-only filesystem.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "fs/mount.h"
#include "tools/cli.h"

namespace vmvault::tools {

Command MountCommand() {
  return {"mount", "Show every backup as a read-only filesystem (unmount with fusermount3 -u)",
          [](CLI::App& app, GlobalOptions& global) {
            auto opts = std::make_shared<fs::MountOptions>();
            auto cache = std::make_shared<std::string>("64M");
            auto layout = std::make_shared<std::string>("vm");
            auto views = std::make_shared<std::string>("all");
            app.add_option("mountpoint", opts->mountpoint, "An empty directory")->required();
            app.add_flag("-f,--foreground", opts->foreground, "Stay in the foreground");
            app.add_flag("-d,--debug", opts->debug, "Log every request (implies -f)");
            app.add_flag("--allow-other", opts->allow_other,
                         "Let other users read the mount (needs user_allow_other in "
                         "/etc/fuse.conf unless root)");
            app.add_option("--uid", opts->uid,
                           "Owner shown for every file (default: the user who mounts)");
            app.add_option("--gid", opts->gid,
                           "Group shown for every file (default: the user's group)");
            app.add_option("--cache-size", *cache, "Cache of decompressed chunks (default 64M)");
            app.add_option("--layout", *layout,
                           "vm: every backup, as /VM/PERIOD/BACKUP/ (default); staging: each "
                           "VM's latest backup only, as /TIER/ORIGINAL-PATH/, a staging area "
                           "for tape tools");
            app.add_option("--views", *views,
                           "The files each disk shows: a list of raw, qcow2, vhdx, vmdk, part "
                           "(default all), e.g. --views qcow2 to copy every disk once");
            app.add_option("-o", opts->fuse_options, "Extra FUSE mount options");
            return [&global, opts, cache, layout, views]() -> Status {
              VV_ASSIGN_OR_RETURN(uint64_t bytes, ParseSize(*cache));
              opts->cache_bytes = bytes;
              VV_ASSIGN_OR_RETURN(opts->tree.layout, fs::ParseLayout(*layout));
              VV_ASSIGN_OR_RETURN(opts->tree.views, fs::ViewSet::Parse(*views));
              opts->repo_path = global.repo;
              return fs::RunMount(*opts);
            };
          }};
}

}  // namespace vmvault::tools
