// What qemu-img says about a source image file: its format, size, encryption and
// backing file (`qemu-img info`), whether its metadata is sound (`qemu-img check`), and
// which ranges hold data (`qemu-img map`). Every command goes through a CommandRunner,
// so unit tests replay recorded output. Every image argument is an absolute path, so
// qemu never reads a "protocol:" prefix out of a file name; an image opened on an
// explicit backing chain is named in qemu's option syntax (QemuImageArgs) instead.
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

// An image below another in a backing chain given explicitly (ImageInfo::backing_chain).
struct BackingLayer {
  std::string path;    // absolute; a regular file
  std::string format;  // qemu's name
  bool operator==(const BackingLayer&) const = default;
};

// A VMDK descriptor's parentCID when the image has no parent.
inline constexpr uint32_t kVmdkNoParentCid = 0xffffffff;

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
  // The backing file qemu reads beneath the image, "" when none: the one its header
  // names (full path), or backing_chain.front() when that is given.
  std::string backing_file;
  std::string backing_format;
  // Empty: qemu opens whatever backing file the image's header names. Otherwise the chain
  // qemu opens beneath `path` instead, whatever the headers say: the parent first, the
  // base last (which is opened on the backing file its own header names, if any).
  // ProbeImage looks at `path` alone and leaves this empty; CheckImage, MapImage and
  // NbdServer open the image on it.
  std::vector<BackingLayer> backing_chain;
  // VMDK only: the descriptor's CID and parentCID (kVmdkNoParentCid in a base image).
  std::optional<uint32_t> vmdk_cid;
  std::optional<uint32_t> vmdk_parent_cid;
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

// OK when every VMDK image of `chain` (base first, each as ProbeImage describes it) was
// made on the one below it: its parentCID is that one's CID, and the base's parentCID
// says it has no parent. qemu would refuse to read through a mismatched link, but only
// once it reaches it; this says so up front. InvalidArgument naming both files (or the
// base) otherwise; External when qemu-img reported no CID.
Status CheckVmdkChain(const std::vector<ImageInfo>& chain);

// Which program a command line is for: they differ in how they share locked images.
enum class QemuTool { kQemuImg, kQemuNbd };

// `info` in qemu's option syntax (qemu-img and qemu-nbd --image-opts): the format
// driver over the file (host_device for a block device), with `info.backing_chain` as
// nested "backing." options (those layers are files) and, with `info.force_share`,
// file.locking=off on every layer. Commas in paths are doubled.
std::string QemuImageOpts(const ImageInfo& info);

// The words that name `info` on a qemu-img or qemu-nbd command line: "-f FORMAT PATH", or
// "--image-opts QemuImageOpts(info)" when a file name cannot say what is needed: an
// explicit backing chain, or for qemu-nbd (7.2 has no --force-share) force_share. A
// qemu-img command line passes --force-share itself.
std::vector<std::string> QemuImageArgs(const ImageInfo& info, QemuTool tool);

// Parsers, exposed for tests. `path` is only used in messages.
Result<ImageInfo> ParseImageInfoJson(std::string_view json, const std::string& path);
Result<std::vector<MapEntry>> ParseImageMapJson(std::string_view json, const std::string& path);

// qemu-img's (or qemu-nbd's) stderr made readable: "qemu-img: " and repeated "Could not open '...':
// " prefixes removed, at most a few lines, joined with "; ".
std::string CleanQemuError(std::string_view stderr_text);

}  // namespace vmvault::ingest
