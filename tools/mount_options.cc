#include "tools/mount_options.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>

#include <charconv>
#include <string_view>

#include "fs/tree.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

// mount(8)'s own options (and the ones it adds, like rw for `defaults`), which mean
// nothing more to a read-only FUSE mount: accepted and dropped. `exec`, `suid` and
// `dev` are the FUSE defaults or moot (the mount has no programs marked setuid and no
// device nodes).
constexpr std::string_view kIgnored[] = {
    "defaults", "ro",    "auto", "noauto", "user",  "nouser", "users",    "owner",
    "group",    "_netdev", "nofail", "exec", "suid", "dev",   "async",  "atime",
    "relatime", "strictatime", "loud", "silent"};
// Restricting kernel flags, handed to FUSE as they are.
constexpr std::string_view kKernelFlags[] = {"nosuid", "nodev", "noexec", "noatime",
                                             "nodiratime"};
constexpr std::string_view kKnownList =
    "allow_other, uid=, gid=, cache_size=, layout=, views=, nosuid, nodev, noexec, noatime, "
    "nodiratime, and mount(8)'s own (defaults, ro, noauto, user, _netdev, nofail, x-*, "
    "comment=...)";

bool In(std::string_view name, const auto& list) {
  for (std::string_view s : list) {
    if (s == name) return true;
  }
  return false;
}

// A user or group id: a number, or a name in the databases.
Result<std::string> Id(std::string_view option, std::string_view value, bool user) {
  unsigned long id = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
  if (!value.empty() && ec == std::errc() && p == value.data() + value.size() &&
      id < 0xffffffffu) {
    return std::to_string(id);
  }
  const std::string name(value);
  if (user) {
    if (const passwd* pw = name.empty() ? nullptr : ::getpwnam(name.c_str())) {
      return std::to_string(pw->pw_uid);
    }
  } else if (const group* gr = name.empty() ? nullptr : ::getgrnam(name.c_str())) {
    return std::to_string(gr->gr_gid);
  }
  return Status::InvalidArgument(fmt::format("option {}={}: no such {}", option, value,
                                             user ? "user" : "group"));
}

}  // namespace

Result<HelperCall> ParseHelperArgs(const std::vector<std::string>& args) {
  HelperCall call;
  std::vector<std::string> positional;
  std::vector<std::string> option_strings;
  bool sloppy = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-') {
      positional.push_back(a);
      continue;
    }
    if (a == "-o" || a == "-t" || a == "-N") {
      if (i + 1 == args.size()) {
        return Status::InvalidArgument(fmt::format("option {} needs a value", a));
      }
      const std::string& value = args[++i];
      if (a == "-o") option_strings.push_back(value);
      if (a == "-N") {
        return Status::InvalidArgument("-N (mount in another namespace) is not supported");
      }
      continue;  // -t vmvault[.subtype]: we know what we are
    }
    if (a.rfind("-o", 0) == 0) {  // -oallow_other
      option_strings.push_back(a.substr(2));
      continue;
    }
    for (char c : std::string_view(a).substr(1)) {
      switch (c) {
        case 's': sloppy = true; break;
        case 'f': call.fake = true; break;
        case 'n': break;  // no /etc/mtab to write
        case 'v': call.verbose = true; break;
        case 'r': option_strings.emplace_back("ro"); break;
        case 'w': option_strings.emplace_back("rw"); break;
        default:
          return Status::InvalidArgument(
              fmt::format("unknown flag -{} (mount.vmvault takes -s, -f, -n, -v and -o)", c));
      }
    }
  }
  if (positional.size() != 2) {
    return Status::InvalidArgument(
        "usage: mount.vmvault REPOSITORY MOUNTPOINT [-sfnv] [-o OPTIONS]");
  }
  call.vmvault_args = {"mount", "--repo", positional[0]};
  if (!call.verbose) call.vmvault_args.emplace_back("--quiet");

  bool rw = false;
  std::vector<std::string> fuse;
  for (const std::string& list : option_strings) {
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      const std::string_view o = std::string_view(list).substr(start, comma - start);
      start = comma + 1;
      if (o.empty()) continue;
      const size_t eq = o.find('=');
      const std::string_view name = o.substr(0, eq);
      const std::string_view value = eq == std::string_view::npos ? "" : o.substr(eq + 1);
      if (eq != std::string_view::npos && value.empty()) {
        return Status::InvalidArgument(fmt::format("option {} has no value", o));
      }
      if (eq == std::string_view::npos && In(name, kIgnored)) continue;
      if (name.rfind("x-", 0) == 0 || name == "comment") continue;  // for systemd, fstab
      if (eq == std::string_view::npos && In(name, kKernelFlags)) {
        fuse.emplace_back(name);
      } else if (o == "rw") {
        rw = true;
      } else if (o == "allow_other") {
        call.vmvault_args.emplace_back("--allow-other");
      } else if (name == "uid" || name == "gid") {
        VV_ASSIGN_OR_RETURN(std::string id, Id(name, value, name == "uid"));
        call.vmvault_args.insert(call.vmvault_args.end(), {"--" + std::string(name), id});
      } else if (name == "cache_size" && !value.empty()) {
        if (Result<uint64_t> bytes = ParseSize(value); !bytes.ok()) {
          return Status::InvalidArgument(
              fmt::format("option {}: {}", o, bytes.status().message()));
        }
        call.vmvault_args.insert(call.vmvault_args.end(), {"--cache-size", std::string(value)});
      } else if (name == "layout" && !value.empty()) {
        if (Result<fs::Layout> layout = fs::ParseLayout(value); !layout.ok()) {
          return Status::InvalidArgument(
              fmt::format("option {}: {}", o, layout.status().message()));
        }
        call.vmvault_args.insert(call.vmvault_args.end(), {"--layout", std::string(value)});
      } else if (name == "views" && !value.empty()) {  // raw:qcow2, as commas split options
        if (Result<fs::ViewSet> views = fs::ViewSet::Parse(value); !views.ok()) {
          return Status::InvalidArgument(fmt::format("option {}: {}", o, views.status().message()));
        }
        call.vmvault_args.insert(call.vmvault_args.end(), {"--views", std::string(value)});
      } else if (sloppy) {
        call.notes.push_back(fmt::format("ignoring unknown option '{}' (-s)", o));
      } else {
        return Status::InvalidArgument(
            fmt::format("unknown option '{}' (mount.vmvault takes {})", o, kKnownList));
      }
    }
  }
  if (rw) {
    // mount(8) passes rw for `defaults` and for lines without ro.
    call.notes.emplace_back(
        "a vmvault mount is always read-only: mounting read-only despite 'rw' (write 'ro' "
        "in the options to say so)");
  }
  // The mountpoint before -o: `vmvault mount -o` takes several values.
  call.vmvault_args.push_back(positional[1]);
  for (const std::string& f : fuse) call.vmvault_args.insert(call.vmvault_args.end(), {"-o", f});
  return call;
}

}  // namespace vmvault::tools
