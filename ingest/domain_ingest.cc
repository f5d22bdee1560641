#include "ingest/domain_ingest.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "base/thread_pool.h"
#include "base/time_format.h"
#include "ingest/backup_builder.h"
#include "ingest/domain_xml.h"
#include "ingest/file_ingest.h"
#include "ingest/image_source.h"
#include "ingest/libvirt.h"
#include "ingest/nbd_image.h"

namespace vmvault::ingest {
namespace {

using std::chrono::steady_clock;

constexpr auto kCommitTimeout = std::chrono::seconds(600);
constexpr auto kReconnectTimeout = std::chrono::seconds(20);

// A private folder for one backup's socket, scratch files and overlays, owned by the
// user QEMU runs as so it can create them there; removed with everything in it.
class WorkDir {
 public:
  static Result<std::unique_ptr<WorkDir>> Make(const std::string& parent, uid_t uid, gid_t gid) {
    std::string tmpl = parent + "/vmvault-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return Status::FromErrno(errno, fmt::format("cannot make a work folder in {}", parent));
    }
    std::unique_ptr<WorkDir> dir(new WorkDir(tmpl));
    if (::chown(tmpl.c_str(), uid, gid) != 0 || ::chmod(tmpl.c_str(), 0700) != 0) {
      return Status::FromErrno(errno, fmt::format("cannot hand {} to the QEMU user", tmpl));
    }
    return dir;
  }
  // libvirt and QEMU remove their scratch files and socket on their own time after the
  // job ends, which can race with the removal (an entry gone between listing and
  // unlinking, or the folder not empty yet): try again for a few seconds.
  ~WorkDir() {
    std::error_code ec;
    for (int attempt = 0; attempt < 50; ++attempt) {
      ec.clear();
      std::filesystem::remove_all(path_, ec);
      if (!ec && !std::filesystem::exists(path_, ec)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    spdlog::warn("cannot remove {}: {}", path_, ec ? ec.message() : "it is not empty");
  }
  const std::string& path() const { return path_; }

 private:
  explicit WorkDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The uid and gid QEMU runs as for this domain, else ours.
std::pair<uid_t, gid_t> QemuOwner(const std::string& live_xml) {
  if (auto owner = DacOwner(live_xml)) return {owner->first, owner->second};
  return {::getuid(), ::getgid()};
}

std::string NewCheckpointName(const Clock& clock) {
  uint32_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != sizeof r) r = static_cast<uint32_t>(clock.NowMicros());
  return fmt::format("{}{}-{:06x}", kCheckpointPrefix, FormatBackupTime(clock.NowMicros()),
                     r & 0xffffff);
}

bool IsOurs(const std::string& checkpoint) {
  return checkpoint.rfind(kCheckpointPrefix, 0) == 0;
}

// The disks a backup takes, with their configuration.
struct TakenDisk {
  DiskConfig config;
  bool writable = false;
};

std::vector<TakenDisk> Taken(const DomainConfig& dom, const std::vector<DiskChoice>& choices) {
  std::vector<TakenDisk> out;
  for (size_t i = 0; i < choices.size() && i < dom.disks.size(); ++i) {
    if (choices[i].take) out.push_back({dom.disks[i], choices[i].writable});
  }
  return out;
}

// Reads an NBD export of the backup job: one connection per reader.
class ExportSource final : public ImageSource {
 public:
  ExportSource(std::string socket, std::string export_name)
      : socket_(std::move(socket)), export_(std::move(export_name)) {}
  Result<std::unique_ptr<Image>> OpenReader() override {
    auto image = NbdImage::ConnectUnix(socket_, export_);
    if (!image.ok()) return image.status().WithContext(fmt::format("backup export {}", export_));
    return std::unique_ptr<Image>(std::move(image).value());
  }

 private:
  const std::string socket_, export_;
};

// What a domain backup needs from one call to the next.
struct Context {
  store::Repository& repo;
  const DomainIngestOptions& options;
  CommandRunner& runner;
  const Clock& clock;
  LibvirtConnection* conn;  // replaced when it drops between domains
  size_t threads;           // readers per disk
  Status post_snapshot;     // the current domain's failed post-snapshot hook, if any
};

// Removes the bitmap `name` from each qcow2 file among `disks` (an inactive domain's
// checkpoint; libvirt 9 cannot delete those itself). Returns what it could not.
std::vector<std::string> RemoveBitmaps(CommandRunner& runner, const std::vector<TakenDisk>& disks,
                                       const std::string& name) {
  std::vector<std::string> left;
  for (const TakenDisk& d : disks) {
    if (d.config.driver_type != "qcow2" || d.config.type != "file" || !d.writable) continue;
    auto out = runner.Run({"qemu-img", "bitmap", "--remove", d.config.source_path, name});
    if (!out.ok() || out->exit_code != 0) {
      const std::string why = out.ok() ? CleanQemuError(out->stderr_text) : out.status().ToString();
      if (why.find("not found") == std::string::npos) {
        left.push_back(fmt::format("bitmap {} in {} ({})", name, d.config.source_path, why));
      }
    }
  }
  return left;
}

// After a failed pull backup: ends the job and deletes the checkpoint `checkpoint`
// ("" for none), reconnecting when the connection dropped. Returns what is left.
std::vector<std::string> CleanUpBackupJob(Context& cx, const std::string& uuid,
                                          const std::string& checkpoint,
                                          const std::vector<TakenDisk>& disks) {
  std::unique_ptr<LibvirtConnection> fresh;
  LibvirtConnection* conn = cx.conn;
  if (!conn->alive()) {
    const auto deadline = steady_clock::now() + kReconnectTimeout;
    for (;;) {
      auto c = LibvirtConnection::Open(cx.conn->uri());
      if (c.ok()) {
        fresh = std::move(c).value();
        conn = fresh.get();
        break;
      }
      if (steady_clock::now() > deadline) {
        return {fmt::format("the backup job and checkpoint {} (libvirt at {} does not answer: {})",
                            checkpoint, cx.conn->uri(), c.status().message())};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
  auto dom = conn->LookupDomainByUuid(uuid);
  if (!dom.ok()) {
    if (dom.status().IsNotFound()) return {};  // the domain is gone, and its checkpoints
    return {fmt::format("the backup job and checkpoint {} ({})", checkpoint,
                        dom.status().message())};
  }
  std::vector<std::string> left;
  auto active = (*dom)->JobActive();
  if (active.ok() && *active) {
    Status s = (*dom)->AbortJob();
    if (!s.ok()) left.push_back(fmt::format("the backup job ({})", s.message()));
  }
  if (checkpoint.empty()) return left;
  auto names = (*dom)->ListCheckpoints();
  if (!names.ok()) {
    left.push_back(fmt::format("checkpoint {} ({})", checkpoint, names.status().message()));
    return left;
  }
  if (std::find(names->begin(), names->end(), checkpoint) == names->end()) return left;
  auto state = (*dom)->State();
  const bool running = state.ok() && *state != DomainState::kShutoff;
  Status s = (*dom)->DeleteCheckpoint(checkpoint, /*metadata_only=*/!running);
  if (!s.ok()) {
    left.push_back(fmt::format("checkpoint {} ({})", checkpoint, s.message()));
  } else if (!running) {
    for (std::string& l : RemoveBitmaps(cx.runner, disks, checkpoint)) left.push_back(l);
  }
  return left;
}

Status WithLeftovers(Status s, const std::vector<std::string>& left, const std::string& domain) {
  if (left.empty()) return s;
  std::string list;
  for (const std::string& l : left) list += (list.empty() ? "" : "; ") + l;
  return Status(s.code(), fmt::format("{}; left behind on domain '{}': {} (remove with `vmvault "
                                      "scrub --domain {}`)",
                                      s.message(), domain, list, domain));
}

// Freezes the guest's filesystems when its agent answers; Thaw() or the destructor
// thaws them.
class Freeze {
 public:
  explicit Freeze(LibvirtDomain& dom) : dom_(dom) {
    std::string why;
    auto r = dom_.FreezeFilesystems(&why);
    frozen_ = r.ok() && *r;
    if (!frozen_) spdlog::info("{}: filesystems not frozen ({})", dom_.name(), why);
  }
  ~Freeze() { Thaw(); }
  void Thaw() {
    if (!frozen_ || thawed_) return;
    thawed_ = true;
    Status s = dom_.ThawFilesystems();
    if (!s.ok()) spdlog::error("{}", s.ToString());
  }
  // Whether the filesystems were frozen (and maybe thawed since).
  bool frozen() const { return frozen_; }

 private:
  LibvirtDomain& dom_;
  bool frozen_ = false;
  bool thawed_ = false;
};

// A backup made without a new checkpoint keeps the last backup's checkpoint when the
// domain still has it: its bitmaps mark everything written since it, a superset of
// what changed since this backup, so the next pull backup may read only those ranges
// and take the rest from this backup.
void CarryCheckpoint(LibvirtDomain& dom, BackupBuilder& b) {
  const store::BackupRecord* parent = b.parent();
  if (parent == nullptr || parent->checkpoint.empty()) return;
  auto names = dom.ListCheckpoints();
  if (names.ok() && std::find(names->begin(), names->end(), parent->checkpoint) != names->end()) {
    b.record().checkpoint = parent->checkpoint;
  }
}

// Reads a domain disk's image file (as qemu-img and qemu-nbd see it) into the backup.
Status AddImage(Context& cx, const TakenDisk& d, bool force_share, BackupBuilder& b) {
  VV_ASSIGN_OR_RETURN(ProbedFile f, ProbeFile(cx.runner, d.config.source_path,
                                              d.config.driver_type, force_share));
  DiskSource src;
  src.name = d.config.target_dev;
  SourceOpener opener;
  return AddProbedFile(b, f, std::move(src), opener, static_cast<int>(cx.threads));
}

// ---- offline ----

Status BackupOffline(Context& cx, LibvirtDomain& dom, const std::vector<TakenDisk>& disks,
                     BackupBuilder& b) {
  b.record().method = "offline";
  std::vector<store::DiskIndex> bases;
  bases.reserve(disks.size());
  for (const TakenDisk& d : disks) {
    const std::string& target = d.config.target_dev;
    VV_ASSIGN_OR_RETURN(ImageInfo info,
                        ProbeImage(cx.runner, d.config.source_path, d.config.driver_type));
    DiskSource src;
    src.name = target;
    src.path = info.path;
    src.format = info.format;
    src.size = info.virtual_size;
    src.stamp = StampOf(info.path);
    const store::DiskRecord* prev = b.ParentDisk(target);
    if (prev != nullptr && info.backing_file.empty() && src.stamp.known() &&
        prev->source_stamp == src.stamp && prev->source_path == info.path) {
      std::string why;
      VV_ASSIGN_OR_RETURN(auto base, b.ParentIndex(target, info.virtual_size, &why));
      if (base) {
        bases.push_back(std::move(*base));
        src.base = &bases.back();
        src.read_mode = "unchanged";
        src.allocated = prev->allocated_bytes;
        spdlog::info("{}: disk {} is unchanged since the last backup; not reading it", dom.name(),
                     target);
        VV_RETURN_IF_ERROR(b.AddDisk(src));
        continue;
      }
    }
    VV_ASSIGN_OR_RETURN(ProbedFile f, ProbeFile(cx.runner, info.path, info.format));
    SourceOpener opener;
    VV_RETURN_IF_ERROR(
        AddProbedFile(b, f, std::move(src), opener, static_cast<int>(cx.threads)));
  }
  return Status::OK();
}

// Runs `capture` (the moment a running domain's disks are captured) between the
// snapshot hooks.
Status Capture(Context& cx, BackupBuilder& b, const std::function<Status()>& capture) {
  return CaptureBetweenHooks(cx.options.hooks, b.record().vm, b.record().tier,
                             cx.options.method, capture, &cx.post_snapshot);
}

// ---- pause ----

Status BackupPaused(Context& cx, LibvirtDomain& dom, const std::vector<TakenDisk>& disks,
                    bool already_paused, BackupBuilder& b) {
  b.record().method = "paused";
  Freeze freeze(dom);
  if (!already_paused) VV_RETURN_IF_ERROR(dom.Suspend());
  const auto paused_at = steady_clock::now();
  struct Resumer {
    LibvirtDomain& dom;
    bool active;
    ~Resumer() {
      if (!active) return;
      Status s = dom.Resume();
      if (!s.ok()) spdlog::error("{}", s.ToString());
    }
  } resumer{dom, !already_paused};

  for (const TakenDisk& d : disks) {
    VV_RETURN_IF_ERROR(AddImage(cx, d, /*force_share=*/true, b));
  }
  if (!already_paused) {
    resumer.active = false;
    VV_RETURN_IF_ERROR(dom.Resume());
  }
  b.record().pause_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            steady_clock::now() - paused_at)
                            .count();
  freeze.Thaw();
  b.record().fs_frozen = freeze.frozen();
  spdlog::info("{}: paused for {:.3f} s", dom.name(), b.record().pause_us / 1e6);
  return Status::OK();
}

// ---- snapshot ----

Status BackupSnapshot(Context& cx, LibvirtDomain& dom, const std::vector<DiskChoice>& choices,
                      const std::vector<TakenDisk>& disks, const WorkDir& work,
                      BackupBuilder& b) {
  b.record().method = "snapshot";
  std::map<std::string, std::string> overlays;
  for (const TakenDisk& d : disks) {
    if (d.writable) overlays[d.config.target_dev] = work.path() + "/" + d.config.target_dev + ".overlay.qcow2";
  }
  VV_ASSIGN_OR_RETURN(const std::string xml,
                      DiskOnlySnapshotXml(NewCheckpointName(cx.clock), choices, overlays));
  VV_RETURN_IF_ERROR(Capture(cx, b, [&] {
    Freeze freeze(dom);
    VV_RETURN_IF_ERROR(dom.CreateDiskOnlySnapshot(xml, /*quiesce=*/false));
    freeze.Thaw();
    b.record().fs_frozen = freeze.frozen();
    return Status::OK();
  }));
  // From here on, guest writes go to the overlays: read, then commit them back
  // whether the read worked or not.
  Status read;
  for (const TakenDisk& d : disks) {
    // The image under the overlay: QEMU only reads it now. A read-only disk has no
    // overlay and is read shared.
    read = AddImage(cx, d, /*force_share=*/!d.writable, b);
    if (!read.ok()) break;
  }
  std::vector<std::string> stuck;
  for (const auto& [target, overlay] : overlays) {
    Status s = dom.ActiveCommitAndPivot(target, kCommitTimeout);
    if (s.ok()) {
      std::error_code ec;
      std::filesystem::remove(overlay, ec);
    } else {
      stuck.push_back(fmt::format("overlay {} of disk {} ({})", overlay, target, s.message()));
    }
  }
  if (!stuck.empty()) {
    Status s = read.ok() ? Status::External("the disks could not be committed back") : read;
    std::string list;
    for (const std::string& l : stuck) list += (list.empty() ? "" : "; ") + l;
    return Status(s.code(), fmt::format("{}; domain '{}' still runs on: {}. Do not delete these "
                                        "files: commit them with `virsh blockcommit {} DISK "
                                        "--active --pivot`",
                                        s.message(), dom.name(), list, dom.name()));
  }
  return read;
}

// ---- pull-mode backup ----

// Fault-injection point for tests (after RocksDB's sync points): when
// VMVAULT_TEST_HOLD is set to a path, a pull backup whose job has started creates
// PATH.ready and waits (up to a minute) until PATH exists, so a test can break
// something at exactly this moment. Unset in production; costs one getenv.
void TestHold() {
  const char* path = std::getenv("VMVAULT_TEST_HOLD");
  if (path == nullptr || *path == '\0') return;
  const std::string ready = std::string(path) + ".ready";
  if (FILE* f = std::fopen(ready.c_str(), "w")) std::fclose(f);
  const auto deadline = steady_clock::now() + std::chrono::seconds(60);
  while (::access(path, F_OK) != 0 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status BackupPull(Context& cx, LibvirtDomain& dom, const std::vector<DiskChoice>& choices,
                  const std::vector<TakenDisk>& disks, const WorkDir& work, BackupBuilder& b,
                  std::string* new_checkpoint, bool* job_begun) {
  b.record().method = "pull-backup";
  VV_ASSIGN_OR_RETURN(const std::vector<std::string> checkpoints, dom.ListCheckpoints());
  // Incremental from the last backup's checkpoint when the domain still has it.
  std::string since;
  std::string why_full;
  if (const store::BackupRecord* parent = b.parent(); parent == nullptr) {
    why_full = "this is the domain's first backup";
  } else if (parent->checkpoint.empty()) {
    why_full = "the last backup made no checkpoint";
  } else if (std::find(checkpoints.begin(), checkpoints.end(), parent->checkpoint) ==
             checkpoints.end()) {
    why_full = fmt::format("the domain no longer has checkpoint {} of the last backup",
                           parent->checkpoint);
  } else {
    since = parent->checkpoint;
  }
  bool any_bitmap = false;
  for (const TakenDisk& d : disks) any_bitmap |= d.writable;

  BackupSpec spec;
  spec.socket_path = work.path() + "/backup.sock";
  spec.incremental = since;
  spec.disks = choices;
  std::map<std::string, store::DiskIndex> bases;
  std::map<std::string, std::string> notes;
  for (const TakenDisk& d : disks) {
    const std::string& t = d.config.target_dev;
    spec.scratch_files[t] = work.path() + "/" + t + ".scratch.qcow2";
    if (since.empty()) continue;
    // The size is checked again against the export before the base is used.
    const store::DiskRecord* prev = b.ParentDisk(t);
    std::string why;
    auto base = prev != nullptr ? b.ParentIndex(t, prev->virtual_size, &why)
                                : Result<std::optional<store::DiskIndex>>(std::nullopt);
    if (prev == nullptr) why = "the last backup did not have this disk";
    if (!base.ok()) why = base.status().ToString();
    if (!d.writable) why = "the disk is read-only, so it has no bitmap";
    if (base.ok() && *base && d.writable) {
      bases[t] = std::move(**base);
    } else {
      spec.full_disks.insert(t);
      notes[t] = why;
    }
  }
  VV_ASSIGN_OR_RETURN(const std::string backup_xml, BackupXml(spec));
  std::string checkpoint, checkpoint_xml;
  if (any_bitmap) {
    checkpoint = NewCheckpointName(cx.clock);
    VV_ASSIGN_OR_RETURN(checkpoint_xml, CheckpointXml(checkpoint, choices));
  }
  // The job and checkpoint are the caller's to clean up only once they may exist.
  VV_RETURN_IF_ERROR(Capture(cx, b, [&] {
    *job_begun = true;
    *new_checkpoint = checkpoint;
    Freeze freeze(dom);
    VV_RETURN_IF_ERROR(dom.BackupBegin(backup_xml, checkpoint_xml));
    freeze.Thaw();
    b.record().fs_frozen = freeze.frozen();
    return Status::OK();
  }));
  b.record().checkpoint = *new_checkpoint;
  TestHold();
  spdlog::info("{}: backup job started{}", dom.name(),
               since.empty() ? fmt::format(" (full read: {})", why_full)
                             : fmt::format(" (changes since checkpoint {})", since));

  for (const TakenDisk& d : disks) {
    const std::string& t = d.config.target_dev;
    const std::string dirty_context = "qemu:dirty-bitmap:backup-" + t;
    std::vector<std::string> contexts = {"base:allocation"};
    const bool incremental = bases.count(t) != 0;
    if (incremental) contexts.push_back(dirty_context);
    VV_ASSIGN_OR_RETURN(auto probe, NbdImage::ConnectUnix(spec.socket_path, t, contexts));
    DiskSource src;
    src.name = t;
    src.path = d.config.source_path;
    src.format = d.config.driver_type.empty() ? "raw" : d.config.driver_type;
    src.size = probe->size();
    if (probe->HasContext("base:allocation")) {
      VV_ASSIGN_OR_RETURN(src.extents, probe->ContextExtents("base:allocation"));
    } else {
      src.extents = {{0, src.size, true}};
    }
    if (incremental) {
      auto dirty = probe->ContextExtents(dirty_context);
      if (!dirty.ok()) {
        src.read_note = fmt::format("the dirty bitmap could not be read ({})",
                                    dirty.status().message());
      } else if (bases[t].size() != (src.size + cx.repo.config().chunk_size - 1) /
                                       cx.repo.config().chunk_size) {
        src.read_note = "the disk changed size since the last backup";
      } else {
        src.base = &bases[t];
        src.changed = std::move(dirty).value();
        src.read_mode = "incremental";
      }
    } else if (!since.empty()) {
      src.read_note = notes[t];
    } else if (b.parent() != nullptr) {
      src.read_note = why_full;
    }
    if (src.read_mode != "incremental" && !since.empty()) {
      spdlog::warn("{}: reading all of disk {}: {}", dom.name(), t, src.read_note);
    }
    ExportSource source(spec.socket_path, t);
    src.source = &source;
    VV_RETURN_IF_ERROR(b.AddDisk(src));
  }
  // Ending the job is part of a good backup: a job that cannot be ended, or a
  // connection lost on the way, fails it (and the caller cleans up).
  VV_RETURN_IF_ERROR(dom.AbortJob());
  return Status::OK();
}

// Deletes the vmvault checkpoints other than `keep`. Warnings only: scrub mends it.
void DeleteOlderCheckpoints(LibvirtDomain& dom, const std::string& keep) {
  auto names = dom.ListCheckpoints();
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    if (!IsOurs(n) || n == keep) continue;
    Status s = dom.DeleteCheckpoint(n, false);
    if (!s.ok()) spdlog::warn("{} (run `vmvault scrub --domain {}`)", s.ToString(), dom.name());
  }
}

Result<store::BackupRecord> BackupDomain(Context& cx, const std::string& name,
                                         std::optional<store::BackupRecord>* kept) {
  VV_ASSIGN_OR_RETURN(auto dom, cx.conn->LookupDomain(name));
  VV_ASSIGN_OR_RETURN(const DomainState state, dom->State());
  VV_ASSIGN_OR_RETURN(const std::string live_xml, dom->Xml(false));
  VV_ASSIGN_OR_RETURN(const std::string config_xml, dom->Xml(true));
  VV_ASSIGN_OR_RETURN(const DomainConfig config, ParseDomainXml(live_xml));
  DiskChoiceOptions choice_options;
  choice_options.include_readonly = cx.options.include_readonly;
  choice_options.include_removable = cx.options.include_removable;
  VV_ASSIGN_OR_RETURN(const std::vector<DiskChoice> choices, ChooseDisks(config, choice_options));
  const std::vector<TakenDisk> disks = Taken(config, choices);

  const std::string vm_name = SanitizeName(name);
  VV_ASSIGN_OR_RETURN(auto b, BackupBuilder::Start(cx.repo, vm_name, cx.options.tier,
                                                   fmt::format("{} domain {}", cx.conn->uri(), name),
                                                   cx.clock, {cx.threads, cx.options.progress}));
  VV_RETURN_IF_ERROR(ValidateTier(b->record().tier));
  b->record().config_kind = "libvirt-xml";
  b->record().config = config_xml;

  if (state == DomainState::kShutoff) {
    VV_RETURN_IF_ERROR(BackupOffline(cx, *dom, disks, *b));
    CarryCheckpoint(*dom, *b);
    return b->Commit();
  }
  cx.post_snapshot = Status::OK();
  if (cx.options.method == "pause") {
    VV_RETURN_IF_ERROR(Capture(cx, *b, [&] {
      return BackupPaused(cx, *dom, disks, state == DomainState::kPaused, *b);
    }));
    CarryCheckpoint(*dom, *b);
    return b->CommitThenReport(cx.post_snapshot, kept);
  }
  const auto [uid, gid] = QemuOwner(live_xml);
  VV_ASSIGN_OR_RETURN(auto work, WorkDir::Make(cx.options.work_dir, uid, gid));
  if (cx.options.method == "snapshot") {
    VV_RETURN_IF_ERROR(BackupSnapshot(cx, *dom, choices, disks, *work, *b));
    CarryCheckpoint(*dom, *b);
    return b->CommitThenReport(cx.post_snapshot, kept);
  }
  std::string checkpoint;
  bool job_begun = false;
  Status s = BackupPull(cx, *dom, choices, disks, *work, *b, &checkpoint, &job_begun);
  Result<store::BackupRecord> committed = s.ok() ? b->Commit() : Result<store::BackupRecord>(s);
  if (committed.ok() && !checkpoint.empty()) DeleteOlderCheckpoints(*dom, checkpoint);
  // Committed: the job has ended with the read, so only the hook is left to report.
  if (committed.ok() && !cx.post_snapshot.ok()) {
    return KeptDespite(*committed, cx.post_snapshot, kept);
  }
  if (!committed.ok()) {
    Status err = committed.status();
    if (!cx.conn->alive()) {
      err = err.WithContext(fmt::format("lost the connection to libvirt at {}", cx.conn->uri()));
    }
    const std::vector<std::string> left =
        job_begun ? CleanUpBackupJob(cx, dom->uuid(), checkpoint, disks)
                  : std::vector<std::string>();
    return WithLeftovers(err.WithContext(fmt::format("backing up domain '{}'", name)), left, name);
  }
  return committed;
}

}  // namespace

Status ValidateMethod(std::string_view method) {
  if (method == "backup" || method == "snapshot" || method == "pause") return Status::OK();
  return Status::InvalidArgument(
      fmt::format("method '{}' is not one of backup, snapshot, pause", Printable(method)));
}

Result<std::vector<store::BackupRecord>> IngestDomains(store::Repository& repo,
                                                       const DomainIngestOptions& options,
                                                       CommandRunner& runner,
                                                       const Clock& clock) {
  VV_RETURN_IF_ERROR(ValidateMethod(options.method));
  if (options.tier) VV_RETURN_IF_ERROR(ValidateTier(*options.tier));
  if (options.domains.empty() && !options.all_domains) {
    return Status::InvalidArgument("no domain given (--domain NAME or --all-domains)");
  }
  VV_ASSIGN_OR_RETURN(auto conn, LibvirtConnection::Open(options.uri));
  std::vector<std::string> names = options.domains;
  if (options.all_domains) {
    VV_ASSIGN_OR_RETURN(names, conn->ListDomainNames());
  }
  // Look every named domain up before backing any up, so a typo costs nothing.
  std::vector<std::pair<bool, std::string>> order;  // (not running, name)
  std::set<std::string> seen;
  for (const std::string& n : names) {
    if (!seen.insert(n).second) continue;
    VV_ASSIGN_OR_RETURN(auto dom, conn->LookupDomain(n));
    VV_ASSIGN_OR_RETURN(const DomainState state, dom->State());
    order.emplace_back(state == DomainState::kShutoff, n);
  }
  // Running domains first: their copy is the one that matters to keep short.
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  Context cx{repo, options, runner, clock, conn.get(),
             options.threads != 0 ? options.threads : ThreadPool::HardwareThreads(),
             Status::OK()};
  std::vector<store::BackupRecord> done;
  Status first_error;
  std::vector<std::string> failed;
  for (const auto& [off, name] : order) {
    std::optional<store::BackupRecord> made;
    const Status r = BackupBetweenHooks(
        repo, options.hooks.each_backup ? options.hooks : IngestHooks(), SanitizeName(name),
        options.tier, [&](auto* kept) { return BackupDomain(cx, name, kept); }, &made);
    if (r.ok()) {
      done.push_back(std::move(*made));
      continue;
    }
    if (made && options.kept != nullptr) options.kept->push_back(std::move(*made));
    spdlog::error("{}", r.ToString());
    failed.push_back(name);
    if (first_error.ok()) first_error = r;
    if (!cx.conn->alive()) {
      // Later domains need a connection too.
      auto c = LibvirtConnection::Open(options.uri);
      if (!c.ok()) return first_error;
      conn = std::move(c).value();
      cx.conn = conn.get();
    }
  }
  if (failed.empty()) return done;
  if (order.size() == 1) return first_error;
  std::string list;
  for (const std::string& f : failed) list += (list.empty() ? "" : ", ") + f;
  return Status(first_error.code(), fmt::format("{} of {} domains failed ({}); the first: {}",
                                                failed.size(), order.size(), list,
                                                first_error.message()));
}

}  // namespace vmvault::ingest

namespace vmvault::ingest {
namespace {

// The names of the bitmaps in a qcow2 image (qemu-img info, sharing the image with a
// QEMU that may hold it).
Result<std::vector<std::string>> ImageBitmaps(CommandRunner& runner, const std::string& path) {
  VV_ASSIGN_OR_RETURN(const CommandOutput out,
                      runner.Run({"qemu-img", "info", "--output=json", "--force-share", path}));
  if (out.exit_code != 0) {
    return Status::External(fmt::format("qemu-img info '{}': {}", Printable(path),
                                        CleanQemuError(out.stderr_text)));
  }
  std::vector<std::string> names;
  try {
    const nlohmann::json j = nlohmann::json::parse(out.stdout_text);
    const nlohmann::json* data = &j;
    for (const char* k : {"format-specific", "data", "bitmaps"}) {
      if (!data->contains(k)) return names;
      data = &data->at(k);
    }
    for (const nlohmann::json& b : *data) names.push_back(b.at("name").get<std::string>());
  } catch (const std::exception& e) {
    return Status::External(fmt::format("qemu-img info '{}': {}", Printable(path), e.what()));
  }
  return names;
}

// (node name, bitmap name) of every bitmap QEMU has on the domain's disks.
Result<std::vector<std::pair<std::string, std::string>>> LiveBitmaps(LibvirtDomain& dom) {
  VV_ASSIGN_OR_RETURN(const std::string reply, dom.QemuMonitorCommand(R"({"execute":"query-block"})"));
  std::vector<std::pair<std::string, std::string>> out;
  try {
    const nlohmann::json j = nlohmann::json::parse(reply);
    for (const nlohmann::json& dev : j.at("return")) {
      if (!dev.contains("inserted")) continue;
      const nlohmann::json& ins = dev.at("inserted");
      if (!ins.contains("dirty-bitmaps")) continue;
      for (const nlohmann::json& b : ins.at("dirty-bitmaps")) {
        out.emplace_back(ins.at("node-name").get<std::string>(), b.at("name").get<std::string>());
      }
    }
  } catch (const std::exception& e) {
    return Status::External(fmt::format("query-block on domain '{}': {}", dom.name(), e.what()));
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> ScrubDomain(const store::Repository* repo,
                                             const ScrubOptions& options,
                                             CommandRunner& runner) {
  VV_ASSIGN_OR_RETURN(auto conn, LibvirtConnection::Open(options.uri));
  VV_ASSIGN_OR_RETURN(auto dom, conn->LookupDomain(options.domain));
  VV_ASSIGN_OR_RETURN(const DomainState state, dom->State());
  const bool running = state != DomainState::kShutoff;
  std::string keep;
  if (repo != nullptr && !options.all) {
    auto backups = repo->catalog().ListBackups(SanitizeName(options.domain));
    if (backups.ok() && !backups->empty()) keep = backups->back().checkpoint;
  }
  VV_ASSIGN_OR_RETURN(const std::string xml, dom->Xml(false));
  VV_ASSIGN_OR_RETURN(const DomainConfig config, ParseDomainXml(xml));
  std::vector<TakenDisk> disks;
  for (const DiskConfig& d : config.disks) disks.push_back({d, !d.readonly && d.device == "disk"});

  std::vector<std::string> done;
  const std::string verb = options.dry_run ? "would delete" : "deleted";
  VV_ASSIGN_OR_RETURN(const std::vector<std::string> checkpoints, dom->ListCheckpoints());
  std::set<std::string> remaining(checkpoints.begin(), checkpoints.end());
  for (const std::string& n : checkpoints) {
    if (!IsOurs(n) || n == keep) continue;
    if (!options.dry_run) {
      VV_RETURN_IF_ERROR(dom->DeleteCheckpoint(n, /*metadata_only=*/!running));
      if (!running) {
        std::vector<std::string> left = RemoveBitmaps(runner, disks, n);
        if (!left.empty()) return Status::External("cannot remove " + left.front());
      }
    }
    remaining.erase(n);
    done.push_back(fmt::format("{} checkpoint {}", verb, n));
  }
  // Bitmaps of ours that no checkpoint accounts for (libvirt's metadata was lost, or a
  // checkpoint was deleted as metadata only).
  if (running) {
    VV_ASSIGN_OR_RETURN(auto bitmaps, LiveBitmaps(*dom));
    for (const auto& [node, name] : bitmaps) {
      if (!IsOurs(name) || remaining.count(name) != 0) continue;
      if (!options.dry_run) {
        const nlohmann::json cmd = {{"execute", "block-dirty-bitmap-remove"},
                                    {"arguments", {{"node", node}, {"name", name}}}};
        VV_RETURN_IF_ERROR(dom->QemuMonitorCommand(cmd.dump()).status());
      }
      done.push_back(fmt::format("{} bitmap {} of node {}", verb, name, node));
    }
  } else {
    for (const TakenDisk& d : disks) {
      if (d.config.driver_type != "qcow2" || d.config.type != "file") continue;
      VV_ASSIGN_OR_RETURN(auto names, ImageBitmaps(runner, d.config.source_path));
      for (const std::string& name : names) {
        if (!IsOurs(name) || remaining.count(name) != 0) continue;
        if (!options.dry_run) {
          std::vector<std::string> left = RemoveBitmaps(runner, {d}, name);
          if (!left.empty()) return Status::External("cannot remove " + left.front());
        }
        done.push_back(fmt::format("{} bitmap {} in {}", verb, name, d.config.source_path));
      }
    }
  }
  return done;
}

}  // namespace vmvault::ingest
