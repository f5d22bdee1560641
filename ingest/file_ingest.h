// Image-file ingest: `vmvault ingest --file PATH [--file PATH ...] [--vm NAME]
// [--tier hot|warm|cold]`. Each file is one disk of one new backup of one VM.
//
// Every file is probed, checked and mapped with qemu-img before a single byte is read,
// so a bad file among several stores nothing. Then each disk's data extents are read
// over NBD (one qemu-nbd per file, one libnbd connection per worker thread) through
// the chunking pipeline (pipeline.h), and the backup is committed in one atomic catalog
// write. Any failure before the commit returns its error and leaves no backup (chunks
// stored by then are unreferenced until a later backup uses them or gc removes them).
//
// The caller owns the repository (opened for writing) and keeps it alive during the
// call. Not meant to be called concurrently on the same repository (one writer).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "ingest/backup_builder.h"
#include "ingest/command_runner.h"
#include "ingest/image_source.h"
#include "ingest/qemu_img.h"
#include "store/catalog.h"
#include "store/repository.h"

namespace vmvault::ingest {

struct FileIngestOptions {
  std::vector<std::string> files;  // one disk each, in order; at least one
  // The VM's name, validated with ValidateName. Unset: the sanitized stem of the first
  // file ("/vms/web01.qcow2" -> "web01").
  std::optional<std::string> vm;
  // hot | warm | cold. Unset: the VM's current tier, or "warm" for a new VM. When set,
  // the VM's tier is updated.
  std::optional<std::string> tier;
  size_t threads = 0;     // worker threads per disk; 0 = all hardware threads
  bool progress = false;  // draw a progress bar (only when stderr is a terminal)
  // Empty, or one entry per file: its format ("" = let qemu-img probe it).
  std::vector<std::string> formats;
};

// The VM name IngestImageFiles gives `files`: `vm` when set (validated), else the
// sanitized stem of the first file ("/vms/web01.qcow2" -> "web01").
Result<std::string> VmNameForFiles(const std::optional<std::string>& vm,
                                   const std::vector<std::string>& files);

// Ingests opts.files as one new backup and returns the committed record (id set).
// Reads through `opener` (SourceOpener in production, an in-memory one in tests).
Result<store::BackupRecord> IngestImageFiles(store::Repository& repo, const FileIngestOptions& opts,
                                             CommandRunner& runner, const Clock& clock,
                                             ImageSourceOpener& opener);

// The same, reading over NBD with qemu-nbd.
Result<store::BackupRecord> IngestImageFiles(store::Repository& repo, const FileIngestOptions& opts,
                                             CommandRunner& runner, const Clock& clock);

// One source image after probing (qemu-img info, check and map), before reading.
struct ProbedFile {
  ImageInfo info;
  std::vector<Extent> extents;
  uint64_t allocated = 0;  // bytes in data extents
};
// Probes, checks and maps `path` ("" format: let qemu-img probe it). With
// `force_share`, for an image a paused QEMU holds (ImageInfo::force_share).
Result<ProbedFile> ProbeFile(CommandRunner& runner, const std::string& path,
                             const std::string& format, bool force_share = false);

// Probes a chain of images in `format`, base first (`chain.back()` is the disk), each
// opened on the images below it in `chain` (ImageInfo::backing_chain), never on the
// backing file its header names: probes every image, for VMDK checks that each was made
// on the one below it (CheckVmdkChain), checks every image and maps the top. The
// result's info is the top's, with its backing chain set. Nothing is read before every
// image has passed.
Result<ProbedFile> ProbeChain(CommandRunner& runner, const std::vector<std::string>& chain,
                              const std::string& format);

// Opens `file` through `opener` for `readers` readers and reads it into `builder` as
// disk `disk` (name set; other DiskSource fields as wanted). The source is closed
// again once the disk is read.
Status AddProbedFile(BackupBuilder& builder, const ProbedFile& file, DiskSource disk,
                     ImageSourceOpener& opener, int readers);

// OK for "hot", "warm" and "cold"; InvalidArgument naming the bad tier otherwise.
Status ValidateTier(std::string_view tier);

// Disk names for `files`: each file's sanitized stem, made unique in order by
// appending "-2", "-3", ... ("disk", "disk-2").
std::vector<std::string> DiskNamesForFiles(const std::vector<std::string>& files);

}  // namespace vmvault::ingest
