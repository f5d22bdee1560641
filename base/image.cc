#include "base/image.h"

namespace vmvault {

std::vector<Extent> NormalizeExtents(std::vector<Extent> extents) {
  std::vector<Extent> out;
  out.reserve(extents.size());
  for (const Extent& e : extents) {
    if (e.length == 0) continue;
    if (!out.empty() && out.back().data == e.data && out.back().end() == e.offset) {
      out.back().length += e.length;
    } else {
      out.push_back(e);
    }
  }
  return out;
}

}  // namespace vmvault
