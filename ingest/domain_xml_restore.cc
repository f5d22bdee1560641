// RewriteDomainForRestore (domain_xml.h): the XML of a backed-up domain, turned into
// the definition of a new domain on restored disk images.

#include <algorithm>
#include <cctype>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "base/names.h"
#include "ingest/domain_xml.h"
#include "ingest/domain_xml_util.h"

namespace vmvault::ingest {

using internal::Attr;
using internal::RemoveChildren;
using internal::SetAttr;

namespace {

// Tries per interface before giving up on a random source that keeps repeating.
constexpr int kMacTries = 64;

// The disk formats libvirt's schema knows (storageFormat) that a restored image can
// have. libvirt has no "vhdx".
bool KnownDriverType(std::string_view t) {
  return t == "raw" || t == "qcow2" || t == "qcow" || t == "qed" || t == "vmdk" || t == "vpc" ||
         t == "vdi";
}

// The 32 hex digits of a UUID in either of libvirt's forms (with or without dashes),
// lower case; "" when `s` is not a UUID.
std::string UuidDigits(std::string_view s) {
  std::string out;
  if (s.size() == 36) {
    for (size_t i = 0; i < s.size(); ++i) {
      const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash != (s[i] == '-')) return "";
      if (!dash) out += s[i];
    }
  } else if (s.size() == 32) {
    out = s;
  } else {
    return "";
  }
  for (char& c : out) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return "";
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Every element below `root` called `name`, in document order.
std::vector<pugi::xml_node> Descendants(pugi::xml_node root, std::string_view name) {
  struct Walker final : pugi::xml_tree_walker {
    std::string_view name;
    std::vector<pugi::xml_node> found;
    bool for_each(pugi::xml_node& n) override {
      if (n.type() == pugi::node_element && name == n.name()) found.push_back(n);
      return true;
    }
  } walker;
  walker.name = name;
  root.traverse(walker);
  return std::move(walker.found);
}

Status CheckRewrite(const DomainConfig& old, const RestoreRewrite& r) {
  VV_RETURN_IF_ERROR(ValidateName(r.name, "domain name"));
  const std::string uuid = UuidDigits(r.uuid);
  if (uuid.empty()) {
    return Status::InvalidArgument(fmt::format("'{}' is not a UUID", Printable(r.uuid)));
  }
  if (uuid == UuidDigits(old.uuid)) {
    return Status::InvalidArgument(fmt::format(
        "the restored domain needs a UUID of its own, not the UUID of '{}'", Printable(old.name)));
  }
  for (const auto& [target, disk] : r.disks) {
    const std::string& dev = target;  // clang 14 lambdas cannot capture structured bindings
    if (std::none_of(old.disks.begin(), old.disks.end(),
                     [&](const DiskConfig& d) { return d.target_dev == dev; })) {
      return Status::InvalidArgument(fmt::format("domain '{}' has no disk '{}' to restore",
                                                 Printable(old.name), Printable(target)));
    }
    VV_RETURN_IF_ERROR(internal::CheckPath(disk.path, "restored image of " + Printable(target)));
    if (!KnownDriverType(disk.driver_type)) {
      return Status::InvalidArgument(
          fmt::format("libvirt cannot use a '{}' image for disk '{}'; restore it as raw or qcow2",
                      Printable(disk.driver_type), Printable(target)));
    }
  }
  if (!r.nvram_path.empty()) VV_RETURN_IF_ERROR(internal::CheckPath(r.nvram_path, "NVRAM file"));
  return Status::OK();
}

// Name, UUID (also the SMBIOS one), generation id, security labels and NVRAM.
void RewriteIdentity(pugi::xml_node root, const RestoreRewrite& r) {
  root.remove_attribute("id");  // the running instance's number
  root.child("name").text().set(r.name.c_str());
  pugi::xml_node uuid = root.child("uuid");
  if (!uuid) uuid = root.insert_child_after("uuid", root.child("name"));
  uuid.text().set(r.uuid.c_str());
  // An empty <genid/> makes libvirt generate a new VM generation ID: the guest (AD on
  // Windows) must learn it is a copy.
  if (pugi::xml_node genid = root.child("genid")) {
    while (genid.first_child()) genid.remove_child(genid.first_child());
  }
  // libvirt refuses an SMBIOS system UUID that differs from <uuid>.
  for (pugi::xml_node sysinfo : root.children("sysinfo")) {
    for (pugi::xml_node system : sysinfo.children("system")) {
      for (pugi::xml_node entry : system.children("entry")) {
        if (Attr(entry, "name") == "uuid") entry.text().set(r.uuid.c_str());
      }
    }
  }
  // Labels the old instance was given; libvirt's schema calls them output-only.
  for (pugi::xml_node label : root.children("seclabel")) {
    const std::string type = Attr(label, "type", "dynamic");
    if (type == "dynamic") RemoveChildren(label, "label");
    if (type == "dynamic" || type == "static") RemoveChildren(label, "imagelabel");
  }
  // The old domain's UEFI variable store must not be shared.
  if (pugi::xml_node nvram = root.child("os").child("nvram")) {
    while (nvram.first_child()) nvram.remove_child(nvram.first_child());
    nvram.remove_attribute("type");
    if (!r.nvram_path.empty()) nvram.text().set(r.nvram_path.c_str());
  }
}

void RewriteDisk(pugi::xml_node disk, const RestoredDisk& restored) {
  SetAttr(disk, "type", "file");
  if (Attr(disk, "device") == "lun") {  // SCSI passthrough needs a block device
    SetAttr(disk, "device", "disk");
    disk.remove_attribute("sgio");
    disk.remove_attribute("rawio");
  }
  for (const char* name : {"source", "backingStore", "mirror", "auth", "encryption"}) {
    RemoveChildren(disk, name);
  }
  pugi::xml_node driver = disk.child("driver");
  if (!driver) driver = disk.prepend_child("driver");
  SetAttr(driver, "type", restored.driver_type);
  disk.insert_child_after("source", driver).append_attribute("file") = restored.path.c_str();
  // libvirt allows shared access only to raw images.
  if (restored.driver_type != "raw") RemoveChildren(disk, "shareable");
}

Status RewriteDisks(pugi::xml_node devices, const DomainConfig& old, const RestoreRewrite& r) {
  std::vector<pugi::xml_node> elements;
  for (pugi::xml_node disk : devices.children("disk")) elements.push_back(disk);
  for (size_t i = 0; i < elements.size(); ++i) {  // ParseDomain read them in this order
    const DiskConfig& d = old.disks[i];
    if (auto it = r.disks.find(d.target_dev); it != r.disks.end()) {
      RewriteDisk(elements[i], it->second);
    } else if (d.device == "cdrom" || d.device == "floppy" || d.readonly) {
      continue;  // shared with the old domain as it is
    } else if (r.drop_unmapped_disks) {
      devices.remove_child(elements[i]);
    } else {
      return Status::InvalidArgument(fmt::format("disk {} of domain '{}' has no restored image",
                                                 DescribeDisk(d), Printable(old.name)));
    }
  }
  return Status::OK();
}

Result<uint32_t> NextRandom(const RestoreRewrite& r) {
  if (r.random) return r.random();
  uint32_t bits = 0;
  VV_RETURN_IF_ERROR(internal::FillRandom(&bits, sizeof(bits)));
  return bits;
}

Status RewriteInterfaces(pugi::xml_node devices, const DomainConfig& old, const RestoreRewrite& r) {
  std::set<std::string> used;
  for (const InterfaceConfig& i : old.interfaces) used.insert(Lower(i.mac));
  for (pugi::xml_node iface : devices.children("interface")) {
    std::string mac;
    for (int tries = 0; mac.empty() || used.contains(mac); ++tries) {
      if (tries == kMacTries) {
        return Status::IOError(fmt::format(
            "no new MAC address after {} random draws: the random source repeats itself",
            kMacTries));
      }
      VV_ASSIGN_OR_RETURN(const uint32_t bits, NextRandom(r));
      mac = internal::MacFromBits(bits);
    }
    used.insert(mac);
    pugi::xml_node node = iface.child("mac");
    if (!node) node = iface.prepend_child("mac");
    SetAttr(node, "address", mac);
    // The tap device of the old instance (a tap the host made, managed='no', stays).
    if (Attr(iface.child("target"), "managed") != "no") RemoveChildren(iface, "target");
    pugi::xml_node source = iface.child("source");
    source.remove_attribute("portid");  // the old instance's port on a virtual network
    if (Attr(iface, "type") == "network") source.remove_attribute("bridge");  // output only
  }
  return Status::OK();
}

// What `virsh dumpxml` of a running domain shows about that instance.
void DropRuntimeState(pugi::xml_node root, pugi::xml_node devices) {
  for (pugi::xml_node alias : Descendants(devices, "alias")) {
    if (!Attr(alias, "name").starts_with("ua-")) alias.parent().remove_child(alias);
  }
  for (pugi::xml_node label : Descendants(root, "seclabel")) {
    if (label.attribute("labelskip")) label.parent().remove_child(label);
  }
  for (const char* name : {"source", "backingStore"}) {  // of the disks kept as they were
    for (pugi::xml_node node : Descendants(devices, name)) node.remove_attribute("index");
  }
  for (pugi::xml_node graphics : devices.children("graphics")) {
    if (Attr(graphics, "autoport") != "yes") continue;
    graphics.remove_attribute("port");
    graphics.remove_attribute("tlsPort");
    if (graphics.attribute("websocket")) SetAttr(graphics, "websocket", "-1");
  }
  for (const char* kind : {"serial", "parallel", "console", "channel"}) {
    for (pugi::xml_node dev : devices.children(kind)) {
      const std::string type = Attr(dev, "type");
      if (type == "pty") {
        dev.remove_attribute("tty");
        RemoveChildren(dev, "source");
      }
      dev.child("target").remove_attribute("state");  // of the old guest agent
      if (type == "unix") {
        // A socket libvirt named after the old instance; it makes a new one.
        const std::string target = Attr(dev.child("target"), "name");
        pugi::xml_node source = dev.child("source");
        if (!target.empty() && Attr(source, "path").find(target) != std::string::npos) {
          source.remove_attribute("path");
        }
      }
    }
  }
}

}  // namespace

Result<std::string> RewriteDomainForRestore(std::string_view xml, const RestoreRewrite& r) {
  pugi::xml_document doc;
  VV_RETURN_IF_ERROR(internal::LoadXml(xml, &doc));
  const pugi::xml_node root = doc.document_element();
  VV_ASSIGN_OR_RETURN(const DomainConfig old, internal::ParseDomain(root));
  VV_RETURN_IF_ERROR(CheckRewrite(old, r));
  const pugi::xml_node devices = root.child("devices");
  VV_RETURN_IF_ERROR(RewriteDisks(devices, old, r));
  VV_RETURN_IF_ERROR(RewriteInterfaces(devices, old, r));
  RewriteIdentity(root, r);
  DropRuntimeState(root, devices);
  return internal::Serialize(doc);
}

}  // namespace vmvault::ingest
