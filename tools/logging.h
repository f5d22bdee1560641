// Where vmvault's log lines go: spdlog's default logger "vmvault", set up once when a
// command starts and again when a command has read the configuration file's [log]
// (vmvault.toml(5)).
//
// Sinks:
//   - stderr, always: debugging detail with -v; only warnings and errors with -q or when
//     stderr is not a terminal (so cron mail holds nothing on success); else also
//     information. With [log] target = "stderr" it takes the configured level instead.
//   - the log target, when one is chosen (--log-file, --syslog, else [log] of a loaded
//     configuration; none otherwise): a file appended to, each line with the time and
//     the process id, or syslog (ident "vmvault", with the pid, facility daemon), at
//     --log-level, else [log] level, else info (debug with -v).
//
// spdlog is used everywhere; this is the one place that makes sinks. Not thread-safe:
// call it before starting threads.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "ingest/config.h"
#include "tools/cli.h"

namespace vmvault::tools {

// The log file's line: "2026-11-22T10:15:03+00:00 vmvault[1234] info: message".
inline constexpr std::string_view kLogFilePattern = "%Y-%m-%dT%H:%M:%S%z vmvault[%P] %l: %v";

// Sets up the default logger from the command line (global.log) over `config` (may be
// null: no configuration file was read). IOError naming the file when the log file
// cannot be opened; the logger is then left as it was.
Status ConfigureLogging(const GlobalOptions& global, const ingest::LogConfig* config);

}  // namespace vmvault::tools
