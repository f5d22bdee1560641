// vmvault config check: read the configuration file (vmvault.toml(5)) and report every
// problem in it with its line, or "PATH: OK" and a summary of what it declares.
// vmvault config test-alert: send a test message as [alerts] says, and say where it went.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "base/names.h"
#include "base/time_format.h"
#include "ingest/alerts.h"
#include "ingest/config.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

struct ConfigArgs {
  std::string config;
};

std::string Join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += sep;
    out += Printable(s);
  }
  return out;
}

std::string DescribeSource(const ingest::SourceConfig& s) {
  std::string what;
  switch (s.kind) {
    case ingest::SourceKind::kDomain:
      what = fmt::format("domain {} on {}", Join(s.names), Printable(s.connect));
      break;
    case ingest::SourceKind::kVirtualBox:
      what = fmt::format("virtualbox {} in {}", Join(s.names), Printable(s.path));
      break;
    case ingest::SourceKind::kFile:
    case ingest::SourceKind::kDevice:
    case ingest::SourceKind::kLvm:
      what =
          fmt::format("{} {}: {}", ingest::SourceKindName(s.kind), Printable(s.vm), Join(s.paths));
      break;
  }
  if (!s.exclude.empty()) what += fmt::format(" except {}", Join(s.exclude));
  what += fmt::format("; {}", s.tier);
  if (!s.tags.empty()) what += fmt::format("; tags {}", Join(s.tags));
  if (s.period) what += fmt::format("; by {}", PeriodName(*s.period));
  if (s.kind == ingest::SourceKind::kDomain && s.method != "backup") {
    what += fmt::format("; method {}", s.method);
  }
  if (!s.enabled) what += " (disabled)";
  return what;
}

void PrintSummary(const ingest::Config& c) {
  fmt::print("repository: {}\n", c.repository.empty()
                                     ? "not set (--repo, $VMVAULT_REPO or the default)"
                                     : Printable(c.repository));
  std::string schedule =
      c.schedule.window
          ? fmt::format("window {} ({}{})", c.schedule.window->ToString(),
                        ingest::FormatDuration(ingest::Seconds(c.schedule.window->Length() * 60)),
                        c.schedule.window->CrossesMidnight() ? ", across midnight" : "")
          : std::string("any time");
  schedule += fmt::format(", {} at a time", c.schedule.concurrency);
  if (!c.schedule.tags.empty()) schedule += fmt::format(", only tags {}", Join(c.schedule.tags));
  fmt::print("schedule:   {}\n", schedule);
  fmt::print("tiers:      hot every {}, warm every {}, cold every {}\n",
             ingest::FormatDuration(c.Tier("hot").interval),
             ingest::FormatDuration(c.Tier("warm").interval),
             ingest::FormatDuration(c.Tier("cold").interval));
  fmt::print("sources:    {}\n", c.sources.empty() ? "none" : std::to_string(c.sources.size()));
  for (const ingest::SourceConfig& s : c.sources) {
    fmt::print("  line {}: {}\n", s.where.line, DescribeSource(s));
  }
  std::string retention = "default: " + DescribePolicy(c.retention.defaults);
  for (const auto& [tier, p] : c.retention.tier) {
    retention += fmt::format("; {}: {}", tier, DescribePolicy(p));
  }
  if (!c.retention.vm.empty()) {
    retention += fmt::format("; {} VM polic{}", c.retention.vm.size(),
                             c.retention.vm.size() == 1 ? "y" : "ies");
  }
  fmt::print("retention:  {}\n", retention);
  std::vector<std::string> hooks;
  for (int i = 0; i < ingest::kHookEventCount; ++i) {
    const auto e = static_cast<ingest::HookEvent>(i);
    if (!c.hooks.For(e).empty()) hooks.emplace_back(ingest::HookEventName(e));
  }
  fmt::print("hooks:      {}\n", hooks.empty()
                                     ? "none"
                                     : fmt::format("{}; timeout {}", Join(hooks),
                                                   ingest::FormatDuration(c.hooks.timeout)));
  if (c.alerts.enabled()) {
    std::vector<std::string> on;
    if (c.alerts.on_failure) on.emplace_back("failure");
    if (c.alerts.on_behind) {
      on.push_back(
          fmt::format("behind by more than {}", ingest::FormatDuration(c.alerts.behind_tolerance)));
    }
    if (c.alerts.on_stuck) {
      on.push_back(fmt::format("stuck for {}", ingest::FormatDuration(c.alerts.stuck_after)));
    }
    fmt::print("alerts:     to {} via {}; on {}\n", Join(c.alerts.to),
               c.alerts.smtp_url.empty() ? c.alerts.sendmail : c.alerts.smtp_url,
               on.empty() ? "nothing" : Join(on));
  } else {
    fmt::print("alerts:     none\n");
  }
  std::string log = c.log.target == ingest::LogConfig::Target::kSyslog   ? "syslog"
                    : c.log.target == ingest::LogConfig::Target::kStderr ? "stderr"
                                                                         : c.log.file;
  fmt::print("log:        {}, {}\n", log, c.log.level);
  std::vector<std::string> priority;
  if (c.nice) priority.push_back(fmt::format("nice {}", *c.nice));
  if (c.ionice.io_class == ingest::IoNice::Class::kIdle) priority.emplace_back("ionice idle");
  if (c.ionice.io_class == ingest::IoNice::Class::kBestEffort) {
    priority.push_back(fmt::format("ionice best-effort:{}", c.ionice.level));
  }
  if (!priority.empty()) fmt::print("priority:   {}\n", Join(priority));
}

// What the file says that this host contradicts: programs that are not there, sources
// whose files are missing. Warnings only: the file may be written before the host is
// ready.
std::vector<ingest::ConfigError> HostWarnings(const ingest::Config& c, const std::string& path) {
  std::vector<ingest::ConfigError> w;
  auto warn = [&](ingest::ConfigLocation at, std::string msg) {
    w.push_back({at, "warning: " + std::move(msg)});
  };
  auto executable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (!c.repository.empty() && ::access((c.repository + "/vmvault.json").c_str(), F_OK) != 0) {
    warn({}, fmt::format("there is no repository at {} yet (vmvault init --repo {})",
                         Printable(c.repository), Printable(c.repository)));
  }
  for (const ingest::SourceConfig& s : c.sources) {
    for (const std::string& p : s.paths) {
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0) {
        warn(s.where, fmt::format("{} source: {} does not exist", ingest::SourceKindName(s.kind),
                                  Printable(p)));
      } else if (s.kind == ingest::SourceKind::kFile && !S_ISREG(st.st_mode)) {
        warn(s.where, fmt::format("file source: {} is not a regular file", Printable(p)));
      } else if (s.kind != ingest::SourceKind::kFile && !S_ISBLK(st.st_mode)) {
        warn(s.where, fmt::format("{} source: {} is not a block device",
                                  ingest::SourceKindName(s.kind), Printable(p)));
      }
    }
    if (s.kind == ingest::SourceKind::kVirtualBox && !s.path.empty() &&
        ::access(s.path.c_str(), F_OK) != 0) {
      warn(s.where, fmt::format("virtualbox source: {} does not exist", Printable(s.path)));
    }
  }
  for (int i = 0; i < ingest::kHookEventCount; ++i) {
    const auto e = static_cast<ingest::HookEvent>(i);
    for (const ingest::HookCommand& h : c.hooks.For(e)) {
      if (!executable(h.argv.front())) {
        warn(h.where, fmt::format("hooks.{}: {} is not an executable file",
                                  ingest::HookEventName(e), Printable(h.argv.front())));
      }
    }
  }
  if (c.alerts.enabled() && c.alerts.smtp_url.empty() && !executable(c.alerts.sendmail)) {
    warn({}, fmt::format("alerts: {} is not an executable file (install a mail transfer agent, "
                         "or set smtp-url)",
                         Printable(c.alerts.sendmail)));
  }
  // smtp://user:password@host in a file others can read.
  const std::string& url = c.alerts.smtp_url;
  const size_t at = url.rfind('@');
  if (at != std::string::npos && url.find(':', url.find("://") + 3) < at) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
      warn({}, fmt::format("alerts.smtp-url holds a password, and every user can read {} "
                           "(chmod 600 it)",
                           path));
    }
  }
  if (c.log.target == ingest::LogConfig::Target::kFile) {
    const std::string dir = c.log.file.substr(0, c.log.file.rfind('/') + 1);
    if (::access(dir.c_str(), F_OK) != 0) {
      warn({}, fmt::format("log: the directory {} does not exist", Printable(dir)));
    }
  }
  return w;
}

// The text of the configuration file, or NotFound saying where vmvault looked and why.
Result<std::string> ReadConfigText(const ingest::ConfigPath& where) {
  auto text = ingest::ReadConfigFile(where.path);
  if (!text.ok()) {
    if (!text.status().IsNotFound()) return text.status();
    const char* how = where.origin == ingest::ConfigPath::Origin::kFlag ? "given with --config"
                      : where.origin == ingest::ConfigPath::Origin::kEnvironment
                          ? "from $VMVAULT_CONFIG"
                          : "the default: give "
                            "--config PATH or set "
                            "VMVAULT_CONFIG";
    return Status::NotFound(
        fmt::format("no configuration file at {} ({})", Printable(where.path), how));
  }
  return text;
}

Status RunCheck(const GlobalOptions& global, const ConfigArgs& a) {
  const ingest::ConfigPath where = ingest::ResolveConfigPath(a.config);
  VV_ASSIGN_OR_RETURN(const std::string text, ReadConfigText(where));
  const ingest::ConfigCheck check = ingest::CheckConfig(text, where.path);
  if (!check.ok()) {
    for (const ingest::ConfigError& e : check.errors) {
      fmt::print(stderr, "{}\n", e.ToString(where.path));
    }
    const size_t n = check.errors.size();
    return Status::InvalidArgument(fmt::format("{}: {} error{}", where.path, n, n == 1 ? "" : "s"));
  }
  if (!global.quiet) {
    for (const ingest::ConfigError& w : HostWarnings(check.config, where.path)) {
      fmt::print(stderr, "{}\n", w.ToString(where.path));
    }
    fmt::print("{}: OK\n", Printable(where.path));
    PrintSummary(check.config);
  }
  return Status::OK();
}

Status RunTestAlert(const GlobalOptions& global, const ConfigArgs& a) {
  const ingest::ConfigPath where = ingest::ResolveConfigPath(a.config);
  VV_ASSIGN_OR_RETURN(const std::string text, ReadConfigText(where));
  auto config = ingest::ParseConfig(text, where.path);
  if (!config.ok()) {
    return Status::InvalidArgument(fmt::format("{}\n(vmvault config check --config {} lists them)",
                                               config.status().message(), where.path));
  }
  const ingest::AlertsConfig& alerts = config->alerts;
  if (!alerts.enabled()) {
    return Status::InvalidArgument(fmt::format(
        "{} sends no alerts: add an [alerts] table with to = [\"you@example.com\"]",
        Printable(where.path)));
  }
  const std::string host = HostName();
  ingest::Alert alert;
  alert.kind = ingest::AlertKind::kTest;
  alert.subject = fmt::format("test message from {}", host.empty() ? "vmvault" : host);
  alert.body = fmt::format(
      "This is a test of vmvault's alerts, sent by `vmvault config test-alert` on {} at {}.\n"
      "Configuration: {}\nTo: {}\nThrough: {}\n",
      host.empty() ? "this host" : host, FormatIsoTime(SystemClock::Default().NowMicros()),
      where.path, Join(alerts.to), ingest::AlertTransport(alerts));
  VV_RETURN_IF_ERROR(ingest::SendAlert(alerts, alert));
  if (!global.quiet) {
    const bool mailer_chooses = alerts.smtp_url.empty() && alerts.from.empty();
    fmt::print("sent a test message from {} to {} through {}\n",
               mailer_chooses ? std::string("sendmail's default sender")
                              : Printable(ingest::AlertSender(alerts)),
               Join(alerts.to), Printable(ingest::AlertTransport(alerts)));
  }
  return Status::OK();
}

}  // namespace

Command ConfigCommand() {
  return {"config", "Check the configuration file (see vmvault.toml(5)), or send a test alert",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<ConfigArgs>();
            app.require_subcommand(1);
            CLI::App* check = app.add_subcommand(
                "check",
                "Validate the configuration file: print a summary, or every problem with its "
                "line; exit status 5 when there are problems");
            AddConfigOption(*check, &a->config);
            check->fallthrough();  // --repo, -q and -v of `config` work after `check` too
            CLI::App* test_alert = app.add_subcommand(
                "test-alert",
                "Send a test message to the recipients of [alerts], through its smtp-url or "
                "sendmail, and say where it went");
            AddConfigOption(*test_alert, &a->config);
            test_alert->fallthrough();
            return [&global, a, check, test_alert]() -> Status {
              if (check->parsed()) return RunCheck(global, *a);
              if (test_alert->parsed()) return RunTestAlert(global, *a);
              return Status::InvalidArgument(
                  "usage: vmvault config check|test-alert [--config PATH]");
            };
          }};
}

}  // namespace vmvault::tools
