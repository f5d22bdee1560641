#include "ingest/priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace vmvault::ingest {
namespace {

// linux/ioprio.h, which glibc does not wrap.
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassShift = 13;
constexpr int kIoprioClassBe = 2;
constexpr int kIoprioClassIdle = 3;

pid_t ThreadId() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

}  // namespace

Status ApplyPriority(std::optional<int> nice, const IoNice& ionice) {
  if (nice) {
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(ThreadId()), *nice) != 0) {
      const int err = errno;
      return Status::IOError(fmt::format("cannot set nice {}: {}{}", *nice, std::strerror(err),
                                         err == EACCES || err == EPERM
                                             ? " (a lower nice value needs root)"
                                             : ""));
    }
  }
  if (ionice.io_class != IoNice::Class::kNone) {
    const int value = ionice.io_class == IoNice::Class::kIdle
                          ? kIoprioClassIdle << kIoprioClassShift
                          : (kIoprioClassBe << kIoprioClassShift) | ionice.level;
    if (::syscall(SYS_ioprio_set, kIoprioWhoProcess, ThreadId(), value) != 0) {
      return Status::IOError(fmt::format("cannot set the I/O priority: {}", std::strerror(errno)));
    }
  }
  return Status::OK();
}

int ThreadNice() {
  errno = 0;
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(ThreadId()));
}

std::string ThreadIoPriority() {
  const long v = ::syscall(SYS_ioprio_get, kIoprioWhoProcess, ThreadId());
  if (v < 0) return "unknown";
  const int cls = static_cast<int>(v >> kIoprioClassShift);
  const int level = static_cast<int>(v & ((1 << kIoprioClassShift) - 1));
  switch (cls) {
    case kIoprioClassIdle:
      return "idle";
    case kIoprioClassBe:
      return fmt::format("best-effort: prio {}", level);
    case 1:
      return fmt::format("realtime: prio {}", level);
    default:
      return fmt::format("none: prio {}", level);
  }
}

}  // namespace vmvault::ingest
