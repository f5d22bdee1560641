#include "fs/view.h"

#include <algorithm>

namespace vmvault::fs {
namespace {

// Walks regions from `offset` and returns the first offset whose "is data" equals
// `want_data`, or size().
Result<uint64_t> Seek(const View& view, uint64_t offset, bool want_data) {
  uint64_t pos = offset;
  while (pos < view.size()) {
    Region r;
    VV_RETURN_IF_ERROR(view.RegionAt(pos, &r));
    if (r.end() <= pos) return Status::Corruption("view region does not advance");
    if (r.type == RegionType::kView) {
      // Ask the underlying view, then map its answer back into this region.
      const uint64_t base = r.source_offset + (pos - r.offset);
      VV_ASSIGN_OR_RETURN(uint64_t found, want_data ? r.view->SeekData(base)
                                                    : r.view->SeekHole(base));
      const uint64_t mapped = pos + (found - base);
      if (found < r.view->size() && mapped < r.end()) return mapped;
    } else if (r.is_data() == want_data) {
      return pos;
    }
    pos = r.end();
  }
  return view.size();
}

}  // namespace

Result<uint64_t> View::SeekData(uint64_t offset) const {
  if (offset >= size()) return size();
  return Seek(*this, offset, /*want_data=*/true);
}

Result<uint64_t> View::SeekHole(uint64_t offset) const {
  if (offset >= size()) return size();
  return Seek(*this, offset, /*want_data=*/false);
}

}  // namespace vmvault::fs
