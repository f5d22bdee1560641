#include "base/names.h"

#include <unistd.h>

#include <cstdint>

#include <fmt/format.h>

namespace vmvault {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
  else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
  else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<uint8_t>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  // Reject overlong forms, surrogates and out-of-range code points.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  if (cp > 0x10ffff) return 0;
  // C1 control characters.
  if (cp >= 0x80 && cp < 0xa0) return 0;
  return n;
}

bool IsControl(uint8_t c) { return c < 0x20 || c == 0x7f; }

}  // namespace

Status ValidateName(std::string_view name, std::string_view what) {
  if (name.empty()) return Status::InvalidArgument(fmt::format("{} is empty", what));
  if (name.size() > kMaxNameLength) {
    return Status::InvalidArgument(fmt::format("{} '{}' is longer than {} bytes", what,
                                               Printable(name.substr(0, 32)), kMaxNameLength));
  }
  if (name == "." || name == "..") {
    return Status::InvalidArgument(fmt::format("{} may not be '{}'", what, name));
  }
  if (name[0] == '.' || name[0] == '-') {
    return Status::InvalidArgument(
        fmt::format("{} '{}' may not start with '{}'", what, Printable(name), name[0]));
  }
  for (size_t i = 0; i < name.size();) {
    const auto c = static_cast<uint8_t>(name[i]);
    if (c == '/') {
      return Status::InvalidArgument(
          fmt::format("{} '{}' may not contain '/'", what, Printable(name)));
    }
    if (IsControl(c)) {
      return Status::InvalidArgument(fmt::format(
          "{} '{}' may not contain control characters such as newlines", what, Printable(name)));
    }
    const size_t n = Utf8SequenceLength(name, i);
    if (n == 0) {
      return Status::InvalidArgument(
          fmt::format("{} '{}' is not valid UTF-8", what, Printable(name)));
    }
    i += n;
  }
  return Status::OK();
}

std::string SanitizeName(std::string_view name, size_t max_length) {
  std::string out;
  for (size_t i = 0; i < name.size() && out.size() < max_length;) {
    const auto c = static_cast<uint8_t>(name[i]);
    const size_t n = IsControl(c) || c == '/' ? 0 : Utf8SequenceLength(name, i);
    if (n == 0 || out.size() + n > max_length) {
      out += '_';
      i += 1;
    } else {
      out.append(name.substr(i, n));
      i += n;
    }
  }
  if (out.empty()) return "unnamed";
  if (out[0] == '.' || out[0] == '-') out[0] = '_';
  return out;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    const size_t n = IsControl(c) ? 0 : Utf8SequenceLength(s, i);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", c);
      i += 1;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

}  // namespace vmvault
