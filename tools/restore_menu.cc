#include "tools/restore_menu.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <istream>
#include <ostream>
#include <vector>

#include "base/names.h"
#include "base/progress.h"
#include "base/time_format.h"
#include "store/catalog.h"
#include "tools/inventory.h"

namespace vmvault::tools {
namespace {

// One answer: a line, or nothing when the user quit ('q' or the end of input).
std::optional<std::string> ReadAnswer(std::istream& in, std::ostream& out,
                                      const std::string& prompt) {
  out << prompt << std::flush;
  std::string line;
  if (!std::getline(in, line)) {
    out << "\n";
    return std::nullopt;
  }
  const size_t b = line.find_first_not_of(" \t\r");
  const size_t e = line.find_last_not_of(" \t\r");
  line = b == std::string::npos ? "" : line.substr(b, e - b + 1);
  if (line == "q" || line == "Q") return std::nullopt;
  return line;
}

// The index (0-based) of the item chosen from `items`, asked until valid.
std::optional<size_t> Choose(std::istream& in, std::ostream& out, const std::string& title,
                             const std::vector<std::string>& items) {
  out << "\n" << title << "\n";
  for (size_t i = 0; i < items.size(); ++i) out << fmt::format("  {:>2}) {}\n", i + 1, items[i]);
  const std::string prompt = items.size() == 1
                                 ? "Choose 1 (q to quit): "
                                 : fmt::format("Choose 1-{} (q to quit): ", items.size());
  for (;;) {
    std::optional<std::string> a = ReadAnswer(in, out, prompt);
    if (!a) return std::nullopt;
    size_t n = 0;
    if (!a->empty() && a->size() < 6 &&
        std::all_of(a->begin(), a->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      n = std::stoul(*a);
    }
    if (n >= 1 && n <= items.size()) return n - 1;
    out << (items.size() == 1 ? fmt::format("'{}' is not 1.\n", Printable(*a))
                              : fmt::format("'{}' is not one of the numbers 1-{}.\n", Printable(*a),
                                            items.size()));
  }
}

// A non-empty line of text, asked until given; `fallback` answers an empty line when
// it is not empty.
std::optional<std::string> AskText(std::istream& in, std::ostream& out, const std::string& prompt,
                                   const std::string& fallback = "") {
  for (;;) {
    std::optional<std::string> a = ReadAnswer(in, out, prompt);
    if (!a) return std::nullopt;
    if (a->empty()) a = fallback;
    if (!a->empty()) return a;
    out << "Please type an answer, or q to quit.\n";
  }
}

// Yes or no; `yes_word` is the only yes ("y" accepts "yes" too), anything else is no.
std::optional<bool> Confirm(std::istream& in, std::ostream& out, const std::string& prompt,
                            const std::string& yes_word) {
  std::optional<std::string> a = ReadAnswer(in, out, prompt);
  if (!a) return std::nullopt;
  std::string lower = *a;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == yes_word || (yes_word == "y" && lower == "yes");
}

std::string NotVerifiedOr(std::string text) { return text.empty() ? "not verified" : text; }

uint64_t LogicalBytes(const store::BackupRecord& b) {
  uint64_t n = 0;
  for (const store::DiskRecord& d : b.disks) n += d.virtual_size;
  return n;
}

// The path a menu user typed, as given; a leading "~/" is their home.
std::string ExpandHome(const std::string& path) {
  if (!path.starts_with("~/")) return path;
  const char* home = std::getenv("HOME");
  return home != nullptr ? std::string(home) + path.substr(1) : path;
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Result<std::optional<RestoreOptions>> AskRestore(const store::Catalog& catalog,
                                                 const RestoreOptions& defaults, std::istream& in,
                                                 std::ostream& out) {
  const std::optional<RestoreOptions> kQuit;
  VV_ASSIGN_OR_RETURN(std::vector<store::VmRecord> vms, catalog.ListVms());
  if (vms.empty()) return Status::NotFound("the repository holds no backups");

  // 1. The VM.
  std::vector<std::vector<store::BackupRecord>> backups_of;
  std::vector<std::string> vm_items;
  for (const store::VmRecord& vm : vms) {
    VV_ASSIGN_OR_RETURN(std::vector<store::BackupRecord> backups, catalog.ListBackups(vm.name));
    std::reverse(backups.begin(), backups.end());  // newest first
    vm_items.push_back(fmt::format(
        "{}  ({} backup{}{})", Printable(vm.name), backups.size(), backups.size() == 1 ? "" : "s",
        backups.empty() ? "" : ", newest " + FormatIsoTime(backups.front().time_us)));
    backups_of.push_back(std::move(backups));
  }
  std::optional<size_t> v = Choose(in, out, "VMs:", vm_items);
  if (!v) return kQuit;
  RestoreOptions o = defaults;
  o.vm = vms[*v].name;
  const std::vector<store::BackupRecord>& backups = backups_of[*v];
  if (backups.empty()) {
    return Status::NotFound(fmt::format("VM '{}' has no backups", Printable(o.vm)));
  }

  // 2. The backup.
  std::vector<std::string> backup_items;
  for (const store::BackupRecord& b : backups) {
    backup_items.push_back(fmt::format("{}  {}  {} disk{}, {}  {}", b.name(),
                                       FormatIsoTime(b.time_us), b.disks.size(),
                                       b.disks.size() == 1 ? "" : "s", HumanBytes(LogicalBytes(b)),
                                       NotVerifiedOr(VerificationText(catalog.GetVerification(b.id)))));
  }
  std::optional<size_t> bi =
      Choose(in, out, fmt::format("Backups of {}, newest first:", Printable(o.vm)), backup_items);
  if (!bi) return kQuit;
  const store::BackupRecord& b = backups[*bi];
  o.backup = std::to_string(b.id);

  // 3. What to do with it.
  enum class Action { kFile, kDevice, kDomain };
  std::vector<Action> actions = {Action::kFile, Action::kDevice};
  std::vector<std::string> action_items = {"Restore to a file (raw, qcow2, vhdx or vmdk)",
                                           "Restore to a block device (overwrites it)"};
  if (b.config_kind == "libvirt-xml") {
    actions.push_back(Action::kDomain);
    action_items.push_back("Define a new libvirt domain on restored copies of the disks");
  }
  std::optional<size_t> ai = Choose(in, out, "Action:", action_items);
  if (!ai) return kQuit;
  const Action action = actions[*ai];

  // Which disk, when the action takes one and there is a choice.
  if (action != Action::kDomain && b.disks.size() > 1) {
    std::vector<std::string> disk_items;
    if (action == Action::kFile) disk_items.push_back("Every disk (one file each, in a directory)");
    for (const store::DiskRecord& d : b.disks) {
      disk_items.push_back(fmt::format("{}  {}", Printable(d.name), HumanBytes(d.virtual_size)));
    }
    std::optional<size_t> di = Choose(in, out, "Disk:", disk_items);
    if (!di) return kQuit;
    const size_t first_disk = action == Action::kFile ? 1 : 0;
    if (*di >= first_disk) o.disk = b.disks[*di - first_disk].name;
  }

  std::string summary;
  std::string yes_word = "y";
  switch (action) {
    case Action::kFile: {
      static const std::vector<std::string> kFormats = {"raw", "qcow2", "vhdx", "vmdk"};
      std::optional<size_t> f = Choose(in, out, "Format:", kFormats);
      if (!f) return kQuit;
      o.format = kFormats[*f];
      const bool one_file = b.disks.size() == 1 || !o.disk.empty();
      std::optional<std::string> to =
          AskText(in, out,
                  one_file ? "\nWrite to (a file, or a directory to put it in): "
                           : "\nWrite into the directory: ");
      if (!to) return kQuit;
      o.to = ExpandHome(*to);
      summary = fmt::format("Restore {} of {} backup {} as {} to {}",
                            !o.disk.empty()       ? "disk " + Printable(o.disk)
                            : b.disks.size() == 1 ? "disk " + Printable(b.disks[0].name)
                                                  : "every disk",
                            Printable(o.vm), b.name(), o.format, Printable(o.to));
      if (one_file && IsRegularFile(o.to)) {
        std::optional<bool> replace =
            Confirm(in, out, fmt::format("{} exists. Replace it? [y/N] ", Printable(o.to)), "y");
        if (!replace) return kQuit;
        if (!*replace) return kQuit;
        o.force = true;
        summary += ", replacing it";
      }
      break;
    }
    case Action::kDevice: {
      std::optional<std::string> to = AskText(in, out, "\nThe block device (e.g. /dev/sdb): ");
      if (!to) return kQuit;
      o.to = ExpandHome(*to);
      o.format = "raw";
      o.force = true;  // the confirmation below is the consent --force gives
      const std::string& disk = o.disk.empty() ? b.disks.front().name : o.disk;
      o.disk = disk;
      summary = fmt::format("Overwrite ALL of {} with disk {} of {} backup {}", Printable(o.to),
                            Printable(disk), Printable(o.vm), b.name());
      yes_word = "yes";
      break;
    }
    case Action::kDomain: {
      std::optional<std::string> name = AskText(in, out, "\nName of the new domain: ");
      if (!name) return kQuit;
      o.define = *name;
      static const std::vector<std::string> kFormats = {"qcow2", "raw"};
      std::optional<size_t> f = Choose(in, out, "Format of its disk images:", kFormats);
      if (!f) return kQuit;
      o.format = kFormats[*f];
      std::optional<std::string> dir =
          AskText(in, out, fmt::format("Directory for its disk images [{}]: ", kDefaultImageDir),
                  kDefaultImageDir);
      if (!dir) return kQuit;
      o.to = ExpandHome(*dir);
      summary =
          fmt::format("Define domain {} on {} copies of the disks of {} backup {} in {}",
                      Printable(o.define), o.format, Printable(o.vm), b.name(), Printable(o.to));
      break;
    }
  }
  std::optional<bool> go =
      Confirm(in, out,
              fmt::format("\n{}.\n{}", summary,
                          yes_word == "yes" ? "Type yes to go on: " : "Go on? [y/N] "),
              yes_word);
  if (!go || !*go) return kQuit;
  return std::optional<RestoreOptions>(std::move(o));
}

}  // namespace vmvault::tools
