#include "ingest/qemu_img.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/names.h"

namespace vmvault::ingest {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 12> kSupportedFormats = {
    "raw",  "qcow2", "vmdk",      "vdi", "vhdx",  "vpc",
    "qcow", "qed",   "parallels", "dmg", "bochs", "cloop"};

// Formats whose `qemu-img check` does something useful.
constexpr std::array<std::string_view, 6> kCheckableFormats = {"qcow2", "qed",  "vmdk",
                                                               "vdi",   "vhdx", "parallels"};

// The format a file name claims, "" when its extension says nothing.
std::string_view FormatClaimedByName(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".qcow2") return "qcow2";
  if (ext == ".vmdk") return "vmdk";
  if (ext == ".vdi") return "vdi";
  if (ext == ".vhdx") return "vhdx";
  if (ext == ".vhd" || ext == ".vpc") return "vpc";
  if (ext == ".qed") return "qed";
  return {};
}

std::string FormatList() {
  std::string out;
  for (std::string_view f : kSupportedFormats) {
    if (!out.empty()) out += ", ";
    out += f;
  }
  return out;
}

Result<std::string> AbsolutePath(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("empty image path");
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec)
    return Status::IOError(fmt::format("cannot resolve '{}': {}", Printable(path), ec.message()));
  return abs.lexically_normal().string();
}

Result<json> ParseJson(std::string_view text, std::string_view what, const std::string& path) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    return Status::External(fmt::format("qemu-img {} printed output for '{}' that is not JSON: {}",
                                        what, Printable(path), e.what()));
  }
}

// A failed qemu-img run as a Status for people.
Status QemuFailure(std::string_view verb, const std::string& path, const CommandOutput& out) {
  std::string why = CleanQemuError(out.stderr_text);
  if (why.empty()) why = fmt::format("qemu-img {} exited with status {}", verb, out.exit_code);
  return Status::InvalidArgument(fmt::format("cannot read image '{}': {}", Printable(path), why));
}

// `value` in qemu's option syntax, where a comma is written twice.
std::string OptionValue(std::string_view value) {
  std::string out;
  for (char c : value) out += c == ',' ? std::string(",,") : std::string(1, c);
  return out;
}

// The options of one layer: `prefix` is "" for the image itself, "backing." for its
// parent, "backing.backing." for the parent's parent, ...
std::string LayerOpts(std::string_view prefix, std::string_view format, std::string_view protocol,
                      std::string_view path, bool locking_off) {
  std::string out = fmt::format("{0}driver={1},{0}file.driver={2},{0}file.filename={3}", prefix,
                                format, protocol, OptionValue(path));
  if (locking_off) out += fmt::format(",{}file.locking=off", prefix);
  return out;
}

}  // namespace

std::string QemuImageOpts(const ImageInfo& info) {
  std::string out = LayerOpts("", info.format, info.block_device ? "host_device" : "file",
                              info.path, info.force_share);
  std::string prefix;
  for (const BackingLayer& layer : info.backing_chain) {
    prefix += "backing.";
    out += ',' + LayerOpts(prefix, layer.format, "file", layer.path, info.force_share);
  }
  return out;
}

std::vector<std::string> QemuImageArgs(const ImageInfo& info, QemuTool tool) {
  if (info.backing_chain.empty() && !(tool == QemuTool::kQemuNbd && info.force_share)) {
    return {"-f", info.format, info.path};
  }
  return {"--image-opts", QemuImageOpts(info)};
}

Status CheckVmdkChain(const std::vector<ImageInfo>& chain) {
  for (size_t i = 0; i < chain.size(); ++i) {
    const ImageInfo& image = chain[i];
    if (!image.vmdk_cid || !image.vmdk_parent_cid) {
      return Status::External(
          fmt::format("qemu-img info names no CID for the VMDK image '{}'", Printable(image.path)));
    }
    if (i == 0) {
      if (*image.vmdk_parent_cid == kVmdkNoParentCid) continue;
      return Status::InvalidArgument(fmt::format(
          "VMDK image '{}' is the base of the chain, but it is a differencing image itself (its "
          "parentCID is {:08x}): the image it was made on is missing from the chain",
          Printable(image.path), *image.vmdk_parent_cid));
    }
    const ImageInfo& parent = chain[i - 1];
    if (*image.vmdk_parent_cid == *parent.vmdk_cid) continue;
    return Status::InvalidArgument(fmt::format(
        "VMDK image '{}' was not made on '{}': its parentCID is {:08x}, but the CID of '{}' is "
        "{:08x} (the parent was written to after the child was made, or the chain is not the "
        "one the images were made in)",
        Printable(image.path), Printable(parent.path), *image.vmdk_parent_cid,
        Printable(parent.path), *parent.vmdk_cid));
  }
  return Status::OK();
}

bool IsSupportedFormat(std::string_view format) {
  return std::find(kSupportedFormats.begin(), kSupportedFormats.end(), format) !=
         kSupportedFormats.end();
}

std::string CleanQemuError(std::string_view stderr_text) {
  std::vector<std::string> lines;
  size_t total = 0;
  size_t pos = 0;
  while (pos < stderr_text.size()) {
    size_t nl = stderr_text.find('\n', pos);
    if (nl == std::string_view::npos) nl = stderr_text.size();
    std::string line(stderr_text.substr(pos, nl - pos));
    pos = nl + 1;
    // "qemu-img: ", "qemu-nbd: ".
    if (line.rfind("qemu-", 0) == 0) {
      const size_t colon = line.find(": ");
      if (colon != std::string::npos && colon < 24 && line.find(' ') == colon + 1) {
        line.erase(0, colon + 2);
      }
    }
    // "Could not open 'x': Could not open 'x': No such file" -> "No such file".
    for (;;) {
      if (line.rfind("Could not open '", 0) != 0) break;
      const size_t end = line.find("': ");
      if (end == std::string::npos) break;
      line.erase(0, end + 3);
    }
    if (line.rfind("ERROR: ", 0) == 0) line.erase(0, 7);  // qemu-img check
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    ++total;
    if (lines.size() < 4) lines.push_back(Printable(line));
  }
  std::string out;
  for (const std::string& l : lines) {
    if (!out.empty()) out += "; ";
    out += l;
  }
  if (total > lines.size()) out += fmt::format(" (and {} more lines)", total - lines.size());
  return out;
}

Status CheckSourcePath(const std::string& path, ImageInfo* info) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return Status::NotFound(fmt::format("image file '{}' does not exist", Printable(path)));
    }
    return Status::FromErrno(err, fmt::format("cannot access '{}'", Printable(path)));
  }
  if (S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(
        fmt::format("'{}' is a directory, not a disk image file", Printable(path)));
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Status::InvalidArgument(
        fmt::format("'{}' is neither a regular file nor a block device", Printable(path)));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status::FromErrno(err, fmt::format("cannot open '{}' for reading", Printable(path)));
  }
  ::close(fd);
  if (info != nullptr) {
    info->block_device = S_ISBLK(st.st_mode);
    info->file_size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  }
  return Status::OK();
}

Result<ImageInfo> ParseImageInfoJson(std::string_view text, const std::string& path) {
  VV_ASSIGN_OR_RETURN(const json j, ParseJson(text, "info", path));
  ImageInfo info;
  info.path = path;
  try {
    if (!j.is_object() || !j.contains("format") || !j.contains("virtual-size")) {
      return Status::External(
          fmt::format("qemu-img info for '{}' names no format or size", Printable(path)));
    }
    info.format = j.at("format").get<std::string>();
    info.virtual_size = j.at("virtual-size").get<uint64_t>();
    info.encrypted = j.value("encrypted", false);
    info.backing_file = j.value("full-backing-filename", j.value("backing-filename", ""));
    info.backing_format = j.value("backing-filename-format", "");
    if (j.contains("format-specific")) {
      const json& spec = j.at("format-specific");
      const json data = spec.value("data", json::object());
      if (data.is_object()) {
        info.marked_corrupt = data.value("corrupt", false);
        info.external_data_file = data.contains("data-file");
        info.vmdk_create_type = data.value("create-type", "");
        if (data.contains("cid")) info.vmdk_cid = data.at("cid").get<uint32_t>();
        if (data.contains("parent-cid")) {
          info.vmdk_parent_cid = data.at("parent-cid").get<uint32_t>();
        }
        if (data.contains("encrypt")) info.encrypted = true;
      }
    }
  } catch (const json::exception& e) {
    return Status::External(
        fmt::format("qemu-img info for '{}' is not as expected: {}", Printable(path), e.what()));
  }
  return info;
}

Result<std::vector<MapEntry>> ParseImageMapJson(std::string_view text, const std::string& path) {
  VV_ASSIGN_OR_RETURN(const json j, ParseJson(text, "map", path));
  std::vector<MapEntry> entries;
  try {
    if (!j.is_array()) {
      return Status::External(
          fmt::format("qemu-img map for '{}' is not a list of extents", Printable(path)));
    }
    entries.reserve(j.size());
    for (const json& e : j) {
      MapEntry m;
      m.start = e.at("start").get<uint64_t>();
      m.length = e.at("length").get<uint64_t>();
      m.data = e.at("data").get<bool>();
      m.zero = e.at("zero").get<bool>();
      m.depth = e.value("depth", 0);
      if (e.contains("offset")) m.host_offset = e.at("offset").get<uint64_t>();
      entries.push_back(m);
    }
  } catch (const json::exception& e) {
    return Status::External(
        fmt::format("qemu-img map for '{}' is not as expected: {}", Printable(path), e.what()));
  }
  return entries;
}

Result<ImageInfo> ProbeImage(CommandRunner& runner, const std::string& given_path,
                             std::string_view forced_format, bool force_share) {
  VV_ASSIGN_OR_RETURN(const std::string path, AbsolutePath(given_path));
  ImageInfo stat_info;
  VV_RETURN_IF_ERROR(CheckSourcePath(path, &stat_info));
  if (!forced_format.empty() && !IsSupportedFormat(forced_format)) {
    return Status::InvalidArgument(fmt::format("unknown image format '{}' for '{}'; known: {}",
                                               Printable(forced_format), Printable(path),
                                               FormatList()));
  }
  std::vector<std::string> argv = {"qemu-img", "info", "--output=json"};
  if (force_share) argv.push_back("--force-share");
  if (!forced_format.empty()) {
    argv.push_back("-f");
    argv.emplace_back(forced_format);
  }
  argv.push_back(path);
  VV_ASSIGN_OR_RETURN(const CommandOutput out, runner.Run(argv));
  if (out.exit_code != 0) return QemuFailure("info", path, out);
  VV_ASSIGN_OR_RETURN(ImageInfo info, ParseImageInfoJson(out.stdout_text, path));
  info.file_size = stat_info.file_size;
  info.force_share = force_share;
  info.block_device = stat_info.block_device;
  info.format_forced = !forced_format.empty();
  const std::string p = Printable(path);

  if (info.encrypted) {
    return Status::Unsupported(fmt::format(
        "'{}' is an encrypted {} image; vmvault cannot read encrypted images", p, info.format));
  }
  if (!IsSupportedFormat(info.format)) {
    return Status::Unsupported(
        fmt::format("'{}' is a {} image, a format vmvault does not ingest"
                    " (supported: {})",
                    p, Printable(info.format), FormatList()));
  }
  if (info.marked_corrupt) {
    return Status::InvalidArgument(fmt::format(
        "'{}' is marked corrupt by qemu; repair it with 'qemu-img check -r all' first", p));
  }
  if (info.virtual_size == 0) {
    return Status::InvalidArgument(fmt::format("'{}' is an empty disk (0 bytes)", p));
  }
  if (!info.format_forced && info.format == "raw") {
    const std::string_view claimed = FormatClaimedByName(path);
    if (!claimed.empty()) {
      return Status::InvalidArgument(fmt::format(
          "'{}' is named like a {} image but has no valid {} header (qemu-img sees only raw "
          "bytes): the image is corrupt. If it really is a raw disk, give its format as raw "
          "(--format raw)",
          p, claimed, claimed));
    }
    if (!info.block_device && info.file_size % 512 != 0) {
      return Status::InvalidArgument(fmt::format(
          "'{}' is not a disk image: qemu-img recognizes no image format in it, and its size "
          "({} bytes) is not a multiple of 512 as a raw disk's would be. If it really is a raw "
          "disk, give its format as raw (--format raw)",
          p, info.file_size));
    }
  }
  if (!info.format_forced) {
    const std::string_view claimed = FormatClaimedByName(path);
    if (!claimed.empty() && claimed != info.format) {
      spdlog::warn("'{}' is named like a {} image but holds a {} image; reading it as {}", p,
                   claimed, info.format, info.format);
    }
  }
  return info;
}

Status CheckImage(CommandRunner& runner, const ImageInfo& info) {
  if (std::find(kCheckableFormats.begin(), kCheckableFormats.end(), info.format) ==
      kCheckableFormats.end()) {
    return Status::OK();
  }
  std::vector<std::string> argv = {"qemu-img", "check", "--output=json"};
  if (info.force_share) argv.push_back("--force-share");
  std::ranges::copy(QemuImageArgs(info, QemuTool::kQemuImg), std::back_inserter(argv));
  VV_ASSIGN_OR_RETURN(const CommandOutput out, runner.Run(argv));
  const std::string p = Printable(info.path);
  switch (out.exit_code) {
    case 0:
    case 63:  // the format has no check
      return Status::OK();
    case 3:
      spdlog::warn("'{}' has leaked clusters (harmless wasted space); reading it anyway", p);
      return Status::OK();
    case 2: {
      std::string why = CleanQemuError(out.stderr_text);
      return Status::InvalidArgument(fmt::format(
          "'{}' is a corrupt {} image (qemu-img check found errors{}{}); it may be truncated "
          "or damaged",
          p, info.format, why.empty() ? "" : ": ", why));
    }
    default: {
      // The image (or its backing file) did not even open: say so, not "check failed".
      if (out.stderr_text.rfind("qemu-img: Could not open '", 0) == 0) {
        return QemuFailure("check", info.path, out);
      }
      std::string why = CleanQemuError(out.stderr_text);
      if (why.empty()) why = fmt::format("exit status {}", out.exit_code);
      return Status::InvalidArgument(
          fmt::format("'{}' could not be checked as a {} image, it may be truncated or damaged: {}",
                      p, info.format, why));
    }
  }
}

Result<std::vector<Extent>> MapImage(CommandRunner& runner, const ImageInfo& info) {
  std::vector<std::string> argv = {"qemu-img", "map", "--output=json"};
  if (info.force_share) argv.push_back("--force-share");
  std::ranges::copy(QemuImageArgs(info, QemuTool::kQemuImg), std::back_inserter(argv));
  VV_ASSIGN_OR_RETURN(const CommandOutput out, runner.Run(argv));
  if (out.exit_code != 0) return QemuFailure("map", info.path, out);
  VV_ASSIGN_OR_RETURN(const std::vector<MapEntry> entries,
                      ParseImageMapJson(out.stdout_text, info.path));
  const std::string p = Printable(info.path);
  // Host offsets point into info.path itself only for single-file formats.
  const bool offsets_in_file =
      !info.block_device && !info.external_data_file &&
      (info.format == "qcow2" || info.format == "vdi" || info.format == "vpc" ||
       info.format == "vhdx" || info.format == "qed" ||
       (info.format == "vmdk" && (info.vmdk_create_type == "monolithicSparse" ||
                                  info.vmdk_create_type == "streamOptimized")));
  std::vector<Extent> extents;
  extents.reserve(entries.size());
  uint64_t expected = 0;
  for (const MapEntry& m : entries) {
    if (m.start != expected || m.length > info.virtual_size - m.start) {
      return Status::External(
          fmt::format("qemu-img map for '{}' has a gap or overlap at offset {}", p, m.start));
    }
    expected = m.start + m.length;
    const bool hole = m.zero;
    if (!hole && offsets_in_file && m.depth == 0 && m.host_offset &&
        *m.host_offset + m.length > info.file_size) {
      return Status::InvalidArgument(fmt::format(
          "'{}' is truncated: its {} map puts guest bytes at file offset {}..{}, past the end "
          "of the file ({} bytes)",
          p, info.format, *m.host_offset, *m.host_offset + m.length, info.file_size));
    }
    extents.push_back({m.start, m.length, !hole});
  }
  if (expected != info.virtual_size) {
    return Status::External(
        fmt::format("qemu-img map for '{}' covers {} bytes, but the image has {}", p, expected,
                    info.virtual_size));
  }
  return NormalizeExtents(std::move(extents));
}

}  // namespace vmvault::ingest
