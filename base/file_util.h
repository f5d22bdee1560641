// Small file helpers with Status errors. WriteFileAtomic makes a file appear whole or
// not at all: it writes a temporary, fsyncs it, renames it over the target and fsyncs
// the directory.
#pragma once

#include <sys/types.h>

#include <limits>
#include <string>

#include "base/result.h"

namespace vmvault {

Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode);
Result<std::string> ReadFile(const std::string& path);
// Reads an open descriptor to its end (closing it is the caller's); `what` names it in
// errors. InvalidArgument once it holds more than `max_bytes`.
Result<std::string> ReadToEnd(int fd, const std::string& what,
                              size_t max_bytes = std::numeric_limits<size_t>::max());
Status FsyncDirectory(const std::string& dir);

}  // namespace vmvault
