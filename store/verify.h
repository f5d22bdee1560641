// Verify: checks that backups can be restored, after borg check and restic's
// `check --read-data`. For each selected backup it checks every disk's index (pages
// well formed, the stored summary agreeing with them) and that every chunk the index
// names exists; then it re-reads and re-hashes the distinct chunks (all of them, or a
// random sample), in parallel. A chunk shared by many backups is read once.
//
// Problems are attributed to the backups and disks that reference the bad chunks, so
// the report says exactly what cannot be restored. Verify only reads; recording the
// results (Catalog::RecordVerification) is the caller's choice.
//
// Memory: the set of distinct chunk ids (about 50 bytes each). Thread-safe with
// respect to other readers; run it on a read-only or write-mode repository.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/result.h"
#include "store/repository.h"

namespace vmvault::store {

struct VerifyOptions {
  std::optional<std::string> vm = std::nullopt;  // only this VM's backups
  int64_t since_us = 0;           // only backups at or after this time
  double sample_percent = 100;    // of the distinct chunks to re-read; existence is always checked
  uint64_t seed = 0;              // which sample (0: a random one)
  size_t threads = 0;             // 0: one per core
  Progress* progress = nullptr;   // gets the stored bytes re-read
};

struct BackupVerdict {
  BackupRecord backup;
  uint64_t chunks = 0;                // distinct chunks it references
  std::vector<std::string> problems;  // empty: good
};

struct VerifyReport {
  std::vector<BackupVerdict> backups;  // oldest first, per VM
  uint64_t distinct_chunks = 0;
  uint64_t chunks_read = 0;
  uint64_t bytes_read = 0;  // plaintext bytes re-hashed
  bool ok() const;
};

Result<VerifyReport> Verify(const Repository& repo, const VerifyOptions& options);

}  // namespace vmvault::store
