// RunMount: `vmvault mount`. Validates the mountpoint and the repository, mounts the
// FUSE filesystem, daemonizes unless `foreground`, opens the repository as a follower
// (RocksDB starts threads, so only after the fork), and serves requests on a
// multithreaded loop until the filesystem is unmounted (`fusermount3 -u`) or the
// process gets SIGINT, SIGTERM or SIGHUP.
//
// After daemonizing, logs go to syslog (ident "vmvault"). In the foreground they go
// to stderr.
//
// In the foreground RunMount blocks until unmounted. In the background it forks: the
// parent returns as soon as the child has opened the repository, with OK when the
// mount is up and the child's error otherwise (the child then unmounts and returns
// that error too, with its output detached); the child returns when unmounted. Call
// it from one thread of a process that has not started other threads yet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "fs/tree.h"

namespace vmvault::fs {

struct MountOptions {
  std::string repo_path;
  std::string mountpoint;
  bool foreground = false;   // -f: do not daemonize
  bool allow_other = false;  // -o allow_other: let other users in (needs user_allow_other)
  bool debug = false;        // log every FUSE request (libfuse -d); implies foreground
  std::optional<uint32_t> uid, gid;  // owner shown for every node; unset: the process's
  size_t cache_bytes = 64 << 20;     // decompressed chunk cache
  size_t readahead_bytes = 8 << 20;  // warmed ahead of each sequential reader
  size_t threads = 0;                // FUSE worker threads; 0 = max(4, hardware threads)
  size_t prefetch_threads = 0;       // 0 = DefaultPrefetchThreads()
  double refresh_interval_s = 1.0;   // how stale a listing of new backups may be
  TreeOptions tree;                  // --layout, --views
  std::vector<std::string> fuse_options;  // extra -o options, passed to libfuse as is
};

// OK when `path` is an empty directory. NotFound / InvalidArgument with a message
// that names the path otherwise.
Status ValidateMountpoint(const std::string& path);

// OK when the repository at `repo_path` opens read-only. The open happens in a
// short-lived child process: RocksDB leaves threads behind even after a close, and a
// daemonizing mount forks, so a process that will call RunMount must not open the
// repository itself. RunMount calls this first; a CLI that wants its own exit code
// for a bad repository can call it too. Errors keep the store's StatusCode.
Status CheckRepository(const std::string& repo_path);

// A missing repository is FailedPrecondition, as is one of another format version.
Status RunMount(const MountOptions& options);

}  // namespace vmvault::fs
