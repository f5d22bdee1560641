// The only file that includes libvirt.
#include "ingest/libvirt.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/format.h>

namespace vmvault::ingest {
namespace {

virConnectPtr Conn(void* p) { return static_cast<virConnectPtr>(p); }
virDomainPtr Dom(void* p) { return static_cast<virDomainPtr>(p); }

// libvirt prints every error to stderr unless told otherwise; ours go into Statuses.
void SilenceLibvirt() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  });
}

// The last libvirt error of this thread as a Status, prefixed with `what`.
Status LibvirtError(std::string_view what) {
  virErrorPtr e = virGetLastError();
  const std::string msg = e != nullptr && e->message != nullptr ? e->message : "unknown error";
  const int code = e != nullptr ? e->code : VIR_ERR_INTERNAL_ERROR;
  std::string text = fmt::format("{}: {}", what, msg);
  virResetLastError();
  switch (code) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_DOMAIN_CHECKPOINT:
      return Status::NotFound(std::move(text));
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_OPERATION_UNSUPPORTED:
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
      return Status::Unsupported(std::move(text));
    default:
      return Status::External(std::move(text));
  }
}

}  // namespace

const char* DomainStateName(DomainState s) {
  switch (s) {
    case DomainState::kRunning:
      return "running";
    case DomainState::kPaused:
      return "paused";
    case DomainState::kShutoff:
      return "shut off";
    case DomainState::kOther:
      break;
  }
  return "other";
}

// ---- connection ----

Result<std::unique_ptr<LibvirtConnection>> LibvirtConnection::Open(const std::string& uri) {
  SilenceLibvirt();
  virConnectPtr c = virConnectOpen(uri.empty() ? nullptr : uri.c_str());
  if (c == nullptr) {
    Status s = LibvirtError(fmt::format("cannot connect to libvirt at '{}'",
                                        uri.empty() ? "the default URI" : uri));
    return Status::External(s.message() + " (is libvirtd running?)");
  }
  char* resolved = virConnectGetURI(c);
  std::string name = resolved != nullptr ? resolved : uri;
  free(resolved);  // NOLINT: libvirt allocates with malloc
  return std::unique_ptr<LibvirtConnection>(new LibvirtConnection(c, std::move(name)));
}

LibvirtConnection::~LibvirtConnection() {
  if (conn_ != nullptr) virConnectClose(Conn(conn_));
}

bool LibvirtConnection::alive() const { return virConnectIsAlive(Conn(conn_)) == 1; }

Result<std::vector<std::string>> LibvirtConnection::ListDomainNames() {
  virDomainPtr* doms = nullptr;
  const int n = virConnectListAllDomains(Conn(conn_), &doms, 0);
  if (n < 0) return LibvirtError(fmt::format("cannot list the domains of {}", uri_));
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    if (const char* name = virDomainGetName(doms[i])) names.emplace_back(name);
    virDomainFree(doms[i]);
  }
  free(doms);  // NOLINT
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::unique_ptr<LibvirtDomain>> LibvirtConnection::LookupDomain(const std::string& name) {
  virDomainPtr d = virDomainLookupByName(Conn(conn_), name.c_str());
  if (d == nullptr) {
    Status s = LibvirtError(fmt::format("no domain '{}' at {}", name, uri_));
    if (s.IsNotFound()) return Status::NotFound(fmt::format("no domain '{}' at {}", name, uri_));
    return s;
  }
  return Wrap(d);
}

Result<std::unique_ptr<LibvirtDomain>> LibvirtConnection::DefineDomain(const std::string& xml) {
  virDomainPtr d = virDomainDefineXML(Conn(conn_), xml.c_str());
  if (d == nullptr) return LibvirtError(fmt::format("cannot define the domain at {}", uri_));
  return Wrap(d);
}

Result<std::unique_ptr<LibvirtDomain>> LibvirtConnection::LookupDomainByUuid(
    const std::string& uuid) {
  virDomainPtr d = virDomainLookupByUUIDString(Conn(conn_), uuid.c_str());
  if (d == nullptr) return LibvirtError(fmt::format("no domain with UUID {} at {}", uuid, uri_));
  return Wrap(d);
}

Result<std::unique_ptr<LibvirtDomain>> LibvirtConnection::Wrap(void* dom) {
  virDomainPtr d = Dom(dom);
  const char* name = virDomainGetName(d);
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  if (name == nullptr || virDomainGetUUIDString(d, uuid) != 0) {
    Status s = LibvirtError("cannot read a domain's name and UUID");
    virDomainFree(d);
    return s;
  }
  return std::unique_ptr<LibvirtDomain>(new LibvirtDomain(d, name, uuid));
}

// ---- domain ----

LibvirtDomain::~LibvirtDomain() {
  if (dom_ != nullptr) virDomainFree(Dom(dom_));
}

Result<DomainState> LibvirtDomain::State() {
  int state = 0, reason = 0;
  if (virDomainGetState(Dom(dom_), &state, &reason, 0) != 0) {
    return LibvirtError(fmt::format("cannot get the state of domain '{}'", name_));
  }
  switch (state) {
    case VIR_DOMAIN_RUNNING:
      return DomainState::kRunning;
    case VIR_DOMAIN_PAUSED:
      return DomainState::kPaused;
    case VIR_DOMAIN_SHUTOFF:
      return DomainState::kShutoff;
    default:
      return DomainState::kOther;
  }
}

bool LibvirtDomain::persistent() { return virDomainIsPersistent(Dom(dom_)) == 1; }

Result<std::string> LibvirtDomain::Xml(bool inactive) {
  const unsigned flags = inactive && persistent() ? VIR_DOMAIN_XML_INACTIVE : 0;
  char* xml = virDomainGetXMLDesc(Dom(dom_), flags);
  if (xml == nullptr) return LibvirtError(fmt::format("cannot get the XML of domain '{}'", name_));
  std::string out = xml;
  free(xml);  // NOLINT
  return out;
}

Status LibvirtDomain::Suspend() {
  if (virDomainSuspend(Dom(dom_)) != 0) {
    return LibvirtError(fmt::format("cannot pause domain '{}'", name_));
  }
  return Status::OK();
}

Status LibvirtDomain::Resume() {
  if (virDomainResume(Dom(dom_)) != 0) {
    return LibvirtError(fmt::format("cannot resume domain '{}'", name_));
  }
  return Status::OK();
}

Result<bool> LibvirtDomain::FreezeFilesystems(std::string* why_not) {
  if (virDomainFSFreeze(Dom(dom_), nullptr, 0, 0) >= 0) return true;
  Status s = LibvirtError("guest agent");
  if (why_not != nullptr) *why_not = s.message();
  return false;
}

Status LibvirtDomain::ThawFilesystems() {
  if (virDomainFSThaw(Dom(dom_), nullptr, 0, 0) < 0) {
    return LibvirtError(fmt::format("cannot thaw the filesystems of domain '{}'", name_));
  }
  return Status::OK();
}

Status LibvirtDomain::BackupBegin(const std::string& backup_xml,
                                  const std::string& checkpoint_xml) {
  if (virDomainBackupBegin(Dom(dom_), backup_xml.c_str(),
                           checkpoint_xml.empty() ? nullptr : checkpoint_xml.c_str(), 0) != 0) {
    return LibvirtError(fmt::format("cannot start a backup job on domain '{}'", name_));
  }
  return Status::OK();
}

Result<bool> LibvirtDomain::JobActive() {
  virDomainJobInfo info{};
  if (virDomainGetJobInfo(Dom(dom_), &info) != 0) {
    return LibvirtError(fmt::format("cannot get the job of domain '{}'", name_));
  }
  return info.type != VIR_DOMAIN_JOB_NONE;
}

Status LibvirtDomain::AbortJob() {
  if (virDomainAbortJob(Dom(dom_)) != 0) {
    return LibvirtError(fmt::format("cannot end the job on domain '{}'", name_));
  }
  return Status::OK();
}

Result<std::vector<std::string>> LibvirtDomain::ListCheckpoints() {
  virDomainCheckpointPtr* cps = nullptr;
  const int n = virDomainListAllCheckpoints(Dom(dom_), &cps, 0);
  if (n < 0) return LibvirtError(fmt::format("cannot list the checkpoints of domain '{}'", name_));
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    if (const char* name = virDomainCheckpointGetName(cps[i])) names.emplace_back(name);
    virDomainCheckpointFree(cps[i]);
  }
  free(cps);  // NOLINT
  std::sort(names.begin(), names.end());
  return names;
}

Status LibvirtDomain::DeleteCheckpoint(const std::string& name, bool metadata_only) {
  virDomainCheckpointPtr cp = virDomainCheckpointLookupByName(Dom(dom_), name.c_str(), 0);
  if (cp == nullptr) {
    return LibvirtError(fmt::format("no checkpoint '{}' on domain '{}'", name, name_));
  }
  const int rc = virDomainCheckpointDelete(
      cp, metadata_only ? VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY : 0);
  Status s = rc == 0 ? Status::OK()
                     : LibvirtError(fmt::format("cannot delete checkpoint '{}' of domain '{}'",
                                                name, name_));
  virDomainCheckpointFree(cp);
  return s;
}

Status LibvirtDomain::CreateDiskOnlySnapshot(const std::string& snapshot_xml, bool quiesce) {
  unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
                   VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA;
  if (quiesce) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE;
  virDomainSnapshotPtr snap = virDomainSnapshotCreateXML(Dom(dom_), snapshot_xml.c_str(), flags);
  if (snap == nullptr) {
    return LibvirtError(fmt::format("cannot take a disk-only snapshot of domain '{}'", name_));
  }
  virDomainSnapshotFree(snap);
  return Status::OK();
}

Result<bool> LibvirtDomain::BlockJobActive(const std::string& target) {
  virDomainBlockJobInfo info{};
  const int rc = virDomainGetBlockJobInfo(Dom(dom_), target.c_str(), &info, 0);
  if (rc < 0) {
    return LibvirtError(
        fmt::format("cannot get the block job of disk {} of domain '{}'", target, name_));
  }
  return rc == 1;
}

Status LibvirtDomain::AbortBlockJob(const std::string& target) {
  if (virDomainBlockJobAbort(Dom(dom_), target.c_str(), 0) != 0) {
    return LibvirtError(
        fmt::format("cannot cancel the block job of disk {} of domain '{}'", target, name_));
  }
  return Status::OK();
}

Status LibvirtDomain::ActiveCommitAndPivot(const std::string& target,
                                           std::chrono::seconds timeout) {
  if (virDomainBlockCommit(Dom(dom_), target.c_str(), nullptr, nullptr, 0,
                           VIR_DOMAIN_BLOCK_COMMIT_ACTIVE) != 0) {
    return LibvirtError(fmt::format("cannot commit the overlay of disk {} of domain '{}'", target,
                                    name_));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // The job is ready to pivot once it has copied everything (cur == end); libvirt
    // refuses the pivot before that, so a refusal means "try again shortly".
    virDomainBlockJobInfo info{};
    const int rc = virDomainGetBlockJobInfo(Dom(dom_), target.c_str(), &info, 0);
    if (rc < 0) {
      return LibvirtError(
          fmt::format("cannot follow the commit of disk {} of domain '{}'", target, name_));
    }
    if (rc == 0) {
      return Status::External(fmt::format(
          "the commit of disk {} of domain '{}' ended before it could pivot", target, name_));
    }
    if (info.end > 0 && info.cur == info.end &&
        virDomainBlockJobAbort(Dom(dom_), target.c_str(), VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) ==
            0) {
      return Status::OK();
    }
    virResetLastError();
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::External(fmt::format(
          "the commit of disk {} of domain '{}' did not become ready to pivot in {} s", target,
          name_, timeout.count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<std::string> LibvirtDomain::QemuMonitorCommand(const std::string& json_command) {
  char* reply = nullptr;
  if (virDomainQemuMonitorCommand(Dom(dom_), json_command.c_str(), &reply, 0) != 0) {
    return LibvirtError(fmt::format("QEMU monitor command on domain '{}'", name_));
  }
  std::string out = reply != nullptr ? reply : "";
  free(reply);  // NOLINT
  return out;
}

}  // namespace vmvault::ingest
