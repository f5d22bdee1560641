// VirtualBox sources: which machines a VirtualBox installation has, which disks each
// machine has attached in its current state, and the chain of image files behind each
// disk (base first, differencing images above it). Machine state through VBoxManage is
// in vbox_manage.h; reading VDI chains in vdi_image.h.
//
// The settings format is VirtualBox's (src/VBox/Main/xml/VirtualBox-settings.xsd, read
// as Settings.cpp reads it): a root <VirtualBox xmlns="http://www.virtualbox.org/"
// version="1.19-linux"> holding either <Global> (VirtualBox.xml: <MachineRegistry> of
// <MachineEntry uuid src/>, and with VirtualBox before 4.0 a <MediaRegistry>) or
// <Machine name uuid> (a .vbox file: its own <MediaRegistry>, and
// <StorageControllers><StorageController name><AttachedDevice type port device><Image
// uuid/> directly under <Machine> or under <Machine><Hardware>). A <HardDisk uuid
// location format> nested in another is a differencing image of it. Snapshots keep
// their own storage controllers under <Snapshot>; only the current state is read.
// Settings older than 1.7 (VirtualBox 2.2), encrypted machine settings and network
// media (iSCSI) are Unsupported.
//
// Every function returns values; nothing is shared. The parsers are pure (text in,
// values out, no file system access) so they can be fuzzed; FindVirtualBoxMachines
// reads files. All functions are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vmvault::ingest {

// One image file of a disk's chain.
struct VboxDiskLayer {
  std::string path;    // absolute, lexically normal
  std::string format;  // as the media registry says: "VDI", "VMDK", "VHD", "Parallels", ...
  std::string uuid;    // the medium's uuid: lower case, no braces
  bool operator==(const VboxDiskLayer&) const = default;
};

// A hard disk attached to a machine in its current state.
struct VboxDisk {
  // Unique within the machine and valid as a file name (base/names.h, at most
  // kMaxDiskNameLength bytes): "<controller>-<port>-<device>", sanitized.
  std::string name;
  std::string controller;  // StorageController@name
  uint32_t port = 0;
  uint32_t device = 0;
  std::vector<VboxDiskLayer> chain;  // base first; back() is the attached image
};

struct VboxMachine {
  std::string name;         // Machine@name, as written (not sanitized)
  std::string uuid;         // lower case, no braces: what VBoxManage accepts
  std::string vbox_path;    // absolute path of the .vbox file
  std::string config_text;  // the .vbox file's text, kept as the backup's machine.vbox
  std::vector<VboxDisk> disks;
};

// A hard disk of a media registry.
struct VboxMedium {
  std::string uuid;         // lower case, no braces
  std::string path;         // absolute: a relative location is made absolute against
                            // the folder of the file holding the registry
  std::string format;       // HardDisk@format
  std::string parent_uuid;  // "" for a base image
  std::string registry;     // the file the registry is in, for messages
};

// The hard disks of one or more media registries, by uuid. A value type.
class MediaRegistry {
 public:
  // nullptr when no registry added lists `uuid` (any case, braces or not).
  const VboxMedium* Find(std::string_view uuid) const;
  // Adds the media of `other` that this registry does not list yet.
  void Merge(const MediaRegistry& other);
  size_t size() const { return media_.size(); }
  // The files whose registries were added, in order.
  const std::vector<std::string>& files() const { return files_; }

  // Adds one medium; false (and nothing changes) when its uuid is listed already or is
  // no uuid.
  bool Add(VboxMedium medium);
  void AddFile(const std::string& file);

 private:
  std::map<std::string, VboxMedium> media_;
  std::vector<std::string> files_;
};

// What a global VirtualBox.xml says.
struct VboxGlobalConfig {
  struct MachineEntry {
    std::string uuid;       // lower case, no braces
    std::string vbox_path;  // absolute
  };
  std::vector<MachineEntry> machines;
  MediaRegistry media;  // empty with VirtualBox 4.0 and later
};

// Parses VirtualBox.xml. `path` (absolute) names the file in messages and anchors
// relative paths. InvalidArgument for text that is not such a file, naming the file,
// the line and what is wrong.
Result<VboxGlobalConfig> ParseVirtualBoxXml(std::string_view text, const std::string& path);

// The <MediaRegistry> of a .vbox file (or of VirtualBox.xml), nothing else checked.
Result<MediaRegistry> ParseVboxMediaRegistry(std::string_view text, const std::string& path);

// Parses a .vbox file: its name, uuid and the hard disks attached in the current state,
// each resolved through the file's own media registry and then through `extra` (may be
// null; the global registry and those of other machines). `vbox_path` (absolute) names
// the file in messages and anchors relative locations. Errors name the file and line:
// InvalidArgument for malformed settings, an attached uuid no registry lists, a
// differencing chain that loops, a uuid listed twice in one registry; Unsupported as
// said above. Does not look at the image files.
Result<VboxMachine> ParseVboxMachine(std::string_view text, const std::string& vbox_path,
                                     const MediaRegistry* extra);

// The machines behind `path`: a VirtualBox.xml (every registered machine), a .vbox file
// (that machine) or a folder (every *.vbox in it and its subfolders up to
// kVboxSearchDepth levels down, plus the machines of a VirtualBox.xml directly in it).
// Media are looked up in every registry found (VirtualBox shares them between
// machines). A machine is listed once: when several files carry its uuid, the one
// VirtualBox.xml registers wins, then a file that is not a settings backup
// ("name-1.16-linux.vbox"); otherwise that is an error naming both. Every layer of
// every disk must exist as a regular file (NotFound naming machine, disk and file).
// Machines come in the order VirtualBox.xml lists them, then by path; a folder without
// any gives an empty list.
Result<std::vector<VboxMachine>> FindVirtualBoxMachines(const std::string& path);

inline constexpr int kVboxSearchDepth = 4;
// Settings files larger than this are refused rather than read.
inline constexpr uint64_t kMaxVboxSettingsBytes = 16 << 20;

// "{0A1B...}" or "0a1b..." to "0a1b...": lower case, no braces. InvalidArgument when it
// is no uuid, or the null uuid.
Result<std::string> NormalizeVboxUuid(std::string_view uuid);

}  // namespace vmvault::ingest
