// NbdImage: an Image read over one NBD connection with libnbd (nbd_image.cc is the only
// file that includes libnbd.h). Reads are synchronous nbd_pread calls, split at the
// 32 MiB most servers accept.
//
// One connection serves one thread: an NbdImage is NOT thread-safe. Ingest opens one
// per worker thread against a qemu-nbd started with enough --shared connections. The
// handle is closed (and the connection dropped) when the object is destroyed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/image.h"
#include "base/result.h"

struct nbd_handle;

namespace vmvault::ingest {

class NbdImage final : public Image {
 public:
  // The largest single read request.
  static constexpr uint64_t kMaxRequest = 32 << 20;

  // Connects to the NBD server listening on unix socket `socket_path` (default export).
  static Result<std::unique_ptr<NbdImage>> ConnectUnix(const std::string& socket_path);

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
