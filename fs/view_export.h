// ExportView: writes a view, whole, to a file or a block device through the mount's read
// loop (fs/view_reader.h), for `vmvault restore`. A file gets holes where the view has
// holes or all-zero blocks, so a restored disk is as sparse as the backup; a device gets
// every byte, its holes zeroed with BLKZEROOUT where the device supports it.
//
// Reads run ahead of the writes on the reader's prefetch pool. The caller owns `fd`;
// ExportView writes from offset 0, sets a file's size, and fsyncs before returning.
// Thread-compatible: one export per fd.
#pragma once

#include <cstdint>
#include <memory>

#include "base/progress.h"
#include "base/status.h"
#include "fs/view.h"
#include "fs/view_reader.h"

namespace vmvault::fs {

struct ExportOptions {
  // A block device: write zeros over holes, and do not truncate. Otherwise a regular
  // file: leave holes and all-zero blocks unwritten and set the file's size.
  bool device = false;
  Progress* progress = nullptr;  // gets every byte of the view, written or skipped
};

struct ExportStats {
  uint64_t bytes_written = 0;  // data written (zeros for a device's holes excluded)
  uint64_t bytes_zeroed = 0;   // a device's holes, zeroed
};

Result<ExportStats> ExportView(const std::shared_ptr<const View>& view, const ViewReader& reader,
                               int fd, const ExportOptions& options);

}  // namespace vmvault::fs
