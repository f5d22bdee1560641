// The parts of ingest/config.h that need no TOML: reading the file, messages, and the
// lookups the scheduler and prune use. CheckConfig itself is in config_toml.cc.
#include "ingest/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "base/file_util.h"

namespace vmvault::ingest {

std::string ConfigError::ToString(std::string_view source_name) const {
  if (where.line == 0) return fmt::format("{}: {}", source_name, message);
  return fmt::format("{}:{}:{}: {}", source_name, where.line, where.column, message);
}

std::string_view SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kDomain:
      return "domain";
    case SourceKind::kFile:
      return "file";
    case SourceKind::kVirtualBox:
      return "virtualbox";
    case SourceKind::kDevice:
      return "device";
    case SourceKind::kLvm:
      return "lvm";
  }
  return "?";
}

const RetentionPolicy& RetentionConfig::For(std::string_view vm_name,
                                            std::string_view tier_name) const {
  if (auto it = vm.find(vm_name); it != vm.end()) return it->second;
  if (auto it = tier.find(tier_name); it != tier.end()) return it->second;
  return defaults;
}

bool Config::Scheduled(const SourceConfig& source) const {
  if (!source.enabled) return false;
  if (schedule.tags.empty()) return true;
  return std::any_of(source.tags.begin(), source.tags.end(), [&](const std::string& tag) {
    return std::find(schedule.tags.begin(), schedule.tags.end(), tag) != schedule.tags.end();
  });
}

Result<Config> ParseConfig(std::string_view text, std::string_view source_name) {
  ConfigCheck check = CheckConfig(text, source_name);
  if (check.ok()) return std::move(check.config);
  std::string msg;
  for (const ConfigError& e : check.errors) {
    if (!msg.empty()) msg += '\n';
    msg += e.ToString(source_name);
  }
  return Status::InvalidArgument(std::move(msg));
}

Result<std::string> ReadConfigFile(const std::string& path) {
  // O_NONBLOCK: a FIFO must not hang the open; it is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Status::FromErrno(errno, "configuration file " + path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "configuration file " + path);
  }
  Status bad;
  if (S_ISDIR(st.st_mode)) {
    bad = Status::InvalidArgument(fmt::format("configuration file {} is a directory", path));
  } else if (!S_ISREG(st.st_mode)) {
    bad = Status::InvalidArgument(fmt::format("configuration file {} is not a regular file", path));
  } else if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    bad = Status::InvalidArgument(
        fmt::format("configuration file {} is larger than {} bytes", path, kMaxConfigBytes));
  }
  if (!bad.ok()) {
    ::close(fd);
    return bad;
  }
  Result<std::string> text = ReadToEnd(fd, "configuration file " + path, kMaxConfigBytes);
  ::close(fd);
  return text;
}

Result<Config> LoadConfig(const std::string& path) {
  VV_ASSIGN_OR_RETURN(const std::string text, ReadConfigFile(path));
  return ParseConfig(text, path);
}

}  // namespace vmvault::ingest
