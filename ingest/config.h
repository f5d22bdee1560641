// The configuration file, /etc/vmvault/config.toml (vmvault.toml(5)): the repository,
// the sources to back up (libvirt domains, image files, VirtualBox machines, block
// devices, LVM volumes), the interval of each tier, the backup window, concurrency and
// tag filter, retention, hooks, alerts, logging and nice/ionice.
//
// Config is a plain tree of value structs that starts out holding every default.
// CheckConfig fills it from TOML text and collects every problem it finds, each with
// the line and column it is at, instead of stopping at the first: unknown keys (with
// the closest known key as a hint), wrong types, bad values, duplicate sources, unknown
// {{Variables}} in hooks. A TOML syntax error stops the parse, so it comes alone.
//
// Only the parser (config_toml.cc, config_sources.cc) includes toml++; nothing here
// throws. All functions are pure except ReadConfigFile and LoadConfig, which read one
// file; all are thread-safe. The value syntaxes (durations, the window, globs, hook variables, the
// config path) are in ingest/config_values.h.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/time_format.h"
#include "ingest/config_values.h"
#include "store/retention.h"

namespace vmvault::ingest {

// A place in the configuration file: 1-based line and column; 0 when unknown.
struct ConfigLocation {
  int line = 0;
  int column = 0;
  bool operator==(const ConfigLocation&) const = default;
};

// One problem in a configuration file.
struct ConfigError {
  ConfigLocation where;
  std::string message;
  // "config.toml:12:5: message", or "config.toml: message" without a location.
  std::string ToString(std::string_view source_name) const;
};

enum class SourceKind { kDomain, kFile, kVirtualBox, kDevice, kLvm };
// "domain", "file", "virtualbox", "device", "lvm".
std::string_view SourceKindName(SourceKind kind);

// What to back up: one [[source]] table. Which fields apply depends on the kind.
struct SourceConfig {
  SourceKind kind = SourceKind::kDomain;
  ConfigLocation where;  // its [[source]] header

  // domain: libvirt domain names; virtualbox: machine names. Each a name or a glob
  // (config_values.h). virtualbox: default "*".
  std::vector<std::string> names;
  std::vector<std::string> exclude;        // domain, virtualbox: globs of names to skip
  std::string connect = "qemu:///system";  // domain: the libvirt URI
  // virtualbox: a VirtualBox.xml, a .vbox file, or a folder searched for .vbox files.
  std::string path;
  // file, device, lvm: the disks of one VM, in order: absolute paths of image files,
  // block devices, or logical volumes as /dev/VG/LV.
  std::vector<std::string> paths;
  // file, device, lvm: the VM's name. file: default the sanitized name of the first
  // file without its extension, as `vmvault ingest` names it.
  std::string vm;
  std::string snapshot_size = "10%";  // lvm: "10%" of the origin volume, or "4G"
  // How a running VM is copied, as `vmvault ingest --method` names it. domain: backup
  // (the default) | snapshot | pause; virtualbox: pause (the only one). Others: "".
  // A shut-off VM is always read directly.
  std::string method;

  std::string tier = "warm";  // hot | warm | cold
  std::vector<std::string> tags;
  std::optional<Period> period;  // unset: Config::period
  bool enabled = true;
};

// How often the VMs of a tier are backed up.
struct TierConfig {
  Seconds interval{0};
};

struct ScheduleConfig {
  std::optional<BackupWindow> window;  // unset: at any time
  int concurrency = 1;                 // backups at once, 1 to 64
  // Only sources with at least one of these tags are scheduled; empty: every source.
  std::vector<std::string> tags;
};

// Which backups of a VM to keep (the rules and limits: store/retention.h), and where
// in the file the policy is.
struct RetentionPolicy : store::RetentionPolicy {
  ConfigLocation where;  // its table; {0, 0} for the built-in default
};

// [retention.default], [retention.tier.<tier>], [retention.vm."<vm>"]. A VM's policy
// is the first of these that exists, as a whole (keys are not merged).
struct RetentionConfig {
  RetentionPolicy defaults;  // built in: keep everything
  std::map<std::string, RetentionPolicy, std::less<>> tier;
  std::map<std::string, RetentionPolicy, std::less<>> vm;

  const RetentionPolicy& For(std::string_view vm_name, std::string_view tier_name) const;
};

// A program and its arguments, run without a shell; argv[0] is an absolute path.
struct HookCommand {
  std::vector<std::string> argv;
  ConfigLocation where;
};

struct HooksConfig {
  // The commands of each event (index: HookEvent), run in order.
  std::array<std::vector<HookCommand>, kHookEventCount> commands;
  Seconds timeout{5 * 60};  // a hook still running then is killed, and counts as failed

  const std::vector<HookCommand>& For(HookEvent e) const {
    return commands[static_cast<size_t>(e)];
  }
};

struct AlertsConfig {
  std::vector<std::string> to;  // empty: no alerts
  std::string from;             // "": the mailer's default
  std::string smtp_url;         // smtp://host[:port] or smtps://...; "": use sendmail
  std::string sendmail = "/usr/sbin/sendmail";
  bool on_failure = true;           // a backup, restore or hook failed
  bool on_behind = true;            // a VM's last backup is older than its interval...
  Seconds behind_tolerance{86400};  // ...plus this
  bool on_stuck = true;             // a job has run for longer than...
  Seconds stuck_after{6 * 3600};    // ...this

  bool enabled() const { return !to.empty(); }
};

struct LogConfig {
  enum class Target { kSyslog, kFile, kStderr };
  Target target = Target::kSyslog;
  std::string file;            // kFile: an absolute path
  std::string level = "info";  // error | warning | info | debug
};

// I/O scheduling class for backups (ionice(1)).
struct IoNice {
  enum class Class { kNone, kIdle, kBestEffort };  // kNone: leave it as it is
  Class io_class = Class::kNone;
  int level = 4;  // kBestEffort: 0 (highest) to 7
};

struct Config {
  std::string repository;          // "": not set (--repo, $VMVAULT_REPO or the default)
  Period period = Period::kMonth;  // how the mount groups backups, unless a source says
  std::optional<int> nice;         // -20 to 19; unset: leave it as it is
  IoNice ionice;
  ScheduleConfig schedule;
  // Always exactly hot, warm and cold: by default daily, weekly and every 30 days.
  std::map<std::string, TierConfig, std::less<>> tiers = {
      {"hot", {Seconds(86400)}}, {"warm", {Seconds(7 * 86400)}}, {"cold", {Seconds(30 * 86400)}}};
  std::vector<SourceConfig> sources;
  RetentionConfig retention;
  HooksConfig hooks;
  AlertsConfig alerts;
  LogConfig log;

  // REQUIRES: `tier` is hot, warm or cold.
  const TierConfig& Tier(std::string_view tier) const { return tiers.find(tier)->second; }
  // Whether the schedule backs up `source`: it is enabled, and it has one of the
  // schedule's tags (or the schedule has none).
  bool Scheduled(const SourceConfig& source) const;
};

// Everything found in a file: the config as far as it could be read, and the problems,
// in the order of their place in the file.
struct ConfigCheck {
  Config config;
  std::vector<ConfigError> errors;
  bool ok() const { return errors.empty(); }
};

// Reads TOML text. `source_name` names the file in messages.
ConfigCheck CheckConfig(std::string_view text, std::string_view source_name);

// The config, or InvalidArgument whose message is every problem as
// "source:line:column: message", one per line.
Result<Config> ParseConfig(std::string_view text, std::string_view source_name);

// The bytes of a configuration file: NotFound when it does not exist, InvalidArgument
// when it is not a regular file or larger than kMaxConfigBytes, else an I/O error.
inline constexpr size_t kMaxConfigBytes = 1 << 20;
Result<std::string> ReadConfigFile(const std::string& path);

// ReadConfigFile, then ParseConfig with the path as the source name.
Result<Config> LoadConfig(const std::string& path);

}  // namespace vmvault::ingest
