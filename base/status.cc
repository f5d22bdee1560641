#include "base/status.h"

#include <cerrno>
#include <cstring>

namespace vmvault {

Status::Status(StatusCode code, std::string message)
    : code_(code), message_(std::move(message)) {}

Status Status::FromErrno(int err, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFound(std::move(msg));
    case ENOSPC:
    case EDQUOT:
      return NoSpace(std::move(msg));
    case EROFS:
      return ReadOnly(std::move(msg));
    case EWOULDBLOCK:
      return Busy(std::move(msg));
    default:
      return IOError(std::move(msg));
  }
}

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kNotFound: return "Not found";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kInvalidArgument: return "Invalid argument";
    case StatusCode::kIOError: return "I/O error";
    case StatusCode::kBusy: return "Busy";
    case StatusCode::kReadOnly: return "Read-only";
    case StatusCode::kUnsupported: return "Unsupported";
    case StatusCode::kAlreadyExists: return "Already exists";
    case StatusCode::kFailedPrecondition: return "Failed precondition";
    case StatusCode::kNoSpace: return "No space";
    case StatusCode::kExternal: return "External program failed";
    case StatusCode::kNotNow: return "Not now";
    case StatusCode::kBehind: return "Behind schedule";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeName(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg));
}

int Status::ToErrno() const {
  switch (code_) {
    case StatusCode::kOk: return 0;
    case StatusCode::kNotFound: return ENOENT;
    case StatusCode::kCorruption: return EIO;
    case StatusCode::kInvalidArgument: return EINVAL;
    case StatusCode::kIOError: return EIO;
    case StatusCode::kBusy: return EBUSY;
    case StatusCode::kReadOnly: return EROFS;
    case StatusCode::kUnsupported: return EOPNOTSUPP;
    case StatusCode::kAlreadyExists: return EEXIST;
    case StatusCode::kFailedPrecondition: return EIO;
    case StatusCode::kNoSpace: return ENOSPC;
    case StatusCode::kExternal: return EIO;
    case StatusCode::kNotNow: return EAGAIN;
    case StatusCode::kBehind: return EAGAIN;
  }
  return EIO;
}

}  // namespace vmvault
