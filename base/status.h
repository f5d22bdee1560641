// Status: the outcome of an operation that can fail, in the style of leveldb's
// Status. vmvault does not use exceptions across module boundaries: every fallible
// call returns a Status or a Result<T> (base/result.h). Code that calls throwing
// libraries (Boost.Process, std::filesystem, nlohmann::json) catches in its adapter.
//
// A Status is a small value type; copying it is cheap. It is thread-compatible.
// The only place an errno leaves vmvault is the FUSE adapter (fs/fuse_ops.cc), which
// maps a Status to its errno with ToErrno().
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace vmvault {

enum class StatusCode {
  kOk = 0,
  kNotFound,            // a VM, backup, chunk or file that does not exist
  kCorruption,          // stored bytes fail their checksum or do not decode
  kInvalidArgument,     // bad user input: a name, a flag, a file that is not an image
  kIOError,             // an operating-system error
  kBusy,                // another writer holds the repository
  kReadOnly,            // a write to something read-only
  kUnsupported,         // a format or feature vmvault does not handle
  kAlreadyExists,
  kFailedPrecondition,  // e.g. the repository's format version is not this build's
  kNoSpace,             // the filesystem is full
  kExternal,            // an external program (qemu-img, qemu-nbd) failed
  kNotNow,              // not allowed at this time: outside the backup window
  kBehind,              // late: a VM behind its schedule, a job running for too long
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) {
    return {StatusCode::kInvalidArgument, std::move(msg)};
  }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status Busy(std::string msg) { return {StatusCode::kBusy, std::move(msg)}; }
  static Status ReadOnly(std::string msg) { return {StatusCode::kReadOnly, std::move(msg)}; }
  static Status Unsupported(std::string msg) { return {StatusCode::kUnsupported, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) {
    return {StatusCode::kAlreadyExists, std::move(msg)};
  }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status NoSpace(std::string msg) { return {StatusCode::kNoSpace, std::move(msg)}; }
  static Status External(std::string msg) { return {StatusCode::kExternal, std::move(msg)}; }
  static Status NotNow(std::string msg) { return {StatusCode::kNotNow, std::move(msg)}; }
  static Status Behind(std::string msg) { return {StatusCode::kBehind, std::move(msg)}; }

  // An error from errno `err`, described as "context: strerror(err)". ENOENT maps to
  // kNotFound, ENOSPC/EDQUOT to kNoSpace, EROFS/EACCES/EPERM on writes to kReadOnly
  // only when the caller says so; everything else is kIOError.
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }

  // "Corruption: chunk 0123... fails its checksum".
  std::string ToString() const;

  // A copy whose message is "context: message". OK stays OK.
  Status WithContext(std::string_view context) const;

  // The errno the FUSE adapter replies with.
  int ToErrno() const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::string_view StatusCodeName(StatusCode code);

}  // namespace vmvault

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define VV_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::vmvault::Status vv_status_ = (expr);        \
    if (!vv_status_.ok()) return vv_status_;      \
  } while (0)
