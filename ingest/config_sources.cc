// The [[source]] tables of the configuration file: each kind's keys, and the checks
// across sources (the same domain, machine folder or disk twice; one VM name from two
// sources). Part of the TOML parser with config_toml.cc.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "base/names.h"
#include "ingest/config_reader.h"

namespace vmvault::ingest::config_internal {
namespace {

const Names kKinds = {"domain", "file", "virtualbox", "device", "lvm"};
const Names kSourceCommonKeys = {"kind", "tier", "tags", "period", "enabled"};

const Names& KindKeys(SourceKind k) {
  static const Names kDomain = {"name", "exclude", "connect", "method"};
  static const Names kVirtualBox = {"path", "name", "exclude", "method"};
  static const Names kDisks = {"paths", "vm"};
  static const Names kLvm = {"paths", "vm", "snapshot-size"};
  switch (k) {
    case SourceKind::kDomain:
      return kDomain;
    case SourceKind::kVirtualBox:
      return kVirtualBox;
    case SourceKind::kLvm:
      return kLvm;
    case SourceKind::kFile:
    case SourceKind::kDevice:
      break;
  }
  return kDisks;
}

constexpr SourceKind kAllKinds[] = {SourceKind::kDomain, SourceKind::kFile, SourceKind::kVirtualBox,
                                    SourceKind::kDevice, SourceKind::kLvm};

// "a domain", "an lvm".
std::string WithArticle(std::string_view kind) {
  return fmt::format("{} {}", kind == "lvm" ? "an" : "a", kind);
}

std::string FileStem(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

class SourcesParser {
 public:
  SourcesParser(Reader& r, std::vector<SourceConfig>& sources) : r_(r), sources_(sources) {}

  void Run(const toml::node& n) {
    const toml::array* a = n.as_array();
    if (n.is_table()) {
      r_.Error(n,
               "source: write [[source]], with two brackets: each source is one element of "
               "an array of tables");
      return;
    }
    if (a == nullptr || !a->is_array_of_tables()) {
      r_.Error(n, fmt::format("source: expected [[source]] tables, not {}", TypeName(n.type())));
      return;
    }
    for (const toml::node& e : *a) ReadSource(*e.as_table());
    CheckDuplicateSources();
  }

 private:
  // Where a source's values are, for the checks across sources.
  struct SourcePlaces {
    std::vector<ConfigLocation> names;
    std::vector<ConfigLocation> paths;
    ConfigLocation path;
    ConfigLocation vm;
  };

  void ReadSource(const toml::table& t) {
    SourceConfig s;
    SourcePlaces places;
    s.where = At(t);
    bool kind_ok = false;
    if (const toml::node* kn = t.get("kind")) {
      if (auto k = r_.String(t, "kind", "source.kind")) {
        if (r_.OneOf(*kn, "source.kind", *k, kKinds, "kind")) {
          for (SourceKind kind : kAllKinds) {
            if (SourceKindName(kind) == *k) s.kind = kind;
          }
          kind_ok = true;
        }
      }
    } else {
      r_.Error(s.where,
               fmt::format("source: no kind: add kind = \"...\", one of {}", Join(kKinds)));
    }
    CheckSourceKeys(t, kind_ok ? &s.kind : nullptr);

    // Common keys.
    if (auto tier = r_.String(t, "tier", "source.tier")) {
      if (r_.OneOf(*t.get("tier"), "source.tier", *tier, kTiers, "tier")) s.tier = *tier;
    }
    if (auto tags = r_.Tags(t, "source.tags")) {
      for (auto& [tag, at] : *tags) s.tags.push_back(tag);
    }
    s.period = r_.PeriodValue(t, "period", "source.period");
    if (auto e = r_.Bool(t, "enabled", "source.enabled")) s.enabled = *e;
    if (!kind_ok) return;  // kind-specific keys cannot be checked

    const std::string_view kind = SourceKindName(s.kind);
    switch (s.kind) {
      case SourceKind::kDomain:
      case SourceKind::kVirtualBox:
        ReadNames(t, s, places);
        if (auto ex = r_.Strings(t, "exclude", "source.exclude")) {
          for (auto& [glob, at] : *ex) {
            const Status st = ValidateGlob(glob);
            if (!st.ok()) r_.Error(at, fmt::format("source.exclude: {}", st.message()));
            s.exclude.push_back(glob);
          }
        }
        ReadMethod(t, s);
        if (s.kind == SourceKind::kDomain) {
          if (t.get("name") == nullptr) {
            r_.Error(s.where,
                     "source: a domain source needs name = \"NAME\" (a domain name or a "
                     "glob such as \"web*\")");
          }
          if (auto uri = r_.String(t, "connect", "source.connect")) {
            if (!IsValidLibvirtUri(*uri)) {
              r_.Error(*t.get("connect"),
                       fmt::format("source.connect: '{}' is not a libvirt URI (such as "
                                   "qemu:///system or qemu+ssh://host/system)",
                                   Printable(*uri)));
            }
            s.connect = *uri;
          }
        } else {
          s.connect.clear();
          if (auto p = r_.String(t, "path", "source.path")) {
            places.path = At(*t.get("path"));
            if (!IsAbsolute(*p)) {
              r_.Error(places.path,
                       fmt::format("source.path: '{}' is not an absolute path", Printable(*p)));
            }
            s.path = std::filesystem::path(*p).lexically_normal().string();
            if (s.path.size() > 1 && s.path.back() == '/') s.path.pop_back();
          } else if (t.get("path") == nullptr) {
            r_.Error(s.where,
                     "source: a virtualbox source needs path = \"...\": a "
                     "VirtualBox.xml, a .vbox file or a folder of machines");
          }
          if (t.get("name") == nullptr) {  // every machine there
            s.names = {"*"};
            places.names = {places.path.line != 0 ? places.path : s.where};
          }
        }
        break;
      case SourceKind::kFile:
      case SourceKind::kDevice:
      case SourceKind::kLvm:
        s.connect.clear();
        ReadPaths(t, s, places);
        if (auto vm = r_.String(t, "vm", "source.vm")) {
          places.vm = At(*t.get("vm"));
          const Status st = ValidateName(*vm, "VM name");
          if (!st.ok()) r_.Error(places.vm, fmt::format("source.vm: {}", st.message()));
          s.vm = *vm;
        } else if (t.get("vm") == nullptr) {
          if (s.kind == SourceKind::kFile) {
            if (!s.paths.empty()) s.vm = SanitizeName(FileStem(s.paths.front()));
            places.vm = s.where;
          } else {
            r_.Error(s.where, fmt::format("source: {} source needs vm = \"NAME\", the name of "
                                          "the VM its disks belong to",
                                          WithArticle(kind)));
          }
        }
        if (s.kind == SourceKind::kLvm) {
          if (auto size = r_.String(t, "snapshot-size", "source.snapshot-size")) {
            if (!IsValidSnapshotSize(*size)) {
              r_.Error(*t.get("snapshot-size"),
                       fmt::format("source.snapshot-size: '{}' is neither a percentage of the "
                                   "volume (1% to 100%) nor a size such as 4G",
                                   Printable(*size)));
            }
            s.snapshot_size = *size;
          }
        } else {
          s.snapshot_size.clear();
        }
        break;
    }
    sources_.push_back(std::move(s));
    places_.push_back(std::move(places));
  }

  // Unknown keys, and keys of another kind of source.
  void CheckSourceKeys(const toml::table& t, const SourceKind* kind) {
    Names all = kSourceCommonKeys;
    for (SourceKind k : kAllKinds) {
      for (std::string_view key : KindKeys(k)) {
        if (!Contains(all, key)) all.push_back(key);
      }
    }
    Names mine = kSourceCommonKeys;
    if (kind != nullptr) mine.insert(mine.end(), KindKeys(*kind).begin(), KindKeys(*kind).end());
    for (auto&& [key, node] : t) {
      if (Contains(mine, key.str())) continue;
      if (kind == nullptr && Contains(all, key.str())) continue;  // cannot tell
      if (kind != nullptr && Contains(all, key.str())) {
        Names kinds;
        for (SourceKind k : kAllKinds) {
          if (Contains(KindKeys(k), key.str())) kinds.push_back(SourceKindName(k));
        }
        r_.Error(At(key.source()),
                 fmt::format("source.{}: only {} sources have '{}', not {} sources", key.str(),
                             JoinAnd(kinds), key.str(), SourceKindName(*kind)));
        continue;
      }
      r_.UnknownKey(key, "in [[source]]", kind != nullptr ? mine : all);
    }
  }

  // name = "web*" or name = ["web*", "db01"].
  void ReadNames(const toml::table& t, SourceConfig& s, SourcePlaces& places) {
    const toml::node* n = t.get("name");
    if (n == nullptr) return;
    PlacedStrings names;
    if (n->is_string()) {
      names.emplace_back(n->as_string()->get(), At(*n));
    } else if (n->is_array()) {
      auto elements = r_.StringElements(*n->as_array(), "source.name");
      if (!elements) return;
      if (elements->empty()) r_.Error(*n, "source.name: the list is empty");
      names = std::move(*elements);
    } else {
      r_.Error(*n, fmt::format("source.name: expected a string or an array of strings, not {}",
                               TypeName(n->type())));
      return;
    }
    for (auto& [name, at] : names) {
      Status st = ValidateGlob(name);
      if (st.ok()) st = ValidateName(name, "name");
      if (!st.ok()) {
        r_.Error(at, fmt::format("source.name: {}", st.message()));
        continue;
      }
      s.names.push_back(name);
      places.names.push_back(at);
    }
  }

  void ReadMethod(const toml::table& t, SourceConfig& s) {
    // The names of `vmvault ingest --method`.
    s.method = s.kind == SourceKind::kDomain ? "backup" : "pause";
    auto m = r_.String(t, "method", "source.method");
    if (!m) return;
    const Names options = s.kind == SourceKind::kDomain ? Names{"backup", "snapshot", "pause"}
                                                        : Names{"pause"};
    if (r_.OneOf(*t.get("method"), "source.method", *m, options, "method")) s.method = *m;
  }

  void ReadPaths(const toml::table& t, SourceConfig& s, SourcePlaces& places) {
    const std::string_view kind = SourceKindName(s.kind);
    const toml::node* n = t.get("paths");
    if (n == nullptr) {
      r_.Error(s.where,
               fmt::format("source: {} source needs paths = [\"...\"]: {}", WithArticle(kind),
                           s.kind == SourceKind::kFile     ? "the image files of one VM"
                           : s.kind == SourceKind::kDevice ? "the block devices of one VM"
                                                           : "the logical volumes of one VM, "
                                                             "as /dev/VG/LV"));
      return;
    }
    auto paths = r_.Strings(t, "paths", "source.paths");
    if (!paths) return;
    if (paths->empty()) r_.Error(*n, "source.paths: the list is empty");
    std::set<std::string> seen;
    for (auto& [path, at] : *paths) {
      const std::string p = Printable(path);
      if (!IsAbsolute(path)) {
        r_.Error(at, fmt::format("source.paths: '{}' is not an absolute path", p));
        continue;
      }
      const std::string normal = std::filesystem::path(path).lexically_normal().string();
      if (s.kind != SourceKind::kFile && normal.substr(0, 5) != "/dev/") {
        r_.Error(at, fmt::format("source.paths: '{}' is not under /dev", p));
        continue;
      }
      if (s.kind == SourceKind::kLvm && std::count(normal.begin(), normal.end(), '/') != 3) {
        r_.Error(at, fmt::format("source.paths: '{}' is not a logical volume path of the form "
                                 "/dev/VG/LV",
                                 p));
        continue;
      }
      if (!seen.insert(normal).second) {
        r_.Error(at, fmt::format("source.paths: '{}' is listed twice", p));
        continue;
      }
      s.paths.push_back(normal);
      places.paths.push_back(at);
    }
  }

  // The same domain, machine folder or disk in two sources, or two sources giving the
  // same VM name.
  void CheckDuplicateSources() {
    std::map<std::string, int> seen_targets;  // identity -> line of its first source
    std::map<std::string, int> seen_vms;      // VM name -> line
    for (size_t i = 0; i < sources_.size(); ++i) {
      const SourceConfig& s = sources_[i];
      const SourcePlaces& p = places_[i];
      const int line = s.where.line;
      auto note = [&](const std::string& key, ConfigLocation at, const std::string& what) {
        auto [it, inserted] = seen_targets.emplace(key, line);
        if (!inserted) {
          r_.Error(at, fmt::format("duplicate source: {} is already backed up by the source at "
                                   "line {}",
                                   what, it->second));
        }
        return inserted;
      };
      auto note_vm = [&](const std::string& vm, ConfigLocation at) {
        auto [it, inserted] = seen_vms.emplace(vm, line);
        if (!inserted) {
          r_.Error(at, fmt::format("duplicate source: the VM '{}' already comes from the source "
                                   "at line {}",
                                   Printable(vm), it->second));
        }
      };
      switch (s.kind) {
        case SourceKind::kDomain:
        case SourceKind::kVirtualBox:
          for (size_t k = 0; k < s.names.size(); ++k) {
            const std::string& name = s.names[k];
            const bool fresh =
                s.kind == SourceKind::kDomain
                    ? note("domain\n" + s.connect + "\n" + name, p.names[k],
                           fmt::format("the domain '{}' on {}", Printable(name),
                                       Printable(s.connect)))
                    : note("vbox\n" + s.path + "\n" + name, p.names[k],
                           name == "*" ? fmt::format("every machine in {}", Printable(s.path))
                                       : fmt::format("the machine '{}' in {}", Printable(name),
                                                     Printable(s.path)));
            if (fresh && !IsGlob(name)) note_vm(name, p.names[k]);
          }
          break;
        case SourceKind::kFile:
        case SourceKind::kDevice:
        case SourceKind::kLvm: {
          bool fresh = true;
          for (size_t k = 0; k < s.paths.size(); ++k) {
            fresh &=
                note("path\n" + s.paths[k], p.paths[k], fmt::format("'{}'", Printable(s.paths[k])));
          }
          if (fresh && !s.vm.empty()) note_vm(s.vm, p.vm);
          break;
        }
      }
    }
  }

  Reader& r_;
  std::vector<SourceConfig>& sources_;
  std::vector<SourcePlaces> places_;  // parallel to sources_
};

}  // namespace

void ReadSources(Reader& r, const toml::node& node, std::vector<SourceConfig>* sources) {
  SourcesParser(r, *sources).Run(node);
}

}  // namespace vmvault::ingest::config_internal
