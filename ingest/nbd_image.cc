// The only file that includes libnbd.
#include "ingest/nbd_image.h"

#include <fmt/format.h>
#include <libnbd.h>

namespace vmvault::ingest {
namespace {

Status NbdError(std::string_view what) {
  const char* msg = nbd_get_error();
  return Status::IOError(fmt::format("{}: {}", what, msg != nullptr ? msg : "unknown NBD error"));
}

}  // namespace

void NbdImage::HandleDeleter::operator()(nbd_handle* h) const { nbd_close(h); }

Result<std::unique_ptr<NbdImage>> NbdImage::ConnectUnix(const std::string& socket_path) {
  Handle h(nbd_create());
  if (!h) return NbdError("cannot create an NBD handle");
  // We always fill the whole buffer or fail; skip libnbd's defensive memset.
  nbd_set_pread_initialize(h.get(), false);
  if (nbd_connect_unix(h.get(), socket_path.c_str()) == -1) {
    return NbdError(fmt::format("cannot connect to NBD socket {}", socket_path));
  }
  const int64_t size = nbd_get_size(h.get());
  if (size < 0) return NbdError(fmt::format("cannot get the size of NBD export {}", socket_path));
  return std::unique_ptr<NbdImage>(
      new NbdImage(std::move(h), static_cast<uint64_t>(size), socket_path));
}

Status NbdImage::ReadAt(uint64_t offset, std::span<uint8_t> out) {
  if (offset > size_ || out.size() > size_ - offset) {
    return Status::InvalidArgument(
        fmt::format("NBD read of {} bytes at {} is past the end ({})", out.size(), offset, size_));
  }
  size_t done = 0;
  while (done < out.size()) {
    const size_t n = std::min<uint64_t>(out.size() - done, kMaxRequest);
    if (nbd_pread(handle_.get(), out.data() + done, n, offset + done, 0) == -1) {
      return NbdError(fmt::format("NBD read of {} bytes at offset {} failed", n, offset + done));
    }
    done += n;
  }
  return Status::OK();
}

}  // namespace vmvault::ingest
