// Helpers for tests that hand views to real tools (qemu-img, qemu-io): write a view to
// a sparse file, writing only its data extents (fs::ViewImage: SEEK_DATA/SEEK_HOLE)
// through the one read loop (ViewReader), and run a shell command capturing its
// output. Shared by the image-format view tests (qcow2, VHDX).
//
// Nothing here is thread-safe; the files are the caller's (put them in a TempDir).
#pragma once

#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/view.h"
#include "fs/view_image.h"
#include "fs/view_reader.h"

namespace vmvault::fs::testing {

// Writes `view` to `path` as a sparse file of view->size() bytes: its holes are not
// written. Returns the data bytes written.
inline Result<uint64_t> WriteSparseFile(std::shared_ptr<const View> view, const ViewReader& reader,
                                        const std::string& path) {
  VV_RETURN_IF_ERROR(view->Load());
  ViewImage image(view, &reader);
  VV_ASSIGN_OR_RETURN(std::vector<Extent> extents, image.Extents());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::ftruncate(fd, static_cast<off_t>(view->size())) != 0) {
    return Status::FromErrno(errno, "ftruncate " + path);
  }
  constexpr uint64_t kBlock = 4 << 20;
  std::vector<uint8_t> buf;
  uint64_t written = 0;
  for (const Extent& e : extents) {
    if (!e.data) continue;
    for (uint64_t off = e.offset; off < e.end(); off += kBlock) {
      const uint64_t n = std::min(kBlock, e.end() - off);
      buf.resize(n);
      VV_RETURN_IF_ERROR(image.ReadAt(off, buf));
      if (::pwrite(fd, buf.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) {
        return Status::FromErrno(errno, "pwrite " + path);
      }
      written += n;
    }
  }
  return written;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` with /bin/sh, stderr folded into stdout.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `s` quoted for /bin/sh.
inline std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

}  // namespace vmvault::fs::testing
