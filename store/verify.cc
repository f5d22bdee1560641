#include "store/verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <unordered_map>

#include "base/thread_pool.h"

namespace vmvault::store {
namespace {

struct IdHash {
  size_t operator()(const ChunkId& id) const {
    uint64_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);
    return static_cast<size_t>(h);
  }
};
// Each distinct chunk, with the most bytes any slot naming it needs.
using NeedMap = std::unordered_map<ChunkId, uint32_t, IdHash>;

// Calls fn(disk, ids, n) for every stored index page of every disk of `b`; an index
// that does not read is a problem of that disk.
void ScanBackup(const Catalog& catalog, BackupVerdict* v,
                const std::function<void(uint32_t disk, uint64_t page, const ChunkId*,
                                         size_t)>& fn) {
  const BackupRecord& b = v->backup;
  for (uint32_t d = 0; d < b.disks.size(); ++d) {
    const DiskRecord& rec = b.disks[d];
    DiskSummary seen;
    Status s = CheckDiskShape(rec, fmt::format("disk {}", rec.name));
    if (s.ok()) {
      seen.slots = SlotCount(rec);
      seen.group_slots = GroupSlots(rec.chunk_size);
      s = catalog.ForEachIndexPage(b.id, d, rec, [&](uint64_t page, const ChunkId* ids, size_t n) {
        while (seen.pages() < page) AddSummaryPage(nullptr, 0, &seen);
        AddSummaryPage(ids, n, &seen);
        fn(d, page, ids, n);
        return true;
      });
    }
    if (!s.ok()) {
      v->problems.push_back(fmt::format("disk {}: its index does not read: {}", rec.name,
                                        s.ToString()));
      continue;
    }
    while (seen.pages() < (seen.slots + kIndexPageSlots - 1) / kIndexPageSlots) {
      AddSummaryPage(nullptr, 0, &seen);
    }
    uint64_t data_slots = 0;
    for (uint16_t n : seen.page_data_slots) data_slots += n;
    if (data_slots != rec.data_chunks) {
      v->problems.push_back(fmt::format("disk {}: the index holds {} data chunks, the record says {}",
                                        rec.name, data_slots, rec.data_chunks));
    }
    auto stored = catalog.ReadDiskSummary(b.id, d, rec);
    if (!stored.ok()) {
      v->problems.push_back(fmt::format("disk {}: {}", rec.name, stored.status().ToString()));
    } else if (!(*stored == seen)) {
      // Name the pages that differ (a few): a missing page reads as EIO in the mount.
      std::string pages;
      int named = 0;
      for (uint64_t p = 0; p < std::min(stored->pages(), seen.pages()); ++p) {
        if (stored->page_data_slots[p] == seen.page_data_slots[p] &&
            stored->page_data_groups[p] == seen.page_data_groups[p]) {
          continue;
        }
        if (++named > 3) {
          pages += ", ...";
          break;
        }
        pages += fmt::format("{}page {} holds {} data chunks, the summary says {}",
                             named > 1 ? ", " : " (", p, seen.page_data_slots[p],
                             stored->page_data_slots[p]);
      }
      if (named > 0) pages += ")";
      v->problems.push_back(fmt::format("disk {}: its stored summary does not match its index{}",
                                        rec.name, pages));
    }
  }
}

}  // namespace

bool VerifyReport::ok() const {
  return std::all_of(backups.begin(), backups.end(),
                     [](const BackupVerdict& v) { return v.problems.empty(); });
}

Result<VerifyReport> Verify(const Repository& repo, const VerifyOptions& options) {
  const Catalog& catalog = repo.catalog();
  VerifyReport report;
  VV_ASSIGN_OR_RETURN(std::vector<VmRecord> vms, catalog.ListVms());
  if (options.vm) {
    std::erase_if(vms, [&](const VmRecord& v) { return v.name != *options.vm; });
    if (vms.empty()) return Status::NotFound(fmt::format("no VM named '{}'", *options.vm));
  }
  for (const VmRecord& vm : vms) {
    VV_ASSIGN_OR_RETURN(std::vector<BackupRecord> backups, catalog.ListBackups(vm.name));
    for (BackupRecord& b : backups) {
      if (b.time_us >= options.since_us) report.backups.push_back({std::move(b), 0, {}});
    }
  }

  // Pass 1: every index, and the distinct chunks they name with the length each needs
  // (a full slot needs a whole chunk; the last slot of a disk may need less).
  NeedMap all;
  for (BackupVerdict& v : report.backups) {
    NeedMap mine;
    ScanBackup(catalog, &v, [&](uint32_t disk, uint64_t page, const ChunkId* ids, size_t n) {
      const DiskRecord& d = v.backup.disks[disk];
      for (size_t i = 0; i < n; ++i) {
        if (ids[i].is_zero()) continue;
        const uint64_t start = (page * kIndexPageSlots + i) * d.chunk_size;
        const auto len = static_cast<uint32_t>(std::min<uint64_t>(d.chunk_size, d.virtual_size - start));
        uint32_t& need = mine[ids[i]];
        need = std::max(need, len);
      }
    });
    v.chunks = mine.size();
    for (const auto& [id, need] : mine) {
      uint32_t& n = all[id];
      n = std::max(n, need);
    }
  }
  report.distinct_chunks = all.size();

  // Pass 2: each distinct chunk exists and is long enough; a sample (or all) is re-read
  // and re-hashed.
  std::vector<std::pair<ChunkId, uint32_t>> ids(all.begin(), all.end());
  all.clear();
  std::sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) {
    return a.first.bytes < b.first.bytes;  // key order: sequential reads of the chunks
  });
  std::mt19937_64 rng(options.seed != 0 ? options.seed : std::random_device{}());
  std::uniform_real_distribution<double> coin(0, 100);
  std::mutex mu;
  // A bad chunk: why, and how many of its bytes are good (0 when it cannot be read; a
  // short chunk still serves slots that need no more than it holds).
  struct Bad {
    std::string why;
    uint64_t usable = 0;
  };
  std::unordered_map<ChunkId, Bad, IdHash> bad;  // GUARDED_BY(mu)
  std::atomic<uint64_t> read{0}, bytes{0}, checked{0};
  {
    const size_t threads = options.threads != 0 ? options.threads : ThreadPool::HardwareThreads();
    ThreadPool pool(threads);
    constexpr size_t kBatch = 64;
    for (size_t first = 0; first < ids.size(); first += kBatch) {
      struct Item {
        ChunkId id;
        uint32_t need;
        bool reread;
      };
      std::vector<Item> batch;
      for (size_t i = first; i < std::min(ids.size(), first + kBatch); ++i) {
        batch.push_back({ids[i].first, ids[i].second,
                         options.sample_percent >= 100 || coin(rng) < options.sample_percent});
      }
      pool.Submit([&, batch = std::move(batch)] {
        std::string plain;
        for (const Item& item : batch) {
          checked.fetch_add(1);
          const ChunkId& id = item.id;
          Status s;
          uint64_t length = 0;
          try {
            if (item.reread) {
              s = repo.chunks().Read(id, &plain);
              length = plain.size();
              if (s.ok()) {
                read.fetch_add(1);
                bytes.fetch_add(plain.size());
                if (options.progress != nullptr) options.progress->Add(plain.size());
              }
            } else {
              auto meta = repo.chunks().Lookup(id);
              if (!meta.ok()) {
                s = meta.status();
              } else if (!meta->has_value()) {
                s = Status::NotFound(fmt::format("chunk {} is missing", id.hex()));
              } else {
                length = (*meta)->plain_len;
              }
            }
            if (s.ok() && length < item.need) {
              s = Status::Corruption(fmt::format("chunk {} holds {} bytes, a slot needs {}",
                                                 id.hex(), length, item.need));
            } else if (!s.ok()) {
              length = 0;
            }
          } catch (const std::exception& e) {  // e.g. bad_alloc: a problem, never a pass
            s = Status::Corruption(fmt::format("chunk {}: {}", id.hex(), e.what()));
            length = 0;
          }
          if (!s.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            bad.emplace(id, Bad{s.ToString(), length});
          }
        }
      });
    }
  }  // the pool finishes every batch
  if (checked.load() != ids.size()) {
    return Status::IOError(fmt::format("verify checked {} of {} chunks", checked.load(), ids.size()));
  }
  report.chunks_read = read.load();
  report.bytes_read = bytes.load();

  // Pass 3, only when something is wrong: which backups and disks name the bad chunks.
  if (!bad.empty()) {
    for (BackupVerdict& v : report.backups) {
      std::map<uint32_t, std::pair<uint64_t, std::string>> per_disk;  // count, first error
      BackupVerdict scratch{v.backup, 0, {}};
      ScanBackup(catalog, &scratch, [&](uint32_t disk, uint64_t page, const ChunkId* ids,
                                        size_t n) {
        const DiskRecord& d = v.backup.disks[disk];
        for (size_t i = 0; i < n; ++i) {
          if (ids[i].is_zero()) continue;
          auto it = bad.find(ids[i]);
          if (it == bad.end()) continue;
          const uint64_t start = (page * kIndexPageSlots + i) * d.chunk_size;
          if (std::min<uint64_t>(d.chunk_size, d.virtual_size - start) <= it->second.usable) {
            continue;  // a short chunk that holds all this slot needs
          }
          auto& [count, first] = per_disk[disk];
          if (count++ == 0) first = it->second.why;
        }
      });
      for (const auto& [disk, entry] : per_disk) {
        v.problems.push_back(fmt::format("disk {}: {} chunk slot{} cannot be read, first: {}",
                                         v.backup.disks[disk].name, entry.first,
                                         entry.first == 1 ? "" : "s", entry.second));
      }
    }
  }
  return report;
}

}  // namespace vmvault::store
