// NbdImage: an Image read over one NBD connection with libnbd (nbd_image.cc is the only
// file that includes libnbd.h). Reads are synchronous nbd_pread calls, split at the
// 32 MiB most servers accept. It can also list a metadata context's extents (block
// status): which ranges hold data, or which a dirty bitmap marks as changed.
//
// One connection serves one thread: an NbdImage is NOT thread-safe. Ingest opens one
// per worker thread against a qemu-nbd started with enough --shared connections. The
// handle is closed (and the connection dropped) when the object is destroyed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/image.h"
#include "base/result.h"

struct nbd_handle;

namespace vmvault::ingest {

class NbdImage final : public Image {
 public:
  // The largest single read request.
  static constexpr uint64_t kMaxRequest = 32 << 20;

  // Connects to the NBD server listening on unix socket `socket_path`, to the export
  // `export_name` ("" = the default export), asking for the metadata contexts
  // `contexts` (e.g. "base:allocation", "qemu:dirty-bitmap:backup-vda").
  static Result<std::unique_ptr<NbdImage>> ConnectUnix(
      const std::string& socket_path, const std::string& export_name = {},
      const std::vector<std::string>& contexts = {});

  // Whether the server agreed to serve metadata context `context`.
  bool HasContext(const std::string& context) const;

  // The extents of metadata context `context` over the whole export, normalized, with
  // data = true where the range is "set": for "base:allocation", where it may hold
  // data (neither hole nor known zero); for a "qemu:dirty-bitmap:*" context, where it
  // is dirty. FailedPrecondition when the context was not negotiated.
  Result<std::vector<Extent>> ContextExtents(const std::string& context);

  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override;

 private:
  struct HandleDeleter {
    void operator()(nbd_handle* h) const;
  };
  using Handle = std::unique_ptr<nbd_handle, HandleDeleter>;

  NbdImage(Handle handle, uint64_t size, std::string name)
      : handle_(std::move(handle)), size_(size), name_(std::move(name)) {}

  Handle handle_;
  uint64_t size_;
  std::string name_;  // for messages
};

}  // namespace vmvault::ingest
