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

Result<std::unique_ptr<NbdImage>> NbdImage::ConnectUnix(const std::string& socket_path,
                                                        const std::string& export_name,
                                                        const std::vector<std::string>& contexts) {
  Handle h(nbd_create());
  if (!h) return NbdError("cannot create an NBD handle");
  // We always fill the whole buffer or fail; skip libnbd's defensive memset.
  nbd_set_pread_initialize(h.get(), false);
  if (!export_name.empty() && nbd_set_export_name(h.get(), export_name.c_str()) == -1) {
    return NbdError(fmt::format("cannot ask for NBD export '{}'", export_name));
  }
  for (const std::string& c : contexts) {
    if (nbd_add_meta_context(h.get(), c.c_str()) == -1) {
      return NbdError(fmt::format("cannot ask for NBD metadata context '{}'", c));
    }
  }
  if (nbd_connect_unix(h.get(), socket_path.c_str()) == -1) {
    return NbdError(fmt::format("cannot connect to NBD socket {}", socket_path));
  }
  const int64_t size = nbd_get_size(h.get());
  if (size < 0) return NbdError(fmt::format("cannot get the size of NBD export {}", socket_path));
  return std::unique_ptr<NbdImage>(
      new NbdImage(std::move(h), static_cast<uint64_t>(size), socket_path));
}

bool NbdImage::HasContext(const std::string& context) const {
  return nbd_can_meta_context(handle_.get(), context.c_str()) == 1;
}

Result<std::vector<Extent>> NbdImage::ContextExtents(const std::string& context) {
  if (!HasContext(context)) {
    return Status::Unsupported(
        fmt::format("the NBD server {} does not serve metadata context '{}'", name_, context));
  }
  struct Collector {
    const std::string* context;
    const bool allocation;
    std::vector<Extent> extents;
    uint64_t next = 0;  // where the next extent must start
    bool bad = false;
  } c{&context, context == "base:allocation", {}, 0, false};
  auto callback = [](void* user, const char* metacontext, uint64_t offset, uint32_t* entries,
                     size_t n, int* /*error*/) -> int {
    auto* c = static_cast<Collector*>(user);
    if (*c->context != metacontext) return 0;
    if (offset != c->next) c->bad = true;
    for (size_t i = 0; i + 1 < n; i += 2) {
      const uint32_t length = entries[i], flags = entries[i + 1];
      const bool set = c->allocation ? (flags & LIBNBD_STATE_ZERO) == 0 : (flags & 1) != 0;
      c->extents.push_back({c->next, length, set});
      c->next += length;
    }
    return 0;
  };
  // A request covers at most 2 GiB (the protocol's length is 32 bits); the server may
  // answer for less, so ask again from where its answer ended.
  constexpr uint64_t kMaxStatusRequest = uint64_t{1} << 31;
  while (c.next < size_) {
    const uint64_t before = c.next;
    const uint64_t count = std::min(size_ - c.next, kMaxStatusRequest);
    if (nbd_block_status(handle_.get(), count, c.next,
                         nbd_extent_callback{.callback = callback, .user_data = &c, .free = nullptr},
                         0) == -1) {
      return NbdError(fmt::format("NBD block status of '{}' at offset {} failed", context, before));
    }
    if (c.bad || c.next == before) {
      return Status::External(fmt::format(
          "the NBD server {} answered block status of '{}' at offset {} with a gap", name_,
          context, before));
    }
  }
  if (c.next > size_) c.extents.back().length -= c.next - size_;
  return NormalizeExtents(std::move(c.extents));
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
