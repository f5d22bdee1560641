// A thin adapter over the libvirt C API (libvirt.cc is the only file that includes
// libvirt's headers): a connection to a hypervisor URI, and the handful of domain
// operations a backup needs. Every failure is a Status quoting libvirt's own message;
// libvirt's habit of printing errors to stderr is switched off.
//
// Works against any driver: qemu:///system for real domains, test:///default (or a
// test:///path/node.xml) for inventory tests, where the backup, snapshot and commit
// calls return Unsupported.
//
// A LibvirtConnection owns its virConnectPtr; a LibvirtDomain owns its virDomainPtr and
// must not outlive the connection that made it. Neither is thread-safe: use one per
// thread (libvirt itself is).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/status.h"

namespace vmvault::ingest {

enum class DomainState { kRunning, kPaused, kShutoff, kOther };

// "running", "paused", "shut off", "other".
const char* DomainStateName(DomainState s);

class LibvirtDomain;

class LibvirtConnection {
 public:
  // Opens `uri` ("" = libvirt's default: LIBVIRT_DEFAULT_URI, then qemu:///system for
  // root). Unavailable when nothing answers there.
  static Result<std::unique_ptr<LibvirtConnection>> Open(const std::string& uri);
  ~LibvirtConnection();
  LibvirtConnection(const LibvirtConnection&) = delete;
  LibvirtConnection& operator=(const LibvirtConnection&) = delete;

  // The URI libvirt resolved, e.g. "qemu:///system".
  const std::string& uri() const { return uri_; }
  // False once libvirt noticed the connection is gone (the daemon died or restarted).
  bool alive() const;

  // Every domain, active and inactive, by name.
  Result<std::vector<std::string>> ListDomainNames();
  // NotFound naming the domain when there is none.
  Result<std::unique_ptr<LibvirtDomain>> LookupDomain(const std::string& name);
  Result<std::unique_ptr<LibvirtDomain>> LookupDomainByUuid(const std::string& uuid);
  // Defines a persistent domain from `xml` (virDomainDefineXML); it is not started.
  Result<std::unique_ptr<LibvirtDomain>> DefineDomain(const std::string& xml);

 private:
  LibvirtConnection(void* conn, std::string uri) : conn_(conn), uri_(std::move(uri)) {}
  // Takes ownership of a virDomainPtr.
  static Result<std::unique_ptr<LibvirtDomain>> Wrap(void* dom);

  void* conn_;  // virConnectPtr
  std::string uri_;
};

class LibvirtDomain {
 public:
  ~LibvirtDomain();
  LibvirtDomain(const LibvirtDomain&) = delete;
  LibvirtDomain& operator=(const LibvirtDomain&) = delete;

  const std::string& name() const { return name_; }
  const std::string& uuid() const { return uuid_; }

  Result<DomainState> State();
  bool persistent();
  // The domain XML: the live one, or with `inactive` the persistent definition (what
  // the domain boots with next time; the live one for a transient domain).
  Result<std::string> Xml(bool inactive = false);

  Status Suspend();
  Status Resume();

  // Freezes the guest's filesystems through its agent. False (not an error) when no
  // agent is configured or none answers within libvirt's agent timeout.
  Result<bool> FreezeFilesystems(std::string* why_not);
  Status ThawFilesystems();

  // Starts a pull-mode backup job (virDomainBackupBegin). `checkpoint_xml` may be "".
  Status BackupBegin(const std::string& backup_xml, const std::string& checkpoint_xml);
  // Whether a job (backup, block commit, ...) is active on the domain.
  Result<bool> JobActive();
  // Ends the active job (for a pull backup this is how it is finished).
  Status AbortJob();

  Result<std::vector<std::string>> ListCheckpoints();
  // Deletes a checkpoint and its bitmaps. With `metadata_only`, only libvirt's record
  // (the only way for an inactive domain; the caller removes the bitmaps).
  Status DeleteCheckpoint(const std::string& name, bool metadata_only);

  // An external, disk-only, atomic snapshot without libvirt metadata, quiesced through
  // the guest agent when `quiesce`.
  Status CreateDiskOnlySnapshot(const std::string& snapshot_xml, bool quiesce);
  // Commits the active overlay of disk `target` into its backing image and pivots back
  // to it (blockcommit --active --pivot --wait), waiting at most `timeout`.
  Status ActiveCommitAndPivot(const std::string& target, std::chrono::seconds timeout);
  // Whether a block job runs on disk `target`.
  Result<bool> BlockJobActive(const std::string& target);
  Status AbortBlockJob(const std::string& target);

  // A QMP command through libvirt-qemu (the answer's JSON text).
  Result<std::string> QemuMonitorCommand(const std::string& json_command);

 private:
  friend class LibvirtConnection;
  LibvirtDomain(void* dom, std::string name, std::string uuid)
      : dom_(dom), name_(std::move(name)), uuid_(std::move(uuid)) {}
  void* dom_;  // virDomainPtr
  std::string name_;
  std::string uuid_;
};

}  // namespace vmvault::ingest
