#include "store/catalog.h"

#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "store/disk_summary.h"
#include "store/record_json.h"

namespace vmvault::store {
namespace {

using nlohmann::json;

constexpr std::string_view kVmPrefix = "vm/";
constexpr std::string_view kBackupPrefix = "bk/";
constexpr std::string_view kVmBackupPrefix = "vb/";
constexpr std::string_view kNextIdKey = "meta/next_backup_id";
constexpr std::string_view kGenerationKey = "meta/generation";
constexpr std::string_view kSummaryPrefix = "ds/";
constexpr std::string_view kVerifyPrefix = "vf/";
constexpr int kRecordVersion = 1;

std::string VmKey(std::string_view vm) { return std::string(kVmPrefix) + std::string(vm); }

// The backup id as keys hold it: every index page of a backup (kIndex) starts with it.
std::string BackupIdPrefix(uint64_t backup_id) {
  std::string k;
  PutBigEndian64(&k, backup_id);
  return k;
}

std::string BackupKey(uint64_t id) { return std::string(kBackupPrefix) + BackupIdPrefix(id); }

std::string VerifyKey(uint64_t id) { return std::string(kVerifyPrefix) + BackupIdPrefix(id); }

// Every disk summary of a backup.
std::string SummaryBackupPrefix(uint64_t id) {
  return std::string(kSummaryPrefix) + BackupIdPrefix(id);
}

// "vb/<vm>\0" sorts one VM's backups by time, then id.
std::string VmBackupPrefix(std::string_view vm) {
  std::string k(kVmBackupPrefix);
  k += vm;
  k.push_back('\0');
  return k;
}

std::string VmBackupKey(std::string_view vm, int64_t time_us, uint64_t id) {
  std::string k = VmBackupPrefix(vm);
  PutBigEndian64(&k, static_cast<uint64_t>(time_us));
  PutBigEndian64(&k, id);
  return k;
}

std::string IndexDiskPrefix(uint64_t backup_id, uint32_t disk) {
  std::string k = BackupIdPrefix(backup_id);
  PutBigEndian32(&k, disk);
  return k;
}

std::string IndexKey(uint64_t backup_id, uint32_t disk, uint64_t page) {
  std::string k = IndexDiskPrefix(backup_id, disk);
  PutBigEndian64(&k, page);
  return k;
}

std::string SummaryKey(uint64_t backup_id, uint32_t disk) {
  return std::string(kSummaryPrefix) + IndexDiskPrefix(backup_id, disk);
}

}  // namespace

nlohmann::json DiskRecordToJson(const DiskRecord& d) {
  using nlohmann::json;
  json partitions = json::array();
  for (const Partition& p : d.partitions) {
    partitions.push_back({{"number", p.number},
                          {"offset", p.offset},
                          {"length", p.length},
                          {"scheme", p.scheme},
                          {"type", p.type},
                          {"name", p.name}});
  }
  json j{{"name", d.name},
              {"virtual_size", d.virtual_size},
              {"chunk_size", d.chunk_size},
              {"source_format", d.source_format},
              {"source_path", d.source_path},
              {"allocated_bytes", d.allocated_bytes},
              {"bytes_read", d.bytes_read},
              {"data_chunks", d.data_chunks},
              {"new_chunks", d.new_chunks},
              {"new_stored_bytes", d.new_stored_bytes},
              {"stored_bytes", d.stored_bytes},
              {"partitions", std::move(partitions)},
              {"read_mode", d.read_mode},
              {"reused_chunks", d.reused_chunks}};
  if (!d.read_note.empty()) j["read_note"] = d.read_note;
  if (d.source_stamp.known()) {
    j["source_stamp"] = {{"dev", d.source_stamp.dev},
                         {"ino", d.source_stamp.ino},
                         {"size", d.source_stamp.size},
                         {"mtime_ns", d.source_stamp.mtime_ns}};
  }
  return j;
}

nlohmann::json VerificationToJson(const std::optional<VerifyRecord>& v) {
  if (!v) return nullptr;
  return json{{"time", FormatIsoTime(v->time_us)},
              {"ok", v->ok},
              {"sample_percent", v->sample_percent},
              {"chunks", v->chunks},
              {"problems", v->problems}};
}

DiskRecord DiskRecordFromJson(const nlohmann::json& j) {
  DiskRecord d;
  d.name = j.at("name").get<std::string>();
  d.virtual_size = JsonInt<uint64_t>(j.at("virtual_size"));
  d.chunk_size = JsonInt<uint32_t>(j.at("chunk_size"));
  d.source_format = j.at("source_format").get<std::string>();
  d.source_path = j.at("source_path").get<std::string>();
  d.allocated_bytes = JsonInt<uint64_t>(j.at("allocated_bytes"));
  d.bytes_read = JsonInt<uint64_t>(j.at("bytes_read"));
  d.data_chunks = JsonInt<uint64_t>(j.at("data_chunks"));
  d.new_chunks = JsonInt<uint64_t>(j.at("new_chunks"));
  d.new_stored_bytes = JsonInt<uint64_t>(j.at("new_stored_bytes"));
  d.stored_bytes = JsonInt<uint64_t>(j.at("stored_bytes"));
  if (j.contains("partitions")) {  // format 2
    for (const json& p : j.at("partitions")) {
      Partition part;
      part.number = JsonInt<uint32_t>(p.at("number"));
      part.offset = JsonInt<uint64_t>(p.at("offset"));
      part.length = JsonInt<uint64_t>(p.at("length"));
      part.scheme = p.at("scheme").get<std::string>();
      part.type = p.at("type").get<std::string>();
      part.name = p.at("name").get<std::string>();
      d.partitions.push_back(std::move(part));
    }
  }
  d.read_mode = j.value("read_mode", std::string("full"));
  d.read_note = j.value("read_note", std::string());
  d.reused_chunks = JsonInt(j, "reused_chunks", uint64_t{0});
  if (j.contains("source_stamp")) {
    const json& st = j.at("source_stamp");
    d.source_stamp.dev = JsonInt<uint64_t>(st.at("dev"));
    d.source_stamp.ino = JsonInt<uint64_t>(st.at("ino"));
    d.source_stamp.size = JsonInt<uint64_t>(st.at("size"));
    d.source_stamp.mtime_ns = JsonInt<int64_t>(st.at("mtime_ns"));
  }
  return d;
}

std::string EncodeBackupRecord(const BackupRecord& rec) {
  json disks = json::array();
  for (const auto& d : rec.disks) disks.push_back(DiskRecordToJson(d));
  json j{{"v", kRecordVersion},
         {"id", rec.id},
         {"vm", rec.vm},
         {"time_us", rec.time_us},
         {"tier", rec.tier},
         {"method", rec.method},
         {"parent_id", rec.parent_id ? json(*rec.parent_id) : json(nullptr)},
         {"disks", std::move(disks)},
         {"config_kind", rec.config_kind},
         {"config", rec.config},
         {"duration_us", rec.duration_us},
         {"host", rec.host}};
  if (!rec.checkpoint.empty()) j["checkpoint"] = rec.checkpoint;
  if (rec.fs_frozen) j["fs_frozen"] = true;
  if (rec.pause_us != 0) j["pause_us"] = rec.pause_us;
  return j.dump();
}

Result<BackupRecord> DecodeBackupRecord(std::string_view text) {
  try {
    const json j = json::parse(text);
    if (JsonInt<int>(j.at("v")) != kRecordVersion) {
      return Status::Corruption(fmt::format("backup record has version {}", j.at("v").dump()));
    }
    BackupRecord rec;
    rec.id = JsonInt<uint64_t>(j.at("id"));
    rec.vm = j.at("vm").get<std::string>();
    rec.time_us = JsonInt<int64_t>(j.at("time_us"));
    rec.tier = j.at("tier").get<std::string>();
    rec.method = j.at("method").get<std::string>();
    if (!j.at("parent_id").is_null()) rec.parent_id = JsonInt<uint64_t>(j.at("parent_id"));
    for (const auto& d : j.at("disks")) rec.disks.push_back(DiskRecordFromJson(d));
    rec.config_kind = j.at("config_kind").get<std::string>();
    rec.config = j.at("config").get<std::string>();
    rec.duration_us = JsonInt<int64_t>(j.at("duration_us"));
    rec.host = j.at("host").get<std::string>();
    rec.checkpoint = j.value("checkpoint", std::string());
    rec.fs_frozen = j.value("fs_frozen", false);
    rec.pause_us = JsonInt(j, "pause_us", int64_t{0});
    return rec;
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format("backup record does not decode: {}", e.what()));
  }
}

std::string EncodeVmRecord(const VmRecord& rec) {
  json j{{"v", kRecordVersion},
         {"name", rec.name},
         {"tier", rec.tier},
         {"period", std::string(PeriodName(rec.period))},
         {"created_us", rec.created_us},
         {"origin", rec.origin}};
  return j.dump();
}

Result<VmRecord> DecodeVmRecord(std::string_view text) {
  try {
    const json j = json::parse(text);
    if (JsonInt<int>(j.at("v")) != kRecordVersion) {
      return Status::Corruption(fmt::format("VM record has version {}", j.at("v").dump()));
    }
    VmRecord rec;
    rec.name = j.at("name").get<std::string>();
    rec.tier = j.at("tier").get<std::string>();
    const auto period = ParsePeriod(j.at("period").get<std::string>());
    if (!period) return Status::Corruption("VM record has an unknown period");
    rec.period = *period;
    rec.created_us = JsonInt<int64_t>(j.at("created_us"));
    rec.origin = j.at("origin").get<std::string>();
    return rec;
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format("VM record does not decode: {}", e.what()));
  }
}

Result<std::vector<VmRecord>> Catalog::ListVms() const {
  std::vector<VmRecord> out;
  Status inner;
  VV_RETURN_IF_ERROR(kv_->Scan(KvSpace::kCatalog, kVmPrefix, [&](std::string_view,
                                                                 std::string_view v) {
    auto rec = DecodeVmRecord(v);
    if (!rec.ok()) {
      inner = rec.status();
      return false;
    }
    out.push_back(std::move(rec).value());
    return true;
  }));
  VV_RETURN_IF_ERROR(inner);
  return out;
}

Result<VmRecord> Catalog::GetVm(std::string_view name) const {
  std::string value;
  Status s = kv_->Get(KvSpace::kCatalog, VmKey(name), &value);
  if (s.IsNotFound()) return Status::NotFound(fmt::format("no VM named '{}'", name));
  VV_RETURN_IF_ERROR(s);
  return DecodeVmRecord(value);
}

Result<std::vector<BackupRecord>> Catalog::ListBackups(std::string_view vm) const {
  std::vector<uint64_t> ids;
  const std::string prefix = VmBackupPrefix(vm);
  VV_RETURN_IF_ERROR(kv_->Scan(KvSpace::kCatalog, prefix, [&](std::string_view k,
                                                              std::string_view) {
    if (k.size() == prefix.size() + 16) ids.push_back(GetBigEndian64(k.data() + prefix.size() + 8));
    return true;
  }));
  std::vector<BackupRecord> out;
  out.reserve(ids.size());
  for (uint64_t id : ids) {
    VV_ASSIGN_OR_RETURN(BackupRecord rec, GetBackup(id));
    out.push_back(std::move(rec));
  }
  return out;
}

Result<BackupRecord> Catalog::GetBackup(uint64_t id) const {
  std::string value;
  Status s = kv_->Get(KvSpace::kCatalog, BackupKey(id), &value);
  if (s.IsNotFound()) return Status::NotFound(fmt::format("no backup with id {}", id));
  VV_RETURN_IF_ERROR(s);
  return DecodeBackupRecord(value);
}

Result<uint64_t> Catalog::Generation() const {
  std::string value;
  Status s = kv_->Get(KvSpace::kCatalog, kGenerationKey, &value);
  if (s.IsNotFound()) return uint64_t{0};
  VV_RETURN_IF_ERROR(s);
  if (value.size() != 8) return Status::Corruption("the catalog generation does not decode");
  return GetBigEndian64(value.data());
}

Status Catalog::CheckBackupExists(uint64_t id) const {
  std::string value;
  Status s = kv_->Get(KvSpace::kCatalog, BackupKey(id), &value);
  if (s.IsNotFound()) return Status::NotFound(fmt::format("backup {} has been removed", id));
  return s;
}

Status Catalog::ReadIndexPage(uint64_t backup_id, uint32_t disk, uint64_t page,
                              std::vector<ChunkId>* slots, uint64_t expected_slots) const {
  std::string value;
  Status s = kv_->Get(KvSpace::kIndex, IndexKey(backup_id, disk, page), &value);
  slots->assign(kIndexPageSlots, kZeroChunkId);
  // A page of holes is not stored, and neither is any page of a removed backup. The
  // record is read after the page, so a backup removed in between is NotFound too.
  if (s.IsNotFound()) return CheckBackupExists(backup_id);
  VV_RETURN_IF_ERROR(s);
  if (value.size() % 16 != 0 || value.size() > kIndexPageSlots * 16 ||
      (expected_slots != 0 && value.size() != expected_slots * 16)) {
    return Status::Corruption(fmt::format("index page {} of disk {} of backup {} has {} bytes",
                                          page, disk, backup_id, value.size()));
  }
  std::memcpy(slots->data(), value.data(), value.size());
  return Status::OK();
}

Status CheckDiskShape(const DiskRecord& d, std::string_view what) {
  const uint32_t cs = d.chunk_size;
  if (cs < kMinChunkSize || cs > kMaxChunkSize || (cs & (cs - 1)) != 0) {
    return Status::Corruption(fmt::format("{} has an invalid chunk size, {}", what, cs));
  }
  if (d.virtual_size > kMaxDiskSize) {
    return Status::Corruption(fmt::format("{} claims an impossible size, {}", what, d.virtual_size));
  }
  return Status::OK();
}

Result<DiskSummary> Catalog::ReadDiskSummary(uint64_t backup_id, uint32_t disk,
                                             const DiskRecord& record) const {
  VV_ASSIGN_OR_RETURN(std::optional<DiskSummary> stored,
                      ReadStoredDiskSummary(backup_id, disk, record));
  if (!stored) return ComputeDiskSummary(backup_id, disk, record);
  return *std::move(stored);
}

Result<std::optional<DiskSummary>> Catalog::ReadStoredDiskSummary(
    uint64_t backup_id, uint32_t disk, const DiskRecord& record) const {
  VV_RETURN_IF_ERROR(
      CheckDiskShape(record, fmt::format("disk {} of backup {}", disk, backup_id)));
  std::string value;
  Status s = kv_->Get(KvSpace::kCatalog, SummaryKey(backup_id, disk), &value);
  if (s.IsNotFound()) {
    // A removed backup has no summary either: that is NotFound, not "none stored".
    VV_RETURN_IF_ERROR(CheckBackupExists(backup_id));
    return std::optional<DiskSummary>();
  }
  VV_RETURN_IF_ERROR(s);
  Result<DiskSummary> summary = DecodeDiskSummary(value);
  if (!summary.ok()) {
    return summary.status().WithContext(fmt::format("backup {} disk {}", backup_id, disk));
  }
  if (summary->slots != SlotCount(record) ||
      summary->group_slots != GroupSlots(record.chunk_size)) {
    return Status::Corruption(fmt::format(
        "the summary of backup {} disk {} does not match its disk record", backup_id, disk));
  }
  return std::optional<DiskSummary>(std::move(summary).value());
}

Result<DiskSummary> Catalog::ComputeDiskSummary(uint64_t backup_id, uint32_t disk,
                                                const DiskRecord& record) const {
  VV_RETURN_IF_ERROR(
      CheckDiskShape(record, fmt::format("disk {} of backup {}", disk, backup_id)));
  DiskSummary summary;
  summary.slots = SlotCount(record);
  summary.group_slots = GroupSlots(record.chunk_size);
  const uint64_t pages = (summary.slots + kIndexPageSlots - 1) / kIndexPageSlots;
  // Only stored pages hold data: scan them, and count the rest as holes.
  VV_RETURN_IF_ERROR(ForEachIndexPage(
      backup_id, disk, record, [&](uint64_t page, const ChunkId* ids, size_t n) {
        while (summary.pages() < page) AddSummaryPage(nullptr, 0, &summary);
        AddSummaryPage(ids, n, &summary);
        return true;
      }));
  while (summary.pages() < pages) AddSummaryPage(nullptr, 0, &summary);
  return summary;
}

Result<std::optional<VerifyRecord>> Catalog::GetVerification(uint64_t backup_id) const {
  std::string value;
  Status s = kv_->Get(KvSpace::kCatalog, VerifyKey(backup_id), &value);
  if (s.IsNotFound()) return std::optional<VerifyRecord>();
  VV_RETURN_IF_ERROR(s);
  try {
    const json j = json::parse(value);
    VerifyRecord r;
    r.time_us = JsonInt<int64_t>(j.at("time_us"));
    r.ok = j.at("ok").get<bool>();
    r.sample_percent = j.at("sample_percent").get<double>();
    r.chunks = JsonInt<uint64_t>(j.at("chunks"));
    r.problems = j.at("problems").get<std::vector<std::string>>();
    return std::optional<VerifyRecord>(std::move(r));
  } catch (const std::exception& e) {
    return Status::Corruption(
        fmt::format("verification record of backup {} does not decode: {}", backup_id, e.what()));
  }
}

Status Catalog::RecordVerifications(
    const std::vector<std::pair<uint64_t, VerifyRecord>>& records) {
  KvBatch batch;
  for (const auto& [backup_id, r] : records) {
    // A backup pruned since it was read needs no record (and must not get an orphan).
    if (Status s = CheckBackupExists(backup_id); !s.ok()) {
      if (s.IsNotFound()) continue;
      return s;
    }
    const json j{{"v", kRecordVersion},    {"time_us", r.time_us},
                 {"ok", r.ok},             {"sample_percent", r.sample_percent},
                 {"chunks", r.chunks},     {"problems", r.problems}};
    batch.Put(KvSpace::kCatalog, VerifyKey(backup_id),
              j.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  std::lock_guard<std::mutex> lock(commit_mu_);
  VV_RETURN_IF_ERROR(AddGenerationBump(&batch));
  return kv_->Write(batch, /*sync=*/true);
}

Status Catalog::AddGenerationBump(KvBatch* batch) const {
  VV_ASSIGN_OR_RETURN(const uint64_t generation, Generation());
  std::string gen;
  PutBigEndian64(&gen, generation + 1);
  batch->Put(KvSpace::kCatalog, kGenerationKey, gen);
  return Status::OK();
}

Status Catalog::BumpGeneration() {
  KvBatch batch;
  std::lock_guard<std::mutex> lock(commit_mu_);
  VV_RETURN_IF_ERROR(AddGenerationBump(&batch));
  return kv_->Write(batch, /*sync=*/true);
}

Status Catalog::ForEachIndexPage(
    uint64_t backup_id, uint32_t disk, const DiskRecord& record,
    const std::function<bool(uint64_t page, const ChunkId* ids, size_t n)>& fn) const {
  VV_RETURN_IF_ERROR(
      CheckDiskShape(record, fmt::format("disk {} of backup {}", disk, backup_id)));
  const uint64_t slots = SlotCount(record);
  const uint64_t pages = (slots + kIndexPageSlots - 1) / kIndexPageSlots;
  const std::string prefix = IndexDiskPrefix(backup_id, disk);
  std::vector<ChunkId> ids(kIndexPageSlots);
  Status inner;
  VV_RETURN_IF_ERROR(kv_->Scan(KvSpace::kIndex, prefix, [&](std::string_view k,
                                                            std::string_view v) {
    const uint64_t page =
        k.size() == prefix.size() + 8 ? GetBigEndian64(k.data() + prefix.size()) : pages;
    const uint64_t in_disk = page < pages ? std::min<uint64_t>(kIndexPageSlots,
                                                               slots - page * kIndexPageSlots)
                                          : 0;
    if (page >= pages || v.size() % 16 != 0 || v.size() / 16 != in_disk) {
      inner = Status::Corruption(fmt::format(
          "index page {} of backup {} disk {} is malformed ({} bytes)", page, backup_id, disk,
          v.size()));
      return false;
    }
    std::memcpy(ids.data(), v.data(), v.size());
    return fn(page, ids.data(), static_cast<size_t>(in_disk));
  }));
  VV_RETURN_IF_ERROR(inner);
  // A removed backup has no pages: that must not read as a disk of holes.
  return CheckBackupExists(backup_id);
}

Status Catalog::AddMissingSummaries(uint64_t* skipped) {
  std::vector<uint64_t> ids;
  VV_RETURN_IF_ERROR(kv_->Scan(KvSpace::kCatalog, kBackupPrefix, [&](std::string_view k,
                                                                     std::string_view) {
    if (k.size() == kBackupPrefix.size() + 8) {
      ids.push_back(GetBigEndian64(k.data() + kBackupPrefix.size()));
    }
    return true;
  }));
  KvBatch batch;
  for (uint64_t id : ids) {
    Result<BackupRecord> record = GetBackup(id);
    if (!record.ok()) {
      if (skipped != nullptr) ++*skipped;
      continue;
    }
    const BackupRecord& b = *record;
    for (uint32_t d = 0; d < b.disks.size(); ++d) {
      std::string value;
      Status s = kv_->Get(KvSpace::kCatalog, SummaryKey(id, d), &value);
      if (s.ok()) continue;
      if (!s.IsNotFound()) return s;
      // A disk whose index does not read stays without a summary: readers compute it
      // and report the damage there, and one damaged backup must not stop every ingest.
      Result<DiskSummary> summary = ComputeDiskSummary(id, d, b.disks[d]);
      if (!summary.ok()) {
        if (skipped != nullptr) ++*skipped;
        continue;
      }
      batch.Put(KvSpace::kCatalog, SummaryKey(id, d), EncodeDiskSummary(*summary));
    }
  }
  return kv_->Write(batch, /*sync=*/true);
}

Status Catalog::CommitBackup(const VmRecord& vm, BackupRecord* backup,
                             const std::vector<DiskIndex>& indexes) {
  if (indexes.size() != backup->disks.size()) {
    return Status::InvalidArgument("a backup needs one index per disk");
  }
  for (size_t d = 0; d < indexes.size(); ++d) {
    const DiskRecord& disk = backup->disks[d];
    const std::string what = fmt::format("disk {} of the backup", d);
    if (!CheckDiskShape(disk, what).ok() || indexes[d].size() != SlotCount(disk)) {
      return Status::InvalidArgument(
          fmt::format("{} has chunk size {} and an index of {} slots for {} bytes", what,
                      disk.chunk_size, indexes[d].size(), disk.virtual_size));
    }
  }
  std::lock_guard<std::mutex> lock(commit_mu_);
  uint64_t id = 1;
  std::string value;
  Status s = kv_->Get(KvSpace::kCatalog, kNextIdKey, &value);
  if (s.ok() && value.size() == 8) {
    id = GetBigEndian64(value.data());
  } else if (!s.IsNotFound()) {
    return s.ok() ? Status::Corruption("the next backup id does not decode") : s;
  }

  // Backup directories are named by the second; keep them unique per VM.
  VV_ASSIGN_OR_RETURN(std::vector<BackupRecord> existing, ListBackups(backup->vm));
  std::set<std::string> names;
  for (const auto& b : existing) names.insert(b.name());
  while (names.count(backup->name()) != 0) {
    backup->time_us = (backup->time_us / 1'000'000 + 1) * 1'000'000;
  }
  backup->id = id;

  KvBatch batch;
  std::string next;
  PutBigEndian64(&next, id + 1);
  batch.Put(KvSpace::kCatalog, kNextIdKey, next);
  VV_RETURN_IF_ERROR(AddGenerationBump(&batch));
  batch.Put(KvSpace::kCatalog, VmKey(vm.name), EncodeVmRecord(vm));
  batch.Put(KvSpace::kCatalog, BackupKey(id), EncodeBackupRecord(*backup));
  batch.Put(KvSpace::kCatalog, VmBackupKey(backup->vm, backup->time_us, id), "");
  for (uint32_t d = 0; d < indexes.size(); ++d) {
    const DiskIndex& index = indexes[d];
    batch.Put(KvSpace::kCatalog, SummaryKey(id, d),
              EncodeDiskSummary(SummarizeIndex(index, backup->disks[d].chunk_size)));
    for (uint64_t first = 0; first < index.size(); first += kIndexPageSlots) {
      const size_t n = std::min<size_t>(kIndexPageSlots, index.size() - first);
      bool any = false;
      for (size_t i = 0; i < n && !any; ++i) any = !index[first + i].is_zero();
      if (!any) continue;  // pages of holes are not stored
      batch.Put(KvSpace::kIndex, IndexKey(id, d, first / kIndexPageSlots),
                std::string_view(reinterpret_cast<const char*>(index[first].bytes.data()), n * 16));
    }
  }
  // The chunks this backup names were written unlogged: make them durable first.
  VV_RETURN_IF_ERROR(kv_->Flush().WithContext("flush chunks before commit"));
  return kv_->Write(batch, /*sync=*/true);
}

Status Catalog::DeletePrefix(KvSpace space, std::string_view prefix, KvBatch* batch) const {
  return kv_->Scan(space, prefix, [batch, space](std::string_view k, std::string_view) {
    batch->Delete(space, k);
    return true;
  });
}

Status Catalog::DeleteBackups(const std::vector<uint64_t>& ids) {
  const std::set<uint64_t> unique(ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(commit_mu_);
  KvBatch batch;
  std::map<std::string, size_t> removed;  // per VM
  for (uint64_t id : unique) {
    VV_ASSIGN_OR_RETURN(const BackupRecord b, GetBackup(id));
    batch.Delete(KvSpace::kCatalog, BackupKey(id));
    batch.Delete(KvSpace::kCatalog, VmBackupKey(b.vm, b.time_us, id));
    batch.Delete(KvSpace::kCatalog, VerifyKey(id));
    VV_RETURN_IF_ERROR(DeletePrefix(KvSpace::kCatalog, SummaryBackupPrefix(id), &batch));
    VV_RETURN_IF_ERROR(DeletePrefix(KvSpace::kIndex, BackupIdPrefix(id), &batch));
    ++removed[b.vm];
  }
  if (batch.empty()) return Status::OK();
  // A VM that loses its last backup goes too, so it leaves the mount and the listing.
  for (const auto& [vm, n] : removed) {
    size_t backups = 0;
    VV_RETURN_IF_ERROR(kv_->Scan(KvSpace::kCatalog, VmBackupPrefix(vm),
                                 [&](std::string_view, std::string_view) {
                                   ++backups;
                                   return true;
                                 }));
    if (backups == n) batch.Delete(KvSpace::kCatalog, VmKey(vm));
  }
  VV_RETURN_IF_ERROR(AddGenerationBump(&batch));
  return kv_->Write(batch, /*sync=*/true);
}

}  // namespace vmvault::store
