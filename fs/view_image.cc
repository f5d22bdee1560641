#include "fs/view_image.h"

namespace vmvault::fs {

Status ViewImage::ReadAt(uint64_t offset, std::span<uint8_t> out) {
  VV_RETURN_IF_ERROR(view_->Load());
  if (offset > view_->size() || out.size() > view_->size() - offset) {
    return Status::InvalidArgument("read beyond the end of the image");
  }
  return reader_->ReadAt(*view_, offset, out);
}

Result<std::vector<Extent>> ViewImage::Extents() {
  VV_RETURN_IF_ERROR(view_->Load());
  std::vector<Extent> extents;
  const uint64_t size = view_->size();
  uint64_t pos = 0;
  while (pos < size) {
    VV_ASSIGN_OR_RETURN(uint64_t data, view_->SeekData(pos));
    if (data > pos) extents.push_back({pos, data - pos, false});
    if (data >= size) break;
    VV_ASSIGN_OR_RETURN(uint64_t hole, view_->SeekHole(data));
    if (hole <= data) return Status::Corruption("SEEK_HOLE did not advance");
    extents.push_back({data, hole - data, true});
    pos = hole;
  }
  return NormalizeExtents(std::move(extents));
}

}  // namespace vmvault::fs
