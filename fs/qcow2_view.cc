#include "fs/qcow2_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <limits>

namespace vmvault::fs {
namespace {

constexpr uint64_t kPageSlots = store::kIndexPageSlots;
// Metadata is generated in pieces of this many bytes.
constexpr uint64_t kPiece = 4096;
constexpr uint64_t kPieceEntries64 = kPiece / 8;  // L1, L2 and refcount table entries
constexpr uint64_t kPieceEntries16 = kPiece / 2;  // refcount block entries
// The zero tail of a partial last slot is served in pieces of this many bytes.
constexpr uint64_t kPadPiece = 64 << 10;

constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
constexpr uint32_t kVersion = 3;
constexpr uint32_t kRefcountOrder = 4;  // 16-bit refcounts
constexpr uint32_t kHeaderLength = 104;
constexpr uint64_t kCopied = uint64_t{1} << 63;  // QCOW_OFLAG_COPIED
constexpr uint64_t kMaxClusterSize = 2 << 20;
constexpr uint64_t kMinChunkSize = 64 << 10;
constexpr uint64_t kMaxChunkSize = 128 << 20;
// qemu's limits: QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE, and the 56-bit host offsets
// of L1, L2 and refcount table entries.
constexpr uint64_t kMaxL1Bytes = 32 << 20;
constexpr uint64_t kMaxReftableBytes = 8 << 20;
constexpr uint64_t kMaxFileSize = uint64_t{1} << 56;
constexpr uint32_t kNoTable = std::numeric_limits<uint32_t>::max();

uint64_t CeilDiv(uint64_t a, uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }
uint64_t RoundUp(uint64_t a, uint64_t b) { return CeilDiv(a, b) * b; }

void Put16(std::string* s, uint64_t at, uint16_t v) {
  (*s)[at] = static_cast<char>(v >> 8);
  (*s)[at + 1] = static_cast<char>(v & 0xff);
}
void Put32(std::string* s, uint64_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>((v >> (8 * (3 - i))) & 0xff);
}
void Put64(std::string* s, uint64_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*s)[at + i] = static_cast<char>((v >> (8 * (7 - i))) & 0xff);
}

// A refcount block piece in which every cluster has refcount 1.
const std::shared_ptr<const std::string>& OnesPiece() {
  static const auto* piece = new std::shared_ptr<const std::string>([] {
    auto s = std::make_shared<std::string>(kPiece, '\0');
    for (uint64_t i = 0; i < kPieceEntries16; ++i) Put16(s.get(), 2 * i, 1);
    return s;
  }());
  return *piece;
}

const std::shared_ptr<const std::string>& ZeroPadPiece() {
  static const auto* piece =
      new std::shared_ptr<const std::string>(std::make_shared<std::string>(kPadPiece, '\0'));
  return *piece;
}

Region BytesRegion(uint64_t offset, std::shared_ptr<const std::string> bytes, uint64_t length) {
  Region r;
  r.offset = offset;
  r.length = length;
  r.type = RegionType::kBytes;
  r.bytes = std::move(bytes);
  return r;
}

}  // namespace

struct Qcow2View::Layout {
  enum class Part : uint8_t { kHeader, kReftable, kRefblocks, kL1, kL2 };
  // A metadata structure: `length` bytes at `start`, of which the first `used` are
  // generated and the rest are zeros (a hole).
  struct Structure {
    Part part;
    uint64_t start = 0;
    uint64_t length = 0;
    uint64_t used = 0;
  };
  // The file's data and holes, in order; extents[i] ends at `end`.
  struct Extent {
    uint64_t end = 0;
    bool data = false;
  };

  std::shared_ptr<const DataMap> map;
  uint64_t virtual_size = 0;  // the disk's
  uint64_t image_size = 0;    // the header's: virtual_size rounded up to 512
  uint64_t chunk_size = 0;
  uint64_t cluster_size = 0;
  uint32_t cluster_bits = 0;
  uint64_t slot_clusters = 0;   // c: clusters per slot
  uint64_t guest_clusters = 0;  // G
  uint64_t l2_entries = 0;      // E: entries per L2 table
  uint64_t range_slots = 0;     // slots one L2 table covers
  uint64_t l1_size = 0;         // L1 entries
  uint64_t slots = 0;
  uint64_t data_slots = 0;          // D
  uint64_t last_slot_clusters = 0;  // clusters of the last slot inside the disk
  // The file's last clusters from here are unreferenced if the disk's last slot is data
  // (a partial slot of 2 clusters or more); host_clusters if there are none.
  uint64_t maybe_free = 0;
  uint64_t host_clusters = 0;  // N: clusters in the file
  uint64_t reftable_clusters = 0;
  uint64_t refblocks = 0;  // R
  uint64_t l2_tables = 0;  // N2
  uint64_t reftable_offset = 0;
  uint64_t refblocks_offset = 0;
  uint64_t l1_offset = 0;
  uint64_t l2_offset = 0;
  uint64_t data_offset = 0;
  uint64_t size = 0;
  uint64_t allocated = 0;
  std::vector<uint32_t> table_of_range;  // per L1 entry: its L2 table, or kNoTable
  std::vector<uint64_t> range_of_table;  // per L2 table: its L1 entry
  std::vector<Structure> structures;     // in file order, all before data_offset
  std::vector<Extent> extents;
  std::shared_ptr<const std::string> header;  // the first piece of cluster 0

  bool PageHasData(uint64_t page) const {
    return map->DataSlotsBeforePage(page + 1) > map->DataSlotsBeforePage(page);
  }
};

Qcow2View::Qcow2View(std::shared_ptr<const View> raw, MapLoader load_map)
    : raw_(std::move(raw)),
      load_map_(std::move(load_map)),
      layout_([this] { return BuildLayout(); }) {}

Qcow2View::~Qcow2View() = default;

uint32_t Qcow2View::ClusterSizeFor(uint32_t chunk_size) {
  return static_cast<uint32_t>(std::min<uint64_t>(chunk_size, kMaxClusterSize));
}

Status Qcow2View::Load() const { return layout_.Get().status(); }

uint64_t Qcow2View::size() const {
  const Layout* l = layout_.Peek();
  return l != nullptr ? l->size : 0;
}

uint64_t Qcow2View::allocated_bytes() const {
  const Layout* l = layout_.Peek();
  return l != nullptr ? l->allocated : 0;
}

Result<std::shared_ptr<const Qcow2View::Layout>> Qcow2View::BuildLayout() const {
  if (!raw_ || !load_map_) return Status::InvalidArgument("qcow2 view without a raw view");
  VV_ASSIGN_OR_RETURN(std::shared_ptr<const DataMap> map, load_map_());
  if (!map) return Status::InvalidArgument("qcow2 view: no data map");
  VV_RETURN_IF_ERROR(raw_->Load());

  auto l = std::make_shared<Layout>();
  l->map = map;
  l->virtual_size = map->virtual_size();
  l->chunk_size = map->chunk_size();
  const uint64_t cs = l->chunk_size;
  if (!std::has_single_bit(cs) || cs < kMinChunkSize || cs > kMaxChunkSize) {
    return Status::Unsupported(fmt::format("qcow2 view: chunk size {} is not supported", cs));
  }
  if (raw_->size() != l->virtual_size) {
    return Status::Corruption(fmt::format("qcow2 view: the raw view has {} bytes, the disk {}",
                                          raw_->size(), l->virtual_size));
  }
  l->slots = map->slots();
  l->data_slots = map->data_slots();
  if (l->slots != CeilDiv(l->virtual_size, cs) || map->pages() != CeilDiv(l->slots, kPageSlots) ||
      l->data_slots > l->slots) {
    return Status::Corruption("qcow2 view: the disk summary does not match the disk");
  }

  // Geometry.
  l->cluster_size = ClusterSizeFor(static_cast<uint32_t>(cs));
  const uint64_t cl = l->cluster_size;
  l->cluster_bits = static_cast<uint32_t>(std::countr_zero(cl));
  l->slot_clusters = cs / cl;
  l->l2_entries = cl / 8;
  l->range_slots = l->l2_entries / l->slot_clusters;
  if (l->range_slots % kPageSlots != 0) {
    return Status::Unsupported(fmt::format("qcow2 view: chunk size {} is not supported", cs));
  }
  l->image_size = RoundUp(l->virtual_size, 512);
  l->guest_clusters = CeilDiv(l->virtual_size, cl);
  l->l1_size = CeilDiv(l->guest_clusters, l->l2_entries);
  if (l->l1_size * 8 > kMaxL1Bytes) {
    return Status::Unsupported(
        fmt::format("qcow2 view: a disk of {} bytes needs an L1 table larger than qemu allows",
                    l->virtual_size));
  }
  l->last_slot_clusters = l->slots == 0 ? 0 : CeilDiv(map->SlotBytes(l->slots - 1), cl);

  // Which L1 entries have an L2 table: whole index pages, from the summary alone.
  const uint64_t range_pages = l->range_slots / kPageSlots;
  l->table_of_range.assign(l->l1_size, kNoTable);
  for (uint64_t j = 0; j < l->l1_size; ++j) {
    const uint64_t p0 = std::min(map->pages(), j * range_pages);
    const uint64_t p1 = std::min(map->pages(), p0 + range_pages);
    if (map->DataSlotsBeforePage(p1) == map->DataSlotsBeforePage(p0)) continue;
    l->table_of_range[j] = static_cast<uint32_t>(l->range_of_table.size());
    l->range_of_table.push_back(j);
  }
  l->l2_tables = l->range_of_table.size();

  // The refcount blocks cover every cluster of the file, themselves and the refcount
  // table included: find the fixed point.
  const uint64_t l1_clusters = CeilDiv(l->l1_size * 8, cl);
  const uint64_t fixed = 1 + l1_clusters + l->l2_tables + l->data_slots * l->slot_clusters;
  const uint64_t per_refblock = cl * 8 / (1 << kRefcountOrder);
  uint64_t r = 0;
  uint64_t t = 0;
  for (;;) {
    const uint64_t n = fixed + t + r;
    const uint64_t r2 = CeilDiv(n, per_refblock);
    const uint64_t t2 = CeilDiv(r2 * 8, cl);
    if (r2 == r && t2 == t) break;
    r = r2;
    t = t2;
  }
  l->refblocks = r;
  l->reftable_clusters = t;
  l->host_clusters = fixed + t + r;
  if (r * 8 > kMaxReftableBytes || l->host_clusters > kMaxFileSize / cl) {
    return Status::Unsupported("qcow2 view: the image would be larger than qcow2 allows");
  }

  l->reftable_offset = cl;
  l->refblocks_offset = l->reftable_offset + t * cl;
  l->l1_offset = l->refblocks_offset + r * cl;
  l->l2_offset = l->l1_offset + l1_clusters * cl;
  l->data_offset = l->l2_offset + l->l2_tables * cl;
  l->size = l->host_clusters * cl;
  l->maybe_free = l->host_clusters;
  if (l->data_slots > 0) l->maybe_free -= l->slot_clusters - l->last_slot_clusters;
  if (l->data_offset + l->data_slots * cs != l->size) {
    return Status::Corruption("qcow2 view: inconsistent layout");  // cannot happen
  }

  // The structures, and how much of each holds generated bytes.
  using Part = Layout::Part;
  uint64_t l2_used = l->l2_tables * cl;
  if (l->l2_tables > 0 && l->range_of_table.back() == l->l1_size - 1) {
    const uint64_t last_entries = l->guest_clusters - (l->l1_size - 1) * l->l2_entries;
    l2_used -= cl - RoundUp(last_entries * 8, kPiece);
  }
  l->structures = {
      {Part::kHeader, 0, cl, kPiece},
      {Part::kReftable, l->reftable_offset, t * cl, RoundUp(r * 8, kPiece)},
      {Part::kRefblocks, l->refblocks_offset, r * cl, RoundUp(l->host_clusters * 2, kPiece)},
      {Part::kL1, l->l1_offset, l1_clusters * cl, RoundUp(l->l1_size * 8, kPiece)},
      {Part::kL2, l->l2_offset, l->l2_tables * cl, l2_used},
  };
  auto add = [&](uint64_t length, bool data) {
    if (length == 0) return;
    if (data) l->allocated += length;
    const uint64_t end = (l->extents.empty() ? 0 : l->extents.back().end) + length;
    if (!l->extents.empty() && l->extents.back().data == data) {
      l->extents.back().end = end;
    } else {
      l->extents.push_back({end, data});
    }
  };
  for (const Layout::Structure& s : l->structures) {
    add(s.used, true);
    add(s.length - s.used, false);
  }
  add(l->size - l->data_offset, true);

  // The header: all the fields of version 3 up to header_length, then an end of
  // header extensions marker (8 zero bytes), then zeros.
  auto header = std::make_shared<std::string>(kPiece, '\0');
  Put32(header.get(), 0, kMagic);
  Put32(header.get(), 4, kVersion);
  // 8: backing_file_offset, 16: backing_file_size: none.
  Put32(header.get(), 20, l->cluster_bits);
  Put64(header.get(), 24, l->image_size);
  // 32: crypt_method: none.
  Put32(header.get(), 36, static_cast<uint32_t>(l->l1_size));
  Put64(header.get(), 40, l->l1_size == 0 ? 0 : l->l1_offset);
  Put64(header.get(), 48, l->reftable_offset);
  Put32(header.get(), 56, static_cast<uint32_t>(t));
  // 60: nb_snapshots, 64: snapshots_offset, 72/80/88: feature bits: all zero.
  Put32(header.get(), 96, kRefcountOrder);
  Put32(header.get(), 100, kHeaderLength);
  l->header = std::move(header);
  return std::shared_ptr<const Layout>(std::move(l));
}

Status Qcow2View::RegionAt(uint64_t offset, Region* out) const {
  VV_ASSIGN_OR_RETURN(const Layout* l, layout_.Get());
  if (offset >= l->size) return Status::InvalidArgument("offset beyond the end of the image");
  if (offset >= l->data_offset) return DataRegion(*l, offset, out);
  return MetadataRegion(*l, offset, out);
}

Status Qcow2View::MetadataRegion(const Layout& l, uint64_t offset, Region* out) const {
  using Part = Layout::Part;
  const auto it = std::find_if(
      l.structures.begin(), l.structures.end(),
      [&](const Layout::Structure& s) { return offset >= s.start && offset < s.start + s.length; });
  if (it == l.structures.end()) return Status::Corruption("qcow2 view: no structure there");
  const Layout::Structure& s = *it;
  const uint64_t rel = offset - s.start;
  if (rel >= s.used) {
    *out = Region();
    out->offset = s.start + s.used;
    out->length = s.length - s.used;
    out->type = RegionType::kZero;
    return Status::OK();
  }
  const uint64_t piece = rel / kPiece;
  const uint64_t piece_offset = s.start + piece * kPiece;
  switch (s.part) {
    case Part::kHeader:
      *out = BytesRegion(piece_offset, l.header, kPiece);
      return Status::OK();
    case Part::kReftable: {
      std::string bytes(kPiece, '\0');
      for (uint64_t i = 0; i < kPieceEntries64; ++i) {
        const uint64_t r = piece * kPieceEntries64 + i;
        if (r >= l.refblocks) break;
        Put64(&bytes, 8 * i, l.refblocks_offset + r * l.cluster_size);
      }
      *out =
          BytesRegion(piece_offset, std::make_shared<const std::string>(std::move(bytes)), kPiece);
      return Status::OK();
    }
    case Part::kRefblocks: {
      // Most pieces are all ones: share one.
      if ((piece + 1) * kPieceEntries16 <= l.maybe_free) {
        *out = BytesRegion(piece_offset, OnesPiece(), kPiece);
        return Status::OK();
      }
      VV_ASSIGN_OR_RETURN(std::string bytes, RefblockPiece(l, piece));
      *out =
          BytesRegion(piece_offset, std::make_shared<const std::string>(std::move(bytes)), kPiece);
      return Status::OK();
    }
    case Part::kL1: {
      std::string bytes(kPiece, '\0');
      for (uint64_t i = 0; i < kPieceEntries64; ++i) {
        const uint64_t j = piece * kPieceEntries64 + i;
        if (j >= l.l1_size) break;
        const uint32_t table = l.table_of_range[j];
        if (table == kNoTable) continue;
        Put64(&bytes, 8 * i, (l.l2_offset + table * l.cluster_size) | kCopied);
      }
      *out =
          BytesRegion(piece_offset, std::make_shared<const std::string>(std::move(bytes)), kPiece);
      return Status::OK();
    }
    case Part::kL2: {
      const uint64_t table = rel / l.cluster_size;
      const uint64_t table_piece = (rel % l.cluster_size) / kPiece;
      VV_ASSIGN_OR_RETURN(std::string bytes, L2Piece(l, table, table_piece));
      *out =
          BytesRegion(piece_offset, std::make_shared<const std::string>(std::move(bytes)), kPiece);
      return Status::OK();
    }
  }
  return Status::Corruption("qcow2 view: unknown structure");
}

Result<std::string> Qcow2View::RefblockPiece(const Layout& l, uint64_t piece) const {
  // Every cluster of the file has refcount 1, but for the clusters of a partial last
  // slot that lie past the disk's end: when that slot is data, nothing references them.
  uint64_t free_first = l.host_clusters;
  if (l.maybe_free < l.host_clusters) {
    VV_ASSIGN_OR_RETURN(bool last_is_data, l.map->IsData(l.slots - 1));
    if (last_is_data) {
      VV_RETURN_IF_ERROR(l.map->Page((l.slots - 1) / kPageSlots).status());
      free_first = l.maybe_free;
    }
  }
  std::string bytes(kPiece, '\0');
  for (uint64_t i = 0; i < kPieceEntries16; ++i) {
    const uint64_t cluster = piece * kPieceEntries16 + i;
    if (cluster >= free_first) break;
    Put16(&bytes, 2 * i, 1);
  }
  return bytes;
}

Result<std::string> Qcow2View::L2Piece(const Layout& l, uint64_t table, uint64_t piece) const {
  std::string bytes(kPiece, '\0');
  const uint64_t range = l.range_of_table[table];
  const uint64_t first_cluster = range * l.l2_entries + piece * kPieceEntries64;
  // A piece covers kPieceEntries64 / c slots, all on one index page.
  const uint64_t page = first_cluster / l.slot_clusters / kPageSlots;
  if (first_cluster >= l.guest_clusters || !l.PageHasData(page)) return bytes;
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, l.map->Page(page));
  const uint64_t before_page = l.map->DataSlotsBeforePage(page);
  for (uint64_t i = 0; i < kPieceEntries64; ++i) {
    const uint64_t cluster = first_cluster + i;
    if (cluster >= l.guest_clusters) break;
    const uint64_t slot = cluster / l.slot_clusters;
    const uint32_t in_page = static_cast<uint32_t>(slot - page * kPageSlots);
    if (p->IsHole(in_page)) continue;
    const uint64_t k = before_page + p->DataBefore(in_page);
    const uint64_t host =
        l.data_offset + k * l.chunk_size + (cluster % l.slot_clusters) * l.cluster_size;
    Put64(&bytes, 8 * i, host | kCopied);
  }
  return bytes;
}

Status Qcow2View::DataRegion(const Layout& l, uint64_t offset, Region* out) const {
  const uint64_t cs = l.chunk_size;
  const uint64_t k = (offset - l.data_offset) / cs;
  VV_ASSIGN_OR_RETURN(uint64_t slot, l.map->NthDataSlot(k));
  const uint64_t page = slot / kPageSlots;
  VV_ASSIGN_OR_RETURN(IndexPageCache::Page p, l.map->Page(page));
  const uint32_t i = static_cast<uint32_t>(slot - page * kPageSlots);
  if (p->IsHole(i) || l.map->DataSlotsBeforePage(page) + p->DataBefore(i) != k) {
    return Status::Corruption(
        fmt::format("qcow2 view: index page {} does not hold data slot {}", page, k));
  }
  // The run of data slots from `slot` to the next hole or the page's end lies densely
  // both here and in the raw view.
  const uint64_t run = p->RunEnd(i) - i;
  const uint64_t host_start = l.data_offset + k * cs;
  const uint64_t raw_start = slot * cs;
  const uint64_t raw_end = std::min(l.virtual_size, (slot + run) * cs);
  const uint64_t length = raw_end - raw_start;
  *out = Region();
  if (offset < host_start + length) {
    out->offset = host_start;
    out->length = length;
    out->type = RegionType::kView;
    out->source_offset = raw_start;
    out->view = raw_;
    return Status::OK();
  }
  // The zero tail of the disk's partial last slot.
  const uint64_t pad_start = host_start + length;
  const uint64_t pad_end = host_start + run * cs;
  if (offset >= pad_end) return Status::Corruption("qcow2 view: data run out of range");
  const uint64_t piece_start = pad_start + (offset - pad_start) / kPadPiece * kPadPiece;
  *out = BytesRegion(piece_start, ZeroPadPiece(), std::min(kPadPiece, pad_end - piece_start));
  return Status::OK();
}

Result<uint64_t> Qcow2View::SeekData(uint64_t offset) const {
  VV_ASSIGN_OR_RETURN(const Layout* l, layout_.Get());
  if (offset >= l->size) return l->size;
  const auto it =
      std::upper_bound(l->extents.begin(), l->extents.end(), offset,
                       [](uint64_t off, const Layout::Extent& e) { return off < e.end; });
  return it->data ? offset : it->end;
}

Result<uint64_t> Qcow2View::SeekHole(uint64_t offset) const {
  VV_ASSIGN_OR_RETURN(const Layout* l, layout_.Get());
  if (offset >= l->size) return l->size;
  const auto it =
      std::upper_bound(l->extents.begin(), l->extents.end(), offset,
                       [](uint64_t off, const Layout::Extent& e) { return off < e.end; });
  return it->data ? it->end : offset;
}

}  // namespace vmvault::fs
