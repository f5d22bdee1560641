// vmvault ingest: back up disk images, block devices or libvirt domains as new backups.
// With a configuration file (--config, $VMVAULT_CONFIG): its [log], nice and ionice, and
// each VM's backup between its pre- and post-backup hooks (the snapshot hooks run
// inside the domain and VirtualBox ingest).
#include <functional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "base/progress.h"
#include "ingest/backup_builder.h"
#include "ingest/config.h"
#include "ingest/domain_ingest.h"
#include "ingest/file_ingest.h"
#include "ingest/hooks.h"
#include "ingest/lvm.h"
#include "ingest/priority.h"
#include "ingest/vbox_ingest.h"
#include "store/repository.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

struct IngestArgs {
  ingest::FileIngestOptions files;
  std::vector<std::string> devices;
  ingest::DomainIngestOptions domains;
  std::string virtualbox;
  std::string lvm;
  std::string vm;
  std::string tier;
  std::string config;
};

}  // namespace

Command IngestCommand() {
  return {"ingest",
          "Back up disk images, block devices, libvirt domains or VirtualBox machines",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<IngestArgs>();
            // Exactly one kind of source per run.
            CLI::Option_group* sources = app.add_option_group(
                "Sources", "What to back up: exactly one of these");
            sources->add_option(
                "--file", a->files.files,
                "A disk image: raw, qcow2, vmdk, vdi, vhdx or vpc. Repeat for a VM with "
                "several disks");
            sources->add_option(
                "--device", a->devices, "A block device, read whole. Repeat for several disks");
            CLI::Option* domain_opt = sources->add_option(
                "--domain", a->domains.domains,
                "A libvirt domain; each becomes one backup of the VM of the same name. Repeat "
                "for several");
            CLI::Option* vbox_opt = sources->add_option(
                "--virtualbox", a->virtualbox,
                "VirtualBox machines: a VirtualBox.xml, a .vbox file or a folder of them; "
                "each machine becomes one backup");
            sources->add_option(
                "--lvm", a->lvm,
                "An LVM logical volume VG/LV: snapshot it, back the snapshot up, remove it "
                "(needs device-mapper)");
            CLI::Option* all_opt = sources->add_flag("--all-domains", a->domains.all_domains,
                                                "Every domain of the libvirt connection");
            app.add_option("--connect", a->domains.uri,
                           "The libvirt URI (default: libvirt's, qemu:///system for root)");
            app.add_option("--method", a->domains.method,
                           "How running domains are copied: backup (pull-mode backup job with "
                           "changed-block tracking; the default), snapshot (external snapshot "
                           "and block commit) or pause (suspend, copy, resume)");
            app.add_flag("--include-readonly", a->domains.include_readonly,
                         "Also back up a domain's read-only disks");
            app.add_flag("--include-removable", a->domains.include_removable,
                         "Also back up the media in a domain's cdrom and floppy drives");
            app.add_option("--work-dir", a->domains.work_dir,
                           "Where a running domain's backup keeps its socket, scratch files "
                           "and overlays (default: /var/tmp)");
            CLI::Option* vm_opt = app.add_option(
                "--vm", a->vm, "The VM's name for --file, --device and --lvm (default: the first's name)");
            app.add_option("--tier", a->tier, "hot, warm or cold (default: the VM's tier, or warm)");
            app.add_option("--format", a->files.formats,
                           "The format of each --file, in order, instead of probing it");
            app.add_option("--threads", a->files.threads, "Worker threads (default: one per core)");
            sources->require_option(1);
            vm_opt->excludes(domain_opt)->excludes(all_opt)->excludes(vbox_opt);
            AddConfigOption(app, &a->config, "Run the hooks of, and log and set priorities as in,");
            CLI::Option* repo_opt = app.get_option_no_throw("--repo");
            return [&global, a, vm_opt, repo_opt]() -> Status {
              VV_ASSIGN_OR_RETURN(const NamedConfig named,
                                  LoadNamedConfig(global, repo_opt, a->config));
              const std::optional<ingest::Config>& config = named.config;
              const GlobalOptions& g = named.global;
              if (config) {
                if (Status p = ingest::ApplyPriority(config->nice, config->ionice); !p.ok()) {
                  spdlog::warn("{}", p.ToString());
                }
              }
              const bool progress = !global.quiet && Progress::StderrIsTerminal();
              std::optional<std::string> tier;
              if (!a->tier.empty()) tier = a->tier;
              if (!a->domains.domains.empty() || a->domains.all_domains) {
                VV_RETURN_IF_ERROR(ingest::ValidateMethod(a->domains.method));
              }
              if (!a->lvm.empty() && !a->files.formats.empty()) {
                return Status::InvalidArgument("--format is for --file; a volume is read raw");
              }
              if (!a->devices.empty() && !a->files.formats.empty()) {
                return Status::InvalidArgument("--format is for --file; a device is read raw");
              }
              VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(g, store::RepoMode::kWrite));
              ingest::RealCommandRunner runner;
              const Clock& clock = SystemClock::Default();
              // With a configuration file, its backup hooks around each VM's backup and
              // its snapshot hooks around each capture.
              ingest::IngestHooks hooks;
              if (config) hooks = {&config->hooks, g.repo, /*each_backup=*/true};
              // One VM's backup between its backup hooks.
              auto one = [&](const std::string& vm,
                             const std::function<Result<store::BackupRecord>()>& backup) {
                std::optional<store::BackupRecord> made;
                return ingest::BackupBetweenHooks(
                    *repo, hooks, vm, tier, [&](auto*) { return backup(); }, &made);
              };
              if (!a->virtualbox.empty()) {
                ingest::VboxIngestOptions vopts;
                vopts.path = a->virtualbox;
                vopts.tier = tier;
                vopts.threads = a->files.threads;
                vopts.progress = progress;
                vopts.hooks = hooks;
                return ingest::IngestVirtualBox(*repo, vopts, runner, clock).status();
              }
              if (!a->domains.domains.empty() || a->domains.all_domains) {
                ingest::DomainIngestOptions& dopts = a->domains;
                dopts.tier = tier;
                dopts.threads = a->files.threads;
                dopts.progress = progress;
                dopts.hooks = hooks;
                return ingest::IngestDomains(*repo, dopts, runner, clock).status();
              }
              if (!a->lvm.empty()) {
                ingest::LvmIngestOptions lopts;
                lopts.volume = a->lvm;
                if (vm_opt->count() > 0) lopts.vm = a->vm;
                lopts.tier = tier;
                lopts.threads = a->files.threads;
                lopts.progress = progress;
                const std::string lv = a->lvm.substr(a->lvm.find('/') + 1);
                return one(lopts.vm.value_or(SanitizeName(lv)), [&] {
                  ingest::SourceOpener opener;
                  return ingest::IngestLvmVolume(*repo, lopts, runner, clock, opener);
                });
              }
              ingest::FileIngestOptions& opts = a->files;
              if (!a->devices.empty()) {
                opts.files = a->devices;
                opts.formats.assign(a->devices.size(), "raw");
              }
              if (vm_opt->count() > 0) opts.vm = a->vm;  // an empty --vm is an error, not unset
              opts.tier = tier;
              if (!opts.formats.empty() && opts.formats.size() != opts.files.size()) {
                return Status::InvalidArgument(
                    fmt::format("give one --format per --file ({} files, {} formats)",
                                opts.files.size(), opts.formats.size()));
              }
              opts.progress = progress;
              VV_ASSIGN_OR_RETURN(const std::string vm, ingest::VmNameForFiles(opts.vm, opts.files));
              // The summary is logged by IngestImageFiles; on a terminal only, so cron
              // stays quiet.
              return one(vm, [&] { return ingest::IngestImageFiles(*repo, opts, runner, clock); });
            };
          }};
}

Command ScrubCommand() {
  return {"scrub", "Remove a libvirt domain's stale vmvault checkpoints and bitmaps",
          [](CLI::App& app, GlobalOptions& global) {
            auto opts = std::make_shared<ingest::ScrubOptions>();
            app.add_option("--domain", opts->domain, "The domain")->required();
            app.add_option("--connect", opts->uri, "The libvirt URI (default: libvirt's)");
            app.add_flag("--all", opts->all,
                         "Also remove the checkpoint the latest backup made (the next backup "
                         "then reads every disk whole)");
            app.add_flag("--dry-run,-n", opts->dry_run, "Only say what would be removed");
            return [&global, opts]() -> Status {
              // Without a repository every vmvault checkpoint is stale.
              auto repo = OpenRepo(global, store::RepoMode::kReadOnly);
              if (!repo.ok() && !repo.status().IsNotFound() &&
                  repo.status().code() != StatusCode::kFailedPrecondition) {
                return repo.status();
              }
              ingest::RealCommandRunner runner;
              VV_ASSIGN_OR_RETURN(
                  const std::vector<std::string> done,
                  ingest::ScrubDomain(repo.ok() ? repo->get() : nullptr, *opts, runner));
              for (const std::string& line : done) fmt::print("{}\n", line);
              if (done.empty()) fmt::print("nothing to remove on domain {}\n", opts->domain);
              return Status::OK();
            };
          }};
}

}  // namespace vmvault::tools
