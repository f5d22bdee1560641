#include "tools/logging.h"

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <syslog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "base/names.h"
#include "base/progress.h"

namespace vmvault::tools {
namespace {

spdlog::level::level_enum LevelOf(std::string_view name) {
  if (name == "error") return spdlog::level::err;
  if (name == "warning") return spdlog::level::warn;
  if (name == "debug") return spdlog::level::debug;
  return spdlog::level::info;
}

}  // namespace

Status ConfigureLogging(const GlobalOptions& global, const ingest::LogConfig* config) {
  using Target = ingest::LogConfig::Target;
  std::optional<Target> target;
  std::string file;
  if (!global.log.file.empty()) {
    target = Target::kFile;
    file = global.log.file;
  } else if (global.log.syslog) {
    target = Target::kSyslog;
  } else if (config != nullptr) {
    target = config->target;
    file = config->file;
  }
  spdlog::level::level_enum level = spdlog::level::info;
  if (!global.log.level.empty()) {
    level = LevelOf(global.log.level);
  } else if (config != nullptr) {
    level = LevelOf(config->level);
  }
  if (global.verbose) level = spdlog::level::debug;

  std::vector<spdlog::sink_ptr> sinks;
  auto to_stderr = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  to_stderr->set_pattern("%^%l%$: %v");
  if (target == Target::kStderr) {
    to_stderr->set_level(level);
  } else {
    to_stderr->set_level(global.verbose                                  ? spdlog::level::debug
                         : global.quiet || !Progress::StderrIsTerminal() ? spdlog::level::warn
                                                                         : spdlog::level::info);
  }
  sinks.push_back(to_stderr);
  if (target == Target::kFile) {
    try {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
      sink->set_pattern(std::string(kLogFilePattern));
      sink->set_level(level);
      sinks.push_back(std::move(sink));
    } catch (const spdlog::spdlog_ex& e) {
      return Status::IOError(
          fmt::format("cannot open the log file {}: {}", Printable(file), e.what()));
    }
  } else if (target == Target::kSyslog) {
    auto sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("vmvault", LOG_PID, LOG_DAEMON,
                                                                /*enable_formatting=*/true);
    sink->set_pattern("%v");
    sink->set_level(level);
    sinks.push_back(std::move(sink));
  }

  auto logger = std::make_shared<spdlog::logger>("vmvault", sinks.begin(), sinks.end());
  spdlog::level::level_enum lowest = spdlog::level::off;
  for (const auto& s : sinks) lowest = std::min(lowest, s->level());
  logger->set_level(lowest);
  logger->flush_on(spdlog::level::trace);  // each line reaches the file as it is written
  spdlog::drop("vmvault");
  spdlog::set_default_logger(std::move(logger));
  return Status::OK();
}

}  // namespace vmvault::tools
