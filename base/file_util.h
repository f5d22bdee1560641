// Small file helpers with Status errors. WriteFileAtomic makes a file appear whole or
// not at all: it writes a temporary, fsyncs it, renames it over the target and fsyncs
// the directory.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/result.h"

namespace vmvault {

Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode);
Result<std::string> ReadFile(const std::string& path);
Status FsyncDirectory(const std::string& dir);

}  // namespace vmvault
