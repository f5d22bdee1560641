// ViewImage: a view as a base::Image (size, reads, extents), so code that consumes
// images (restore to a file or block device, qemu-img comparisons in tests) can read
// any view of a backup through the mount's read loop without a mount.
//
// Call the view's Load() before size(), as for any view (fs/view.h); ReadAt and
// Extents load it themselves. The view and the reader are shared or borrowed: the reader (and its cache) must
// outlive the image. Thread-safe, as View and ViewReader are.
#pragma once

#include <memory>
#include <vector>

#include "base/image.h"
#include "fs/view.h"
#include "fs/view_reader.h"

namespace vmvault::fs {

class ViewImage final : public Image {
 public:
  ViewImage(std::shared_ptr<const View> view, const ViewReader* reader)
      : view_(std::move(view)), reader_(reader) {}

  uint64_t size() const override { return view_->size(); }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override;
  // Data and hole extents from SEEK_DATA / SEEK_HOLE, normalized.
  Result<std::vector<Extent>> Extents() override;

 private:
  std::shared_ptr<const View> view_;
  const ViewReader* reader_;
};

}  // namespace vmvault::fs
