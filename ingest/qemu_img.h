// What qemu-img says about a source image file: its format, size, encryption and
// backing file (`qemu-img info`), whether its metadata is sound (`qemu-img check`), and
// which ranges hold data (`qemu-img map`). Every command goes through a CommandRunner,
// so unit tests replay recorded output. Every image argument is an absolute path, so
// qemu never reads a "protocol:" prefix out of a file name.
//
// Errors are for people: a file that is missing is NotFound, a file that is not a
// readable, sound, supported image is InvalidArgument (Unsupported for encrypted or
// unsupported formats) with a message that names the file and says what is wrong, in
// qemu-img's words when it gave some. Output qemu-img should never print (bad JSON, a
// map with gaps) is External.
//
// All functions are stateless and thread-safe when the runner is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/image.h"
#include "base/result.h"
#include "ingest/command_runner.h"

namespace vmvault::ingest {

struct ImageInfo {
  std::string path;            // absolute path, as given to qemu-img
  std::string format;          // qemu-img's name: raw, qcow2, vmdk, vdi, vhdx, vpc, ...
  bool format_forced = false;  // given by the user rather than probed
  uint64_t virtual_size = 0;   // the guest-visible size in bytes
  uint64_t file_size = 0;      // st_size of the file (0 for a block device)
  bool block_device = false;
  bool encrypted = false;
  bool marked_corrupt = false;      // qcow2 "corrupt" flag
  bool external_data_file = false;  // qcow2 data-file: host offsets are not in `path`
  std::string vmdk_create_type;     // "monolithicSparse", "monolithicFlat", ...
  std::string backing_file;         // full path of the backing file, "" when none
  std::string backing_format;
  // Read while another process (a paused QEMU) holds the image's write lock: every
  // qemu-img and qemu-nbd call passes --force-share. Only safe while that process
  // cannot write (it is paused and flushed).
  bool force_share = false;
};

// One entry of `qemu-img map --output=json`.
struct MapEntry {
  uint64_t start = 0;
  uint64_t length = 0;
  bool data = false;
  bool zero = false;
  int depth = 0;
  std::optional<uint64_t> host_offset;  // "offset": where the bytes are in the file
};

// True for the formats vmvault ingests: raw, qcow2, vmdk, vdi, vhdx, vpc and the other
// unencrypted formats qemu reads (qcow, qed, parallels, dmg, bochs, cloop).
bool IsSupportedFormat(std::string_view format);

// OK when `path` names something to read: NotFound when it does not exist,
// InvalidArgument for a directory or a special file, IOError when it cannot be opened
// for reading. Fills file_size / block_device of *info when info is not null.
Status CheckSourcePath(const std::string& path, ImageInfo* info);

// Runs `qemu-img info` on `path` (made absolute) and validates the answer: a supported,
// unencrypted format, not marked corrupt, not empty, and plausible (a file named
// *.qcow2 that probes as raw has a damaged header; a file that probes as raw but whose
// size is not a multiple of 512 is no disk). `forced_format` ("" to probe) skips
// probing and the plausibility checks.
// With `force_share`, qemu-img ignores image locks (see ImageInfo::force_share).
Result<ImageInfo> ProbeImage(CommandRunner& runner, const std::string& path,
                             std::string_view forced_format = {}, bool force_share = false);

// Runs `qemu-img check` when the format supports it. A corrupt image (exit 2) or a
// check that could not complete (exit 1) is InvalidArgument quoting qemu-img; leaked
// clusters (exit 3) only log a warning.
Status CheckImage(CommandRunner& runner, const ImageInfo& info);

// Runs `qemu-img map` and returns the normalized extents covering [0, virtual_size).
// A range is a hole (data = false) only when qemu-img says it reads as zeros. Data that
// the map places past the end of the file means the file was truncated:
// InvalidArgument.
Result<std::vector<Extent>> MapImage(CommandRunner& runner, const ImageInfo& info);

// Parsers, exposed for tests. `path` is only used in messages.
Result<ImageInfo> ParseImageInfoJson(std::string_view json, const std::string& path);
Result<std::vector<MapEntry>> ParseImageMapJson(std::string_view json, const std::string& path);

// qemu-img's (or qemu-nbd's) stderr made readable: "qemu-img: " and repeated "Could not open '...':
// " prefixes removed, at most a few lines, joined with "; ".
std::string CleanQemuError(std::string_view stderr_text);

}  // namespace vmvault::ingest
