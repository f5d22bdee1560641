#include "ingest/domain_xml.h"

#include <sys/random.h>

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <set>

#include <fmt/format.h>

#include "base/names.h"
#include "ingest/domain_xml_util.h"

namespace vmvault::ingest {

using internal::Attr;
using internal::CheckPath;
using internal::Serialize;

namespace {

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

DiskConfig ParseDisk(pugi::xml_node disk) {
  DiskConfig c;
  c.type = Attr(disk, "type", "file");
  c.device = Attr(disk, "device", "disk");
  const pugi::xml_node source = disk.child("source");
  if (c.type == "file") {
    c.source_path = Attr(source, "file");
  } else if (c.type == "block") {
    c.source_path = Attr(source, "dev");
  } else if (c.type == "dir") {
    c.source_path = Attr(source, "dir");
  } else if (c.type == "network") {
    c.network_protocol = Attr(source, "protocol");
    c.network_name = Attr(source, "name");
  } else if (c.type == "volume") {
    c.volume_pool = Attr(source, "pool");
    c.volume_name = Attr(source, "volume");
  }
  c.sliced = static_cast<bool>(source.child("slices"));
  c.directly_readable =
      (c.type == "file" || c.type == "block") && !c.source_path.empty() && !c.sliced;
  const pugi::xml_node driver = disk.child("driver");
  c.driver_name = Attr(driver, "name");
  c.driver_type = Attr(driver, "type");
  const pugi::xml_node target = disk.child("target");
  c.target_dev = Attr(target, "dev");
  c.target_bus = Attr(target, "bus");
  c.readonly = static_cast<bool>(disk.child("readonly"));
  c.shareable = static_cast<bool>(disk.child("shareable"));
  const pugi::xml_node backing = disk.child("backingStore");
  c.has_backing_chain = backing && (backing.attribute("type") || backing.child("source"));
  return c;
}

bool Removable(const DiskConfig& d) { return d.device == "cdrom" || d.device == "floppy"; }

// A disk without media: an empty cdrom drive, or a file or block disk with no source.
bool Empty(const DiskConfig& d) {
  return (d.type == "file" || d.type == "block") && d.source_path.empty();
}

// Checks the DiskChoices a generator writes: at least one, each target printable and
// named once.
Status CheckChoices(const std::vector<DiskChoice>& disks) {
  if (disks.empty()) return Status::InvalidArgument("the domain has no disks");
  std::set<std::string> seen;
  for (const DiskChoice& d : disks) {
    VV_RETURN_IF_ERROR(internal::CheckText(d.target, "disk target"));
    if (!seen.insert(d.target).second) {
      return Status::InvalidArgument(
          fmt::format("disk target '{}' is listed twice", Printable(d.target)));
    }
  }
  return Status::OK();
}

const DiskChoice* FindChoice(const std::vector<DiskChoice>& disks, const std::string& target) {
  for (const DiskChoice& d : disks) {
    if (d.target == target) return &d;
  }
  return nullptr;
}

// Checks that every key of `files` is a taken disk (and writable when `writable`), and
// every value a usable path used once.
Status CheckDiskFiles(const std::vector<DiskChoice>& disks,
                      const std::map<std::string, std::string>& files, bool writable,
                      std::string_view what) {
  std::set<std::string> paths;
  for (const auto& [target, path] : files) {
    const DiskChoice* d = FindChoice(disks, target);
    if (d == nullptr || !d->take || (writable && !d->writable)) {
      return Status::InvalidArgument(
          fmt::format("{} given for disk '{}', which {}", what, Printable(target),
                      d == nullptr ? "the domain does not have"
                                   : (d->take ? "is not writable" : "is not taken")));
    }
    VV_RETURN_IF_ERROR(CheckPath(path, what));
    if (!paths.insert(path).second) {
      return Status::InvalidArgument(
          fmt::format("{} '{}' is given for two disks", what, Printable(path)));
    }
  }
  return Status::OK();
}

// Libvirt's checkpointName: letters, digits, '_', '-', '.', not starting with '.'.
Status CheckMomentName(std::string_view name, std::string_view what) {
  auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || (c == '.' && !first);
  };
  if (name.empty()) return Status::InvalidArgument(fmt::format("{} is empty", what));
  for (size_t i = 0; i < name.size(); ++i) {
    if (!ok(name[i], i == 0)) {
      return Status::InvalidArgument(fmt::format(
          "{} '{}' may hold only letters, digits, '_', '-' and '.', and may not start with '.'",
          what, Printable(name)));
    }
  }
  return Status::OK();
}

}  // namespace

namespace internal {

std::string Attr(pugi::xml_node node, const char* name, const char* fallback) {
  const pugi::xml_attribute a = node.attribute(name);
  return a ? a.value() : fallback;
}

void SetAttr(pugi::xml_node node, const char* name, const std::string& value) {
  pugi::xml_attribute a = node.attribute(name);
  if (!a) a = node.append_attribute(name);
  a.set_value(value.c_str());
}

void RemoveChildren(pugi::xml_node node, const char* name) {
  while (pugi::xml_node c = node.child(name)) node.remove_child(c);
}

Status CheckText(std::string_view s, std::string_view what) {
  if (s.empty()) return Status::InvalidArgument(fmt::format("{} is empty", what));
  if (Printable(s) != s) {
    return Status::InvalidArgument(
        fmt::format("{} '{}' holds control characters or invalid UTF-8, which XML cannot carry",
                    what, Printable(s)));
  }
  return Status::OK();
}

Status CheckPath(std::string_view path, std::string_view what) {
  VV_RETURN_IF_ERROR(CheckText(path, what));
  if (path[0] != '/') {
    return Status::InvalidArgument(
        fmt::format("{} '{}' is not an absolute path", what, Printable(path)));
  }
  return Status::OK();
}

namespace {
class StringWriter final : public pugi::xml_writer {
 public:
  void write(const void* data, size_t size) override {
    out.append(static_cast<const char*>(data), size);
  }
  std::string out;
};
}  // namespace

std::string Serialize(const pugi::xml_document& doc) {
  StringWriter writer;
  doc.save(writer, "  ", pugi::format_indent | pugi::format_no_declaration, pugi::encoding_utf8);
  return std::move(writer.out);
}

Status LoadXml(std::string_view xml, pugi::xml_document* doc) {
  const pugi::xml_parse_result result =
      doc->load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!result) {
    const size_t offset =
        std::min(static_cast<size_t>(std::max<ptrdiff_t>(result.offset, 0)), xml.size());
    const std::string_view before = xml.substr(0, offset);
    const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
    const size_t line_start = before.rfind('\n');
    const size_t column = offset - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
    return Status::InvalidArgument(
        fmt::format("domain XML is not well-formed: {} at line {}, column {} (byte offset {})",
                    result.description(), line, column, offset));
  }
  int roots = 0;
  for (const pugi::xml_node n : doc->children()) {
    if (n.type() == pugi::node_element) ++roots;
  }
  if (roots != 1) {
    return Status::InvalidArgument(
        fmt::format("domain XML has {} top-level elements instead of one", roots));
  }
  return Status::OK();
}

Result<DomainConfig> ParseDomain(pugi::xml_node root) {
  if (std::string_view(root.name()) != "domain") {
    return Status::InvalidArgument(
        fmt::format("the XML describes a <{}>, not a <domain>", Printable(root.name())));
  }
  DomainConfig d;
  d.type = Attr(root, "type");
  d.name = root.child("name").child_value();
  if (d.name.empty()) return Status::InvalidArgument("domain XML has no <name>");
  d.uuid = Trim(root.child("uuid").child_value());
  const pugi::xml_node devices = root.child("devices");
  std::set<std::string> targets;
  for (const pugi::xml_node disk : devices.children("disk")) {
    DiskConfig c = ParseDisk(disk);
    if (c.target_dev.empty()) {
      return Status::InvalidArgument(
          fmt::format("domain '{}': disk {} ({}) has no <target dev=...>", Printable(d.name),
                      d.disks.size() + 1, DescribeDisk(c)));
    }
    // The target names the disk's files in the mount and its overlay in the work
    // folder, so it must be one safe path component.
    Status name_ok = ValidateName(c.target_dev, "disk target");
    if (name_ok.ok() && c.target_dev.size() > kMaxDiskNameLength) {
      name_ok = Status::InvalidArgument(fmt::format("disk target '{}' is longer than {} bytes",
                                                    Printable(c.target_dev.substr(0, 32)),
                                                    kMaxDiskNameLength));
    }
    if (!name_ok.ok()) {
      return name_ok.WithContext(fmt::format("domain '{}'", Printable(d.name)));
    }
    if (!targets.insert(c.target_dev).second) {
      return Status::InvalidArgument(fmt::format("domain '{}': two disks use target '{}'",
                                                 Printable(d.name), Printable(c.target_dev)));
    }
    d.disks.push_back(std::move(c));
  }
  for (const pugi::xml_node iface : devices.children("interface")) {
    d.interfaces.push_back({Attr(iface, "type"), Attr(iface.child("mac"), "address")});
  }
  return d;
}

Status FillRandom(void* buf, size_t size) {
  auto* p = static_cast<uint8_t*>(buf);
  while (size > 0) {
    const ssize_t got = ::getrandom(p, size, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "getrandom");
    }
    p += got;
    size -= static_cast<size_t>(got);
  }
  return Status::OK();
}

std::string MacFromBits(uint32_t bits) {
  return fmt::format("52:54:00:{:02x}:{:02x}:{:02x}", (bits >> 16) & 0xff, (bits >> 8) & 0xff,
                     bits & 0xff);
}

}  // namespace internal

Result<DomainConfig> ParseDomainXml(std::string_view xml) {
  pugi::xml_document doc;
  VV_RETURN_IF_ERROR(internal::LoadXml(xml, &doc));
  return internal::ParseDomain(doc.document_element());
}

std::optional<std::pair<uint32_t, uint32_t>> DacOwner(std::string_view xml) {
  pugi::xml_document doc;
  if (!internal::LoadXml(xml, &doc).ok()) return std::nullopt;
  for (pugi::xml_node sec : doc.document_element().children("seclabel")) {
    if (std::string_view(sec.attribute("model").as_string()) != "dac") continue;
    unsigned uid = 0, gid = 0;
    if (std::sscanf(sec.child_value("label"), "+%u:+%u", &uid, &gid) == 2) {
      return std::make_pair(uid, gid);
    }
  }
  return std::nullopt;
}

std::string DescribeDisk(const DiskConfig& d) {
  const std::string target = d.target_dev.empty() ? "(no target)" : Printable(d.target_dev);
  if (d.type == "network") {
    return fmt::format("{} (network {} '{}')", target, Printable(d.network_protocol),
                       Printable(d.network_name));
  }
  if (d.type == "volume") {
    return fmt::format("{} (volume '{}' of pool '{}')", target, Printable(d.volume_name),
                       Printable(d.volume_pool));
  }
  if (d.source_path.empty()) return fmt::format("{} ({}, no media)", target, Printable(d.type));
  return fmt::format("{} ({} '{}')", target, Printable(d.type), Printable(d.source_path));
}

Result<std::vector<DiskChoice>> ChooseDisks(const DomainConfig& domain,
                                            const DiskChoiceOptions& options) {
  std::vector<DiskChoice> out;
  std::vector<std::string> skipped;
  for (const DiskConfig& d : domain.disks) {
    DiskChoice c;
    c.target = d.target_dev;
    c.writable = !d.readonly && d.device != "cdrom" && !Empty(d);
    if (Removable(d) && !options.include_removable) {
      c.skipped_because = d.device;
    } else if (Empty(d)) {
      c.skipped_because = "no media";
    } else if (d.readonly && !options.include_readonly) {
      c.skipped_because = "read-only";
    } else if (!d.directly_readable) {
      if (!options.skip_unreadable) {
        return Status::Unsupported(fmt::format(
            "domain '{}': disk {} is not a file or block device vmvault can read directly{}",
            Printable(domain.name), DescribeDisk(d),
            d.sliced ? " (the guest sees a slice of it)" : ""));
      }
      c.skipped_because = d.sliced ? "sliced source" : d.type + " disk";
    } else {
      c.take = true;
    }
    if (!c.take) skipped.push_back(Printable(c.target) + ": " + Printable(c.skipped_because));
    out.push_back(std::move(c));
  }
  if (skipped.size() == out.size()) {
    std::string why;
    for (const std::string& s : skipped) why += (why.empty() ? " (" : ", ") + s;
    if (!why.empty()) why += ")";
    return Status::InvalidArgument(
        fmt::format("domain '{}' has no disk to back up{}", Printable(domain.name), why));
  }
  return out;
}

Result<std::string> BackupXml(const BackupSpec& spec) {
  VV_RETURN_IF_ERROR(CheckPath(spec.socket_path, "backup socket"));
  const bool incremental = !spec.incremental.empty();
  if (incremental) VV_RETURN_IF_ERROR(CheckMomentName(spec.incremental, "checkpoint name"));
  VV_RETURN_IF_ERROR(CheckChoices(spec.disks));
  if (std::none_of(spec.disks.begin(), spec.disks.end(), [](const auto& d) { return d.take; })) {
    return Status::InvalidArgument("the backup takes no disk");
  }
  VV_RETURN_IF_ERROR(CheckDiskFiles(spec.disks, spec.scratch_files, false, "scratch file"));
  for (const std::string& target : spec.full_disks) {
    const DiskChoice* d = FindChoice(spec.disks, target);
    if (d == nullptr || !d->take) {
      return Status::InvalidArgument(fmt::format(
          "full backup asked for disk '{}', which the backup does not take", Printable(target)));
    }
  }

  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("domainbackup");
  root.append_attribute("mode") = "pull";
  if (incremental) root.append_child("incremental").text().set(spec.incremental.c_str());
  pugi::xml_node server = root.append_child("server");
  server.append_attribute("transport") = "unix";
  server.append_attribute("socket") = spec.socket_path.c_str();
  pugi::xml_node disks = root.append_child("disks");
  for (const DiskChoice& d : spec.disks) {
    pugi::xml_node disk = disks.append_child("disk");
    disk.append_attribute("name") = d.target.c_str();
    if (!d.take) {
      disk.append_attribute("backup") = "no";
      continue;
    }
    if (incremental && (!d.writable || spec.full_disks.contains(d.target))) {
      disk.append_attribute("backupmode") = "full";
    }
    disk.append_attribute("backup") = "yes";
    disk.append_attribute("type") = "file";
    if (auto it = spec.scratch_files.find(d.target); it != spec.scratch_files.end()) {
      disk.append_child("scratch").append_attribute("file") = it->second.c_str();
    }
  }
  return Serialize(doc);
}

Result<std::string> CheckpointXml(std::string_view name, const std::vector<DiskChoice>& disks) {
  VV_RETURN_IF_ERROR(CheckMomentName(name, "checkpoint name"));
  VV_RETURN_IF_ERROR(CheckChoices(disks));
  if (std::none_of(disks.begin(), disks.end(),
                   [](const auto& d) { return d.take && d.writable; })) {
    return Status::InvalidArgument("no disk the backup takes can have a checkpoint bitmap");
  }
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("domaincheckpoint");
  root.append_child("name").text().set(std::string(name).c_str());
  pugi::xml_node list = root.append_child("disks");
  for (const DiskChoice& d : disks) {
    pugi::xml_node disk = list.append_child("disk");
    disk.append_attribute("name") = d.target.c_str();
    disk.append_attribute("checkpoint") = d.take && d.writable ? "bitmap" : "no";
  }
  return Serialize(doc);
}

Result<std::string> DiskOnlySnapshotXml(std::string_view name, const std::vector<DiskChoice>& disks,
                                        const std::map<std::string, std::string>& overlays) {
  VV_RETURN_IF_ERROR(CheckMomentName(name, "snapshot name"));
  VV_RETURN_IF_ERROR(CheckChoices(disks));
  VV_RETURN_IF_ERROR(CheckDiskFiles(disks, overlays, true, "overlay file"));
  bool any = false;
  for (const DiskChoice& d : disks) {
    if (!d.take || !d.writable) continue;
    if (!overlays.contains(d.target)) {
      return Status::InvalidArgument(
          fmt::format("no overlay file given for disk '{}'", Printable(d.target)));
    }
    any = true;
  }
  if (!any) return Status::InvalidArgument("no disk the backup takes is writable");

  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("domainsnapshot");
  root.append_child("name").text().set(std::string(name).c_str());
  root.append_child("memory").append_attribute("snapshot") = "no";
  pugi::xml_node list = root.append_child("disks");
  for (const DiskChoice& d : disks) {
    pugi::xml_node disk = list.append_child("disk");
    disk.append_attribute("name") = d.target.c_str();
    if (!d.take || !d.writable) {
      disk.append_attribute("snapshot") = "no";
      continue;
    }
    disk.append_attribute("snapshot") = "external";
    disk.append_attribute("type") = "file";
    disk.append_child("driver").append_attribute("type") = "qcow2";
    disk.append_child("source").append_attribute("file") = overlays.at(d.target).c_str();
  }
  return Serialize(doc);
}

Result<std::string> NewUuid() {
  uint8_t b[16];
  VV_RETURN_IF_ERROR(internal::FillRandom(b, sizeof(b)));
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
      "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
      b[15]);
}

Result<std::string> RandomMac() {
  uint32_t bits = 0;
  VV_RETURN_IF_ERROR(internal::FillRandom(&bits, sizeof(bits)));
  return internal::MacFromBits(bits);
}

}  // namespace vmvault::ingest
