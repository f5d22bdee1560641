// FuseMount: the libfuse low-level session that serves a Filesystem. fuse_ops.cc is
// the only file that includes <fuse_lowlevel.h>; this header keeps libfuse out of
// every other file. Every handler catches everything and replies with the Status's
// errno (ENOENT, EROFS, EIO for a chunk failing its checksum, logged with its id).
//
// Usage, in this order: Create (mounts), then (after RunMount forks, in the process
// that serves) Serve, which blocks. The Filesystem is given to Serve because the
// repository must be opened after the fork. The destructor unmounts and destroys the
// session; Abandon() lets a forked parent drop its copy without unmounting.
//
// Not thread-safe: one thread drives it; Serve runs libfuse's worker threads, which
// call into the (thread-safe) Filesystem.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "fs/filesystem.h"
#include "fs/mount.h"

namespace vmvault::fs {

class FuseMount {
 public:
  // fuse_session_new with read-only options, signal handlers, fuse_session_mount.
  static Result<std::unique_ptr<FuseMount>> Create(const MountOptions& options);
  ~FuseMount();
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  // For the parent of a fork: forget the session without unmounting it; the child
  // serves and unmounts it.
  void Abandon();
  // Serves requests with `threads` workers until unmounted or signalled.
  // REQUIRES: fs outlives the call.
  Status Serve(Filesystem* fs, size_t threads);

  struct Impl;

 private:
  explicit FuseMount(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmvault::fs
