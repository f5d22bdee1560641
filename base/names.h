// Names that become paths in the mount: VM names and disk names. A name a user gives
// is validated and rejected with a clear message; a name vmvault derives (from a file
// name) is sanitized instead. Both keep the mount from ever naming anything outside
// itself.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace vmvault {

inline constexpr size_t kMaxNameLength = 128;
// Disk names become file names with a view suffix (".raw", ".part12.qcow2"): keep
// them short enough that name plus suffix still fits in kMaxNameLength.
inline constexpr size_t kMaxDiskNameLength = 100;

// OK when `name` can be a path component in the mount: 1 to kMaxNameLength bytes of
// valid UTF-8, no '/', no NUL or other control character, not "." or "..", and no
// leading '.' or '-'. `what` names the thing in the error ("VM name").
Status ValidateName(std::string_view name, std::string_view what);

// Maps any string to a valid name: invalid bytes and control characters become '_',
// a leading '.' or '-' becomes '_', and the result is cut (at a character boundary) to
// `max_length` bytes. An empty input gives "unnamed".
// REQUIRES: 8 <= max_length <= kMaxNameLength.
std::string SanitizeName(std::string_view name, size_t max_length = kMaxNameLength);

// Printable form of an untrusted string for error messages: control characters and
// invalid UTF-8 as \xNN escapes.
std::string Printable(std::string_view s);

// This machine's name (gethostname(2)); "" when it cannot be had.
std::string HostName();

}  // namespace vmvault
