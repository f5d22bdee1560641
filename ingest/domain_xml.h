// Domain XML: the libvirt documents vmvault reads and writes, with no libvirt calls.
// ParseDomainXml reads what `virsh dumpxml` prints (the disks with their sources, and
// the interfaces' MAC addresses); ChooseDisks decides which disks a backup takes;
// BackupXml, CheckpointXml and DiskOnlySnapshotXml write the documents of a pull-mode
// backup, of its checkpoint and of an external disk-only snapshot; and
// RewriteDomainForRestore turns a backed-up domain's XML into one that defines a new
// domain on restored disk images, as virt-clone does. The documents follow the schemas
// of libvirt 9.0 (/usr/share/libvirt/schemas), which `virt-xml-validate` checks.
//
// Every document is built with pugixml, so every string is escaped. Strings that XML
// cannot carry (control characters, invalid UTF-8) and names libvirt's schemas refuse
// are rejected with InvalidArgument instead. Untrusted strings in error messages go
// through Printable().
//
// All functions are pure functions of their arguments and thread-safe, except that
// NewUuid, RandomMac and RewriteDomainForRestore without a RandomSource read the
// kernel's random pool (getrandom(2), the pool behind /dev/urandom). Results are
// values; nothing keeps a reference to its arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vmvault::ingest {

// One <disk> of a domain.
struct DiskConfig {
  // <disk type=>: "file", "block", "network", "volume", "dir", "nvme", "vhostuser";
  // libvirt's default "file" when absent.
  std::string type;
  // <disk device=>: "disk", "cdrom", "floppy" or "lun"; "disk" when absent.
  std::string device;
  // <source file=> (file), <source dev=> (block) or <source dir=> (dir); "" when the
  // disk has no source (an empty cdrom drive) or another kind of source.
  std::string source_path;
  std::string network_protocol;  // network disks: <source protocol=> ("rbd", "nbd", ...)
  std::string network_name;      // network disks: <source name=> ("pool/image")
  std::string volume_pool;       // volume disks: <source pool=>
  std::string volume_name;       // volume disks: <source volume=>
  // A file or a block device vmvault can open at source_path. False for network,
  // volume and the other kinds of source, and for sliced files (the guest sees only a
  // window of the file).
  bool directly_readable = false;
  bool sliced = false;      // <source><slices>: the guest sees a slice of the file
  std::string driver_name;  // <driver name=>: "qemu"; "" when not given
  std::string driver_type;  // <driver type=>: "raw", "qcow2", ...; "" when not given
  std::string target_dev;   // <target dev=>: "vda", the disk's name in libvirt's API
  std::string target_bus;   // <target bus=>: "virtio", "sata", "scsi", ...; "" when absent
  bool readonly = false;    // <readonly/> (libvirt also treats every cdrom as read-only)
  bool shareable = false;   // <shareable/>
  // A <backingStore> that names an image: the source is the top of a chain of images.
  // An empty <backingStore/> (libvirt's "no backing file") does not count.
  bool has_backing_chain = false;
};

// One <interface> of a domain.
struct InterfaceConfig {
  std::string type;  // <interface type=>: "network", "bridge", "direct", "user", ...
  std::string mac;   // <mac address=> as written; "" when the XML has none
};

struct DomainConfig {
  std::string name;
  std::string uuid;               // "" when the XML has none
  std::string type;               // <domain type=>: "kvm", "qemu", ...
  std::vector<DiskConfig> disks;  // in document order
  std::vector<InterfaceConfig> interfaces;
};

// Reads a domain's XML. InvalidArgument for XML that does not parse (with the line
// and column), a root element other than <domain>, a missing or empty <name>, a disk
// without <target dev=>, and two disks with the same target.
Result<DomainConfig> ParseDomainXml(std::string_view xml);

// The user and group QEMU runs as, from a running domain's DAC label
// (<seclabel model='dac'><label>+64055:+64055</label>); nullopt when it has none.
std::optional<std::pair<uint32_t, uint32_t>> DacOwner(std::string_view xml);

// "vda (file '/var/lib/libvirt/images/a.qcow2')", "vdc (network rbd 'pool/img')":
// a disk for messages, with its strings through Printable().
std::string DescribeDisk(const DiskConfig& disk);

// Which disks a backup takes. Without options it takes the writable disks that are
// files or block devices; cdrom and floppy drives, drives without media and
// read-only disks are skipped. A disk it would take that vmvault cannot read directly
// (network, volume, ...) is an error unless skip_unreadable.
struct DiskChoiceOptions {
  bool include_readonly = false;   // also take disks marked <readonly/>
  bool include_removable = false;  // also take cdrom and floppy drives that hold media
  bool skip_unreadable = false;    // skip network, volume, ... disks instead of failing
};

struct DiskChoice {
  std::string target;  // target dev
  bool take = false;
  // The disk can be written: libvirt keeps a checkpoint bitmap and an overlay only for
  // such disks (it refuses a checkpoint on an empty or read-only disk), so a taken disk
  // that is not writable is copied in full by every backup.
  bool writable = false;
  std::string skipped_because;  // "cdrom", "read-only", ...; "" when taken
};

// One DiskChoice per disk of `domain`, in its order. Unsupported naming the disk for
// a disk that would be taken but cannot be read directly (unless skip_unreadable);
// InvalidArgument when no disk is taken at all (the message says why each was
// skipped).
Result<std::vector<DiskChoice>> ChooseDisks(const DomainConfig& domain,
                                            const DiskChoiceOptions& options);

// A pull-mode backup: libvirt serves each taken disk as the NBD export named after its
// target, on a unix socket.
struct BackupSpec {
  std::string socket_path;  // absolute
  // The checkpoint an incremental backup starts from; "" for a full backup.
  std::string incremental;
  std::vector<DiskChoice> disks;  // every disk of the domain, from ChooseDisks
  // The scratch file of each taken disk, by target (absolute paths). A taken disk
  // without one gets no <scratch>: libvirt then puts "IMAGE.SUFFIX" next to a file
  // disk's image, and refuses the backup for any other kind of disk.
  std::map<std::string, std::string> scratch_files;
  // Taken disks an incremental backup copies in full anyway (disks added since the
  // checkpoint, which has no bitmap for them). Disks that are not writable are always
  // copied in full.
  std::set<std::string> full_disks;
};

// <domainbackup mode='pull'>: <server transport='unix'>, the optional <incremental>,
// and one <disk> per disk, backup='yes' with its <scratch> for the taken ones and
// backup='no' for the others. InvalidArgument for a relative or unprintable path, a
// checkpoint name libvirt would refuse, or no disk taken.
Result<std::string> BackupXml(const BackupSpec& spec);

// <domaincheckpoint>: checkpoint='bitmap' for taken writable disks and
// checkpoint='no' for the others. `name` must be a valid checkpoint name: letters,
// digits, '_', '-' and '.', not starting with '.'. InvalidArgument otherwise, or when
// no disk gets a bitmap.
Result<std::string> CheckpointXml(std::string_view name, const std::vector<DiskChoice>& disks);

// <domainsnapshot> for an external disk-only snapshot: each taken writable disk gets a
// qcow2 overlay at overlays[target] (absolute; required), the others snapshot='no'.
// `name` follows the rules of CheckpointXml. Create it with
// VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY.
Result<std::string> DiskOnlySnapshotXml(std::string_view name, const std::vector<DiskChoice>& disks,
                                        const std::map<std::string, std::string>& overlays);

// A random RFC 4122 version-4 UUID: "1b4e28ba-2fa1-4d2b-a5f4-7e6c3e9b0f13".
Result<std::string> NewUuid();
// A random MAC address in QEMU's range: "52:54:00:xx:xx:xx".
Result<std::string> RandomMac();

// Where RewriteDomainForRestore takes the random bits of new MAC addresses from
// (the low 24 bits of each call are used). Tests pass a seeded generator.
using RandomSource = std::function<uint32_t()>;

// The image a backed-up disk was restored to.
struct RestoredDisk {
  std::string path;         // absolute path of a file
  std::string driver_type;  // "raw", "qcow2", "vmdk", ...: what libvirt reads it as
};

struct RestoreRewrite {
  std::string name;  // the new domain's name (the rules of ValidateName)
  std::string uuid;  // the new domain's UUID, e.g. from NewUuid()
  // The restored image of each backed-up disk, by target dev.
  std::map<std::string, RestoredDisk> disks;
  // Remove disks that are not in `disks` and are neither cdrom/floppy nor read-only
  // (for example network disks the backup skipped) instead of failing.
  bool drop_unmapped_disks = false;
  // The new domain's UEFI variable store, for XML that has an <os><nvram>. "" leaves
  // the path out, and libvirt creates a fresh store from the firmware's template.
  std::string nvram_path;
  RandomSource random;  // for new MAC addresses; nullptr: the kernel's random pool
};

// The XML that defines the restored domain: the backed-up domain's XML with the new
// name and UUID (also in <sysinfo>), a fresh <genid/>, a new MAC address in
// 52:54:00:xx:xx:xx for every <interface> (never one the old XML holds, and no two
// alike), each disk in `r.disks` turned into a file disk on its restored image
// (<backingStore> and <mirror> dropped, block and network disks become type='file',
// a 'lun' becomes a 'disk'), and what ties the XML to the old domain or to its running
// instance dropped: the <domain id=>, generated <alias>es, the dynamic labels of
// <seclabel>, the indexes of disk sources, the interfaces' tap device names and port
// ids, pty paths, graphics ports chosen by autoport, channel states and sockets named
// after the old domain, and the NVRAM path. Everything else (devices, addresses,
// <title>, <metadata>, CPU, ...) is kept.
// Disks not in `r.disks` are kept as they are when they are cdrom/floppy drives or
// read-only; any other is an InvalidArgument naming it (unless drop_unmapped_disks).
// InvalidArgument too for XML ParseDomainXml refuses, a bad name or UUID, the old
// domain's UUID, a relative path, a driver type libvirt does not know, or an entry of
// `r.disks` naming no disk of the domain.
Result<std::string> RewriteDomainForRestore(std::string_view xml, const RestoreRewrite& r);

}  // namespace vmvault::ingest
