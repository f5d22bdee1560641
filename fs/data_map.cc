#include "fs/data_map.h"

#include <fmt/format.h>

#include <algorithm>

namespace vmvault::fs {
namespace {

constexpr uint64_t kPageSlots = store::kIndexPageSlots;

// The index of the last prefix-sum entry <= k whose successor is > k: the page that
// holds item number k.
uint64_t PageHolding(const std::vector<uint64_t>& before, uint64_t k) {
  const auto it = std::upper_bound(before.begin(), before.end(), k);
  return static_cast<uint64_t>(it - before.begin()) - 1;
}

}  // namespace

Result<std::shared_ptr<const DataMap>> DataMap::Load(const store::Catalog& catalog,
                                                     IndexPageCache* pages, uint64_t backup_id,
                                                     uint32_t disk,
                                                     const store::DiskRecord& record) {
  VV_ASSIGN_OR_RETURN(store::DiskSummary summary,
                      catalog.ReadDiskSummary(backup_id, disk, record));
  return std::make_shared<const DataMap>(pages, backup_id, disk, record, summary);
}

DataMap::DataMap(IndexPageCache* pages, uint64_t backup_id, uint32_t disk,
                 const store::DiskRecord& record, const store::DiskSummary& summary)
    : pages_(pages),
      backup_id_(backup_id),
      disk_(disk),
      virtual_size_(record.virtual_size),
      chunk_size_(record.chunk_size),
      slots_(summary.slots),
      group_slots_(summary.group_slots) {
  page_slots_before_.reserve(summary.pages() + 1);
  page_groups_before_.reserve(summary.pages() + 1);
  page_slots_before_.push_back(0);
  page_groups_before_.push_back(0);
  for (uint64_t p = 0; p < summary.pages(); ++p) {
    page_slots_before_.push_back(page_slots_before_.back() + summary.page_data_slots[p]);
    page_groups_before_.push_back(page_groups_before_.back() + summary.page_data_groups[p]);
  }
}

uint64_t DataMap::SlotBytes(uint64_t slot) const {
  const uint64_t start = slot * chunk_size_;
  return start >= virtual_size_ ? 0 : std::min<uint64_t>(chunk_size_, virtual_size_ - start);
}

Result<IndexPageCache::Page> DataMap::Page(uint64_t page) const {
  if (page >= pages()) return Status::InvalidArgument("index page beyond the end of the disk");
  const auto in_disk =
      static_cast<uint32_t>(std::min<uint64_t>(kPageSlots, slots_ - page * kPageSlots));
  const IndexPageKey key{backup_id_, disk_, page};
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, pages_->Get(key, in_disk));
  const uint64_t want = page_slots_before_[page + 1] - page_slots_before_[page];
  VV_RETURN_IF_ERROR(CheckPageAgainstSummary(*p, key, in_disk, want));
  if (group_slots_ > 1 && want != 0) {
    uint64_t groups = 0;
    for (uint32_t a = 0; a < in_disk; a += group_slots_) {
      groups += p->DataBefore(a + group_slots_) > p->DataBefore(a) ? 1 : 0;
    }
    const uint64_t want_groups = page_groups_before_[page + 1] - page_groups_before_[page];
    if (groups != want_groups) {
      return Status::Corruption(fmt::format(
          "index page {} of backup {} disk {} contradicts the disk summary: {} data groups, the "
          "summary says {}",
          page, backup_id_, disk_, groups, want_groups));
    }
  }
  return p;
}

Result<uint64_t> DataMap::DataSlotsBefore(uint64_t slot) const {
  if (slot > slots_) return Status::InvalidArgument("slot beyond the end of the disk");
  const uint64_t page = slot / kPageSlots;
  const uint32_t i = static_cast<uint32_t>(slot % kPageSlots);
  if (i == 0 || page_slots_before_[page + 1] == page_slots_before_[page]) {
    return page_slots_before_[page];
  }
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, Page(page));
  return page_slots_before_[page] + p->DataBefore(i);
}

Result<bool> DataMap::IsData(uint64_t slot) const {
  if (slot >= slots_) return Status::InvalidArgument("slot beyond the end of the disk");
  const uint64_t page = slot / kPageSlots;
  if (page_slots_before_[page + 1] == page_slots_before_[page]) return false;
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, Page(page));
  return !p->IsHole(static_cast<uint32_t>(slot % kPageSlots));
}

Result<uint64_t> DataMap::NthDataSlot(uint64_t k) const {
  if (k >= data_slots()) return Status::InvalidArgument("no such data slot");
  const uint64_t page = PageHolding(page_slots_before_, k);
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, Page(page));  // checked: k is on it
  return page * kPageSlots + p->NthData(static_cast<uint32_t>(k - page_slots_before_[page]));
}

Result<bool> DataMap::GroupHasData(uint64_t group) const {
  if (group >= groups()) return Status::InvalidArgument("group beyond the end of the disk");
  const uint64_t first = group * group_slots_;
  const uint64_t end = std::min(slots_, first + group_slots_);
  VV_ASSIGN_OR_RETURN(uint64_t a, DataSlotsBefore(first));
  VV_ASSIGN_OR_RETURN(uint64_t b, DataSlotsBefore(end));
  return b > a;
}

Result<uint64_t> DataMap::DataGroupsBefore(uint64_t group) const {
  if (group > groups()) return Status::InvalidArgument("group beyond the end of the disk");
  if (group_slots_ == 1) return DataSlotsBefore(std::min(group, slots_));
  // Groups never straddle pages: group_slots divides the page size.
  const uint64_t first_slot = group * group_slots_;
  const uint64_t page = first_slot / kPageSlots;
  if (page >= pages()) return data_groups();
  uint64_t count = page_groups_before_[page];
  if (page_groups_before_[page + 1] == count) return count;
  const uint64_t page_first_group = page * kPageSlots / group_slots_;
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, Page(page));
  for (uint64_t g = page_first_group; g < group; ++g) {
    const uint32_t a = static_cast<uint32_t>(g * group_slots_ - page * kPageSlots);
    count += p->DataBefore(a + group_slots_) > p->DataBefore(a) ? 1 : 0;
  }
  return count;
}

Result<uint64_t> DataMap::NthDataGroup(uint64_t k) const {
  if (k >= data_groups()) return Status::InvalidArgument("no such data group");
  if (group_slots_ == 1) return NthDataSlot(k);  // groups are slots
  const uint64_t page = PageHolding(page_groups_before_, k);
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, Page(page));
  uint64_t left = k - page_groups_before_[page];
  const uint32_t groups_in_page = static_cast<uint32_t>(kPageSlots / group_slots_);
  for (uint32_t g = 0; g < groups_in_page; ++g) {
    const uint32_t a = g * group_slots_;
    if (p->DataBefore(a + group_slots_) == p->DataBefore(a)) continue;
    if (left-- == 0) return page * kPageSlots / group_slots_ + g;
  }
  return Status::Corruption(fmt::format(
      "index page {} of backup {} disk {} holds fewer data groups than its summary says", page,
      backup_id_, disk_));
}

}  // namespace vmvault::fs
