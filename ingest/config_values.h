// The small value syntaxes of the configuration file (vmvault.toml(5)), as pure
// functions the config parser and the scheduler share: durations ("90s", "5m", "1h30m",
// "2w"), the backup window ("22:00-06:00", which may cross midnight), name globs, hook
// commands with {{Variables}}, the "did you mean" suggestion for misspelt keys, and where
// the configuration file is (--config, else $VMVAULT_CONFIG, else
// /etc/vmvault/config.toml).
//
// Everything here is a value type or a pure function: no I/O except ResolveConfigPath's
// one-argument overload, which reads the environment. All of it is thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/status.h"

namespace vmvault::ingest {

using Seconds = std::chrono::seconds;

// The longest duration accepted anywhere: 100 years.
inline constexpr Seconds kMaxDuration{int64_t{100} * 365 * 86400};

// One or more groups of a whole number and a unit, units in decreasing order, each at
// most once, no spaces: "90s", "5m", "6h", "1d", "2w", "1h30m", "1d12h". Units: s, m
// (minutes), h, d, w. "0s" is zero. InvalidArgument with a hint otherwise (for example
// for "1mo": there is no month unit, use 30d).
Result<Seconds> ParseDuration(std::string_view text);
// The inverse, shortest form: 90 s -> "1m30s", 86400 s -> "1d", 0 -> "0s".
std::string FormatDuration(Seconds d);

inline constexpr int kMinutesPerDay = 24 * 60;

// A daily time window in local time, start inclusive, end exclusive. When the end is
// not after the start, the window crosses midnight: "22:00-06:00" holds 22:00 to 05:59.
// "00:00-24:00" is the whole day. A value type.
struct BackupWindow {
  int start = 0;  // minute of the day, [0, 1440)
  int end = 0;    // minute of the day, [0, 1440]; 1440 is "24:00"; never equal to start

  // "HH:MM-HH:MM" with 24-hour times (the hour may have one digit; "24:00" only as the
  // end). InvalidArgument when malformed or when start equals end.
  static Result<BackupWindow> Parse(std::string_view text);

  bool CrossesMidnight() const { return end <= start; }
  // True when `minute_of_day` (taken modulo 1440) is inside the window.
  bool Contains(int minute_of_day) const;
  // Minutes from `minute_of_day` until the window closes; 0 when outside it.
  int MinutesLeft(int minute_of_day) const;
  // The window's length in minutes, 1 to 1440.
  int Length() const;
  // "22:00-06:00".
  std::string ToString() const;

  bool operator==(const BackupWindow&) const = default;
};

// Name globs, as fnmatch(3) without flags: '*', '?', "[abc]", "[a-z]", "[!abc]", and
// '\' quoting the next character.
bool IsGlob(std::string_view pattern);
// OK when `pattern` is a well-formed glob: every '[' closed, no empty or reversed range
// ("[z-a]"), no trailing '\'. InvalidArgument describing the fault otherwise.
Status ValidateGlob(std::string_view pattern);
// Whether `name` matches `pattern` (REQUIRES: ValidateGlob(pattern) is OK).
bool GlobMatch(std::string_view pattern, std::string_view name);

// The hooks: programs run, without a shell, before and after each step.
enum class HookEvent {
  kPreSchedule,
  kPostSchedule,
  kPreBackup,
  kPostBackup,
  kPreSnapshot,
  kPostSnapshot,
  kPreRestore,
  kPostRestore,
};
inline constexpr int kHookEventCount = 8;
static_assert(static_cast<int>(HookEvent::kPostRestore) + 1 == kHookEventCount);
// The config key: "pre-schedule", "post-backup", ...
std::string_view HookEventName(HookEvent e);
// The variables a hook of this event may use, in the order the man page lists them:
// Repository everywhere; VM and Tier in backup, snapshot and restore hooks; Backup in
// post-backup and the restore hooks; Method in snapshot hooks; Target in restore hooks;
// Status in every post- hook.
const std::vector<std::string_view>& HookVariables(HookEvent e);
// Every variable some hook may use.
const std::vector<std::string_view>& AllHookVariables();

// The problems of one hook argument: "{{" without "}}", an empty or unknown
// "{{Name}}", or one this event does not provide. One message per problem, naming the
// closest known variable when there is one; empty when the argument is fine.
std::vector<std::string> CheckHookArgument(std::string_view arg, HookEvent e);
// `argv` with every {{Name}} replaced by values.at(Name) ("" when `values` lacks it).
// The arguments stay separate: a value with spaces stays one argument.
std::vector<std::string> ExpandHookArgv(const std::vector<std::string>& argv,
                                        const std::map<std::string, std::string>& values);

// The candidate closest to `word` by edit distance (an adjacent swap counts as one
// edit, and '_' matches '-'), if it is close enough to be a likely typo; "" otherwise.
std::string ClosestMatch(std::string_view word, const std::vector<std::string_view>& candidates);

// Checks of single values.
// A tag: 1 to 64 letters, digits, '-', '_' or '.'.
bool IsValidTag(std::string_view tag);
// "someone@example.com": text on both sides of one '@', and no spaces, control
// characters or characters that would break a mail header (<>,;").
bool IsValidEmailAddress(std::string_view address);
// "" when `url` is smtp://[user[:password]@]host[:port][/] or smtps://...; else what is
// wrong with it ("it must start with smtp:// or smtps://").
std::string SmtpUrlProblem(std::string_view url);
// An LVM snapshot size: a percentage of the origin volume, "1%" to "100%", or a size
// with a unit lvcreate(8) takes: "512M", "4G", "1T" (k, m, g, t too).
bool IsValidSnapshotSize(std::string_view size);
// Whether `uri` looks like a libvirt URI: "driver[+transport]://[host]/path", such as
// "qemu:///system" or "qemu+ssh://root@host/system".
bool IsValidLibvirtUri(std::string_view uri);

inline constexpr char kDefaultConfigPath[] = "/etc/vmvault/config.toml";

struct ConfigPath {
  enum class Origin { kFlag, kEnvironment, kDefault };
  std::string path;
  Origin origin = Origin::kDefault;
};
// --config when given (non-empty), else `env` ($VMVAULT_CONFIG) when non-null and
// non-empty, else kDefaultConfigPath.
ConfigPath ResolveConfigPath(std::string_view flag, const char* env);
// The same with getenv("VMVAULT_CONFIG").
ConfigPath ResolveConfigPath(std::string_view flag);

}  // namespace vmvault::ingest
