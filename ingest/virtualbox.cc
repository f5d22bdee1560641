#include "ingest/virtualbox.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "base/file_util.h"
#include "base/names.h"

namespace vmvault::ingest {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kVboxNamespace = "http://www.virtualbox.org/";
// VirtualBox refuses deeper medium trees (SETTINGS_MEDIUM_DEPTH_MAX); so do we, which
// also bounds the work a crafted file can cause.
constexpr size_t kMaxMediumDepth = 300;

// A parsed settings file and what messages need to point into it.
struct Doc {
  std::string_view text;
  std::string path;
  pugi::xml_document xml;

  // "path:line" of `node`, or "path" when its position is unknown.
  std::string Where(const pugi::xml_node& node) const {
    const ptrdiff_t offset = node.offset_debug();
    if (offset < 0 || static_cast<size_t>(offset) > text.size()) return Printable(path);
    const size_t line = 1 + std::count(text.begin(), text.begin() + offset, '\n');
    return fmt::format("{}:{}", Printable(path), line);
  }
  Status Invalid(const pugi::xml_node& node, std::string_view what) const {
    return Status::InvalidArgument(fmt::format("{}: {}", Where(node), what));
  }
};

// Loads `text` and checks the root: <VirtualBox> in VirtualBox's namespace, with a
// settings version VirtualBox 2.2 or later wrote.
Status LoadDoc(std::string_view text, const std::string& path, Doc* doc) {
  doc->text = text;
  doc->path = path;
  const pugi::xml_parse_result parsed =
      doc->xml.load_buffer(text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    const size_t offset =
        std::min<size_t>(static_cast<size_t>(std::max<ptrdiff_t>(parsed.offset, 0)), text.size());
    const size_t line = 1 + std::count(text.begin(), text.begin() + offset, '\n');
    return Status::InvalidArgument(fmt::format("{}:{}: not well-formed XML: {} (at byte {})",
                                               Printable(path), line, parsed.description(),
                                               offset));
  }
  const pugi::xml_node root = doc->xml.document_element();
  if (std::string_view(root.name()) != "VirtualBox") {
    return doc->Invalid(root, fmt::format("not a VirtualBox settings file: the root element is "
                                          "<{}>, not <VirtualBox>",
                                          Printable(root.name())));
  }
  const pugi::xml_attribute xmlns = root.attribute("xmlns");
  if (xmlns && std::string_view(xmlns.value()) != kVboxNamespace) {
    return doc->Invalid(root,
                        fmt::format("not a VirtualBox settings file: namespace '{}', not '{}'",
                                    Printable(xmlns.value()), kVboxNamespace));
  }
  const std::string_view version = root.attribute("version").value();
  if (version.empty()) return doc->Invalid(root, "<VirtualBox> has no version attribute");
  // "1.19-linux": major.minor, then anything.
  unsigned major = 0, minor = 0;
  const char* end = version.data() + version.size();
  auto r = std::from_chars(version.data(), end, major);
  if (r.ec == std::errc() && r.ptr < end && *r.ptr == '.') {
    r = std::from_chars(r.ptr + 1, end, minor);
  } else {
    r.ec = std::errc::invalid_argument;
  }
  if (r.ec != std::errc()) {
    return doc->Invalid(root, fmt::format("unreadable settings version '{}'", Printable(version)));
  }
  if (major < 1 || (major == 1 && minor < 7)) {
    return Status::Unsupported(fmt::format(
        "{}: settings version {} is older than VirtualBox 2.2 (1.7); open the machine once in "
        "a newer VirtualBox to convert it",
        doc->Where(root), Printable(version)));
  }
  return Status::OK();
}

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

std::string DirOf(const std::string& path) { return fs::path(path).parent_path().string(); }

// `location` made absolute against `dir`, lexically normal.
std::string ResolveLocation(std::string_view location, const std::string& dir) {
  fs::path p(location);
  if (!p.is_absolute()) p = fs::path(dir) / p;
  return p.lexically_normal().string();
}

// Adds the hard disks under <MediaRegistry> `registry` to `out`, parents before children.
// Iterative, so deep nesting cannot exhaust the stack.
Status ReadRegistry(const Doc& doc, const pugi::xml_node& registry, MediaRegistry* out) {
  const std::string dir = DirOf(doc.path);
  struct Todo {
    pugi::xml_node node;
    std::string parent_uuid;
    size_t depth;
  };
  std::vector<Todo> todo;
  for (const pugi::xml_node& disks : registry.children("HardDisks")) {
    for (const pugi::xml_node& disk : disks.children("HardDisk")) todo.push_back({disk, "", 1});
  }
  std::reverse(todo.begin(), todo.end());  // document order
  while (!todo.empty()) {
    Todo t = std::move(todo.back());
    todo.pop_back();
    if (t.depth > kMaxMediumDepth) {
      return doc.Invalid(
          t.node, fmt::format("differencing images nest deeper than {} levels", kMaxMediumDepth));
    }
    const pugi::xml_attribute uuid_attr = t.node.attribute("uuid");
    if (!uuid_attr) return doc.Invalid(t.node, "<HardDisk> has no uuid attribute");
    Result<std::string> uuid = NormalizeVboxUuid(uuid_attr.value());
    if (!uuid.ok()) return doc.Invalid(t.node, uuid.status().message());
    const std::string_view location = t.node.attribute("location").value();
    if (location.empty()) {
      return doc.Invalid(t.node, fmt::format("<HardDisk> {} has no location", *uuid));
    }
    const std::string_view format = t.node.attribute("format").value();
    if (format.empty()) {
      return doc.Invalid(t.node, fmt::format("<HardDisk> {} has no format", *uuid));
    }
    VboxMedium medium;
    medium.uuid = *uuid;
    medium.path = ResolveLocation(location, dir);
    medium.format = std::string(format);
    medium.parent_uuid = t.parent_uuid;
    medium.registry = doc.path;
    // Network media keep a URL-like location; the "path" then means nothing.
    if (location.find("://") != std::string_view::npos) medium.path = std::string(location);
    if (!out->Add(medium)) {
      return doc.Invalid(
          t.node, fmt::format("hard disk {} is listed twice in the media registry", medium.uuid));
    }
    std::vector<Todo> children;
    for (const pugi::xml_node& child : t.node.children("HardDisk")) {
      children.push_back({child, medium.uuid, t.depth + 1});
    }
    todo.insert(todo.end(), children.rbegin(), children.rend());
  }
  return Status::OK();
}

Result<uint32_t> ReadUint(const Doc& doc, const pugi::xml_node& node, const char* attr) {
  const pugi::xml_attribute a = node.attribute(attr);
  if (!a) {
    return doc.Invalid(node, fmt::format("<{}> has no {} attribute", node.name(), attr));
  }
  const std::string_view v = a.value();
  uint32_t n = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size()) {
    return doc.Invalid(
        node, fmt::format("<{}> {}='{}' is not a number", node.name(), attr, Printable(v)));
  }
  return n;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// The chain of `uuid`, base first, looked up in `own` and then in `extra`.
Result<std::vector<VboxDiskLayer>> ResolveChain(const Doc& doc, const pugi::xml_node& image,
                                                const std::string& uuid, const MediaRegistry& own,
                                                const MediaRegistry* extra) {
  std::vector<VboxDiskLayer> chain;
  std::set<std::string> seen;
  std::string next = uuid;
  while (!next.empty()) {
    const VboxMedium* m = own.Find(next);
    if (m == nullptr && extra != nullptr) m = extra->Find(next);
    if (m == nullptr) {
      std::string looked = "the machine's own media registry";
      std::string others;
      for (const std::string& f : extra != nullptr ? extra->files() : std::vector<std::string>{}) {
        if (f != doc.path) others += " " + Printable(f);
      }
      if (!others.empty()) looked += " and those of" + others;
      const std::string what =
          next == uuid ? fmt::format("hard disk {} is attached", uuid)
                       : fmt::format("hard disk {} (in the chain of {}) is needed", next, uuid);
      return doc.Invalid(image, fmt::format("{}, but no media registry lists it (looked in {}); if "
                                            "VirtualBox registers it elsewhere, give the "
                                            "VirtualBox.xml or the folder holding it",
                                            what, looked));
    }
    if (!seen.insert(next).second || chain.size() > kMaxMediumDepth) {
      return doc.Invalid(image, fmt::format("the differencing chain of hard disk {} loops "
                                            "(through {})",
                                            uuid, next));
    }
    if (EqualsNoCase(m->format, "iSCSI") || m->path.find("://") != std::string::npos) {
      return Status::Unsupported(fmt::format("{}: hard disk {} is a network medium ({}, {})",
                                             doc.Where(image), m->uuid, Printable(m->format),
                                             Printable(m->path)));
    }
    chain.push_back({m->path, m->format, m->uuid});
    next = m->parent_uuid;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

std::string UniqueDiskName(const std::string& wanted, std::set<std::string>* used) {
  std::string name = SanitizeName(wanted, kMaxDiskNameLength);
  for (int k = 2; used->count(name) != 0; ++k) {
    const std::string suffix = fmt::format("~{}", k);
    name = SanitizeName(wanted, kMaxDiskNameLength - suffix.size()) + suffix;
  }
  used->insert(name);
  return name;
}

Result<VboxMachine> ParseMachineDoc(const Doc& doc, const MediaRegistry* extra) {
  const pugi::xml_node root = doc.xml.document_element();
  pugi::xml_node machine = root.child("Machine");
  if (!machine) {
    if (root.child("MachineEncrypted")) {
      return Status::Unsupported(
          fmt::format("{}: the machine's settings are encrypted; decrypt them in VirtualBox first",
                      doc.Where(root)));
    }
    if (root.child("Global")) {
      return doc.Invalid(root, "this is a global VirtualBox.xml, not a machine's .vbox file");
    }
    return doc.Invalid(root, "<VirtualBox> has no <Machine>");
  }
  VboxMachine out;
  out.vbox_path = doc.path;
  out.config_text = std::string(doc.text);
  out.name = machine.attribute("name").value();
  if (out.name.empty()) return doc.Invalid(machine, "<Machine> has no name");
  if (!machine.attribute("uuid")) return doc.Invalid(machine, "<Machine> has no uuid");
  Result<std::string> uuid = NormalizeVboxUuid(machine.attribute("uuid").value());
  if (!uuid.ok()) return doc.Invalid(machine, uuid.status().message());
  out.uuid = *uuid;

  MediaRegistry own;
  own.AddFile(doc.path);
  for (const pugi::xml_node& registry : machine.children("MediaRegistry")) {
    VV_RETURN_IF_ERROR(ReadRegistry(doc, registry, &own));
  }

  // Settings.cpp reads <StorageControllers> under <Machine> and under <Hardware>.
  std::vector<pugi::xml_node> controllers;
  for (const pugi::xml_node& parent : {machine, machine.child("Hardware")}) {
    for (const pugi::xml_node& list : parent.children("StorageControllers")) {
      for (const pugi::xml_node& c : list.children("StorageController")) controllers.push_back(c);
    }
  }
  std::set<std::string> used_names;
  for (const pugi::xml_node& controller : controllers) {
    const pugi::xml_attribute cname = controller.attribute("name");
    if (!cname) return doc.Invalid(controller, "<StorageController> has no name");
    for (const pugi::xml_node& att : controller.children("AttachedDevice")) {
      if (std::string_view(att.attribute("type").value()) != "HardDisk") continue;  // DVD, floppy
      const pugi::xml_node image = att.child("Image");
      if (!image) return doc.Invalid(att, "hard disk <AttachedDevice> has no <Image>");
      if (!image.attribute("uuid")) return doc.Invalid(image, "<Image> has no uuid");
      Result<std::string> image_uuid = NormalizeVboxUuid(image.attribute("uuid").value());
      if (!image_uuid.ok()) return doc.Invalid(image, image_uuid.status().message());
      VV_ASSIGN_OR_RETURN(const uint32_t port, ReadUint(doc, att, "port"));
      VV_ASSIGN_OR_RETURN(const uint32_t device, ReadUint(doc, att, "device"));
      VboxDisk disk;
      disk.controller = cname.value();
      disk.port = port;
      disk.device = device;
      disk.name =
          UniqueDiskName(fmt::format("{}-{}-{}", disk.controller, port, device), &used_names);
      VV_ASSIGN_OR_RETURN(disk.chain, ResolveChain(doc, image, *image_uuid, own, extra));
      out.disks.push_back(std::move(disk));
    }
  }
  return out;
}

// ---- Finding files ----

Result<std::string> ReadSettingsFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, Printable(path));
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("{} is not a regular file", Printable(path)));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxVboxSettingsBytes) {
    return Status::InvalidArgument(fmt::format("{} has {} bytes, too many for VirtualBox settings",
                                               Printable(path), st.st_size));
  }
  return ReadFile(path);
}

// True for the copies VirtualBox keeps when it upgrades a settings file:
// "name-1.16-linux.vbox" beside "name.vbox".
bool IsSettingsBackupName(const std::string& path) {
  const std::string file = fs::path(path).filename().string();
  std::string_view name = file;
  auto eat_tail = [&name](auto is_wanted) {  // drops trailing chars; true when any went
    const size_t before = name.size();
    while (!name.empty() && is_wanted(static_cast<unsigned char>(name.back()))) {
      name.remove_suffix(1);
    }
    return name.size() < before;
  };
  auto eat_char = [&name](char c) {
    if (name.empty() || name.back() != c) return false;
    name.remove_suffix(1);
    return true;
  };
  constexpr std::string_view kExt = ".vbox";
  if (name.size() < kExt.size() || name.substr(name.size() - kExt.size()) != kExt) return false;
  name.remove_suffix(kExt.size());
  auto lower = [](unsigned char c) { return c >= 'a' && c <= 'z'; };
  auto digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  return eat_tail(lower) && eat_char('-') && eat_tail(digit) && eat_char('.') && eat_tail(digit) &&
         eat_char('-');
}

bool SameFile(const std::string& a, const std::string& b) {
  std::error_code ec;
  return a == b || fs::equivalent(a, b, ec);
}

struct Candidate {
  std::string path;
  bool registered = false;
  std::string registered_uuid;  // what VirtualBox.xml says the file holds
  std::string text;
};

// *.vbox files under `dir`, at most kVboxSearchDepth folders down, sorted. Symbolic links
// to folders are not followed; folders we may not read are skipped.
Result<std::vector<std::string>> WalkForVbox(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2) && it.depth() >= kVboxSearchDepth) it.disable_recursion_pending();
    const fs::path& p = it->path();
    if (p.extension() == ".vbox" && it->is_regular_file(ec2)) found.push_back(p.string());
  }
  if (ec) {
    return Status::IOError(
        fmt::format("looking for .vbox files in {}: {}", Printable(dir), ec.message()));
  }
  std::sort(found.begin(), found.end());
  return found;
}

Status AddGlobal(const std::string& xml_path, std::vector<Candidate>* candidates,
                 MediaRegistry* media) {
  VV_ASSIGN_OR_RETURN(const std::string text, ReadSettingsFile(xml_path));
  VV_ASSIGN_OR_RETURN(VboxGlobalConfig global, ParseVirtualBoxXml(text, xml_path));
  media->Merge(global.media);
  for (const VboxGlobalConfig::MachineEntry& e : global.machines) {
    Candidate c;
    c.path = e.vbox_path;
    c.registered = true;
    c.registered_uuid = e.uuid;
    candidates->push_back(std::move(c));
  }
  return Status::OK();
}

Status CheckLayersExist(const VboxMachine& m) {
  for (const VboxDisk& d : m.disks) {
    for (const VboxDiskLayer& l : d.chain) {
      struct stat st;
      if (::stat(l.path.c_str(), &st) != 0) {
        const int err = errno;
        return Status::FromErrno(
            err,
            fmt::format("machine '{}' ({}): disk {}: image {} of hard disk {}", Printable(m.name),
                        Printable(m.vbox_path), d.name, Printable(l.path), l.uuid));
      }
      if (!S_ISREG(st.st_mode)) {
        return Status::InvalidArgument(
            fmt::format("machine '{}' ({}): disk {}: image {} is not a regular file",
                        Printable(m.name), Printable(m.vbox_path), d.name, Printable(l.path)));
      }
    }
  }
  return Status::OK();
}

}  // namespace

// ---- MediaRegistry ----

const VboxMedium* MediaRegistry::Find(std::string_view uuid) const {
  Result<std::string> key = NormalizeVboxUuid(uuid);
  if (!key.ok()) return nullptr;
  auto it = media_.find(*key);
  return it == media_.end() ? nullptr : &it->second;
}

bool MediaRegistry::Add(VboxMedium medium) {
  Result<std::string> key = NormalizeVboxUuid(medium.uuid);
  if (!key.ok()) return false;
  medium.uuid = *key;
  return media_.emplace(std::move(*key), std::move(medium)).second;
}

void MediaRegistry::AddFile(const std::string& file) {
  if (std::find(files_.begin(), files_.end(), file) == files_.end()) files_.push_back(file);
}

void MediaRegistry::Merge(const MediaRegistry& other) {
  for (const auto& [uuid, medium] : other.media_) media_.emplace(uuid, medium);
  for (const std::string& f : other.files_) AddFile(f);
}

// ---- Parsers ----

Result<std::string> NormalizeVboxUuid(std::string_view uuid) {
  std::string_view s = uuid;
  if (s.size() == 38 && s.front() == '{' && s.back() == '}') s = s.substr(1, 36);
  bool ok = s.size() == 36;
  bool all_zero = true;
  std::string out;
  for (size_t i = 0; ok && i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    ok = dash ? s[i] == '-' : IsHex(s[i]);
    if (!dash && s[i] != '0') all_zero = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  if (!ok) return Status::InvalidArgument(fmt::format("'{}' is not a uuid", Printable(uuid)));
  if (all_zero) return Status::InvalidArgument("the null uuid names nothing");
  return out;
}

Result<MediaRegistry> ParseVboxMediaRegistry(std::string_view text, const std::string& path) {
  Doc doc;
  VV_RETURN_IF_ERROR(LoadDoc(text, path, &doc));
  const pugi::xml_node root = doc.xml.document_element();
  MediaRegistry out;
  out.AddFile(path);
  for (const char* holder : {"Machine", "Global"}) {
    for (const pugi::xml_node& registry : root.child(holder).children("MediaRegistry")) {
      VV_RETURN_IF_ERROR(ReadRegistry(doc, registry, &out));
    }
  }
  return out;
}

Result<VboxGlobalConfig> ParseVirtualBoxXml(std::string_view text, const std::string& path) {
  Doc doc;
  VV_RETURN_IF_ERROR(LoadDoc(text, path, &doc));
  const pugi::xml_node root = doc.xml.document_element();
  const pugi::xml_node global = root.child("Global");
  if (!global) {
    if (root.child("Machine")) {
      return doc.Invalid(root, "this is a machine's .vbox file, not the global VirtualBox.xml");
    }
    return doc.Invalid(root, "<VirtualBox> has no <Global>");
  }
  VboxGlobalConfig out;
  out.media.AddFile(path);
  for (const pugi::xml_node& registry : global.children("MediaRegistry")) {
    VV_RETURN_IF_ERROR(ReadRegistry(doc, registry, &out.media));
  }
  const std::string dir = DirOf(path);
  std::set<std::string> seen;
  for (const pugi::xml_node& entry : global.child("MachineRegistry").children("MachineEntry")) {
    if (!entry.attribute("uuid")) return doc.Invalid(entry, "<MachineEntry> has no uuid");
    Result<std::string> uuid = NormalizeVboxUuid(entry.attribute("uuid").value());
    if (!uuid.ok()) return doc.Invalid(entry, uuid.status().message());
    const std::string_view src = entry.attribute("src").value();
    if (src.empty()) return doc.Invalid(entry, fmt::format("<MachineEntry> {} has no src", *uuid));
    if (!seen.insert(*uuid).second) {
      return doc.Invalid(entry, fmt::format("machine {} is registered twice", *uuid));
    }
    out.machines.push_back({*uuid, ResolveLocation(src, dir)});
  }
  return out;
}

Result<VboxMachine> ParseVboxMachine(std::string_view text, const std::string& vbox_path,
                                     const MediaRegistry* extra) {
  Doc doc;
  VV_RETURN_IF_ERROR(LoadDoc(text, vbox_path, &doc));
  return ParseMachineDoc(doc, extra);
}

Result<std::vector<VboxMachine>> FindVirtualBoxMachines(const std::string& path_in) {
  std::error_code ec;
  const std::string path = fs::absolute(path_in, ec).lexically_normal().string();
  if (ec) return Status::InvalidArgument(fmt::format("bad path '{}'", Printable(path_in)));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, Printable(path));

  std::vector<Candidate> candidates;
  MediaRegistry media;
  if (S_ISDIR(st.st_mode)) {
    const std::string xml = (fs::path(path) / "VirtualBox.xml").string();
    struct stat xst;
    if (::stat(xml.c_str(), &xst) == 0 && S_ISREG(xst.st_mode)) {
      VV_RETURN_IF_ERROR(AddGlobal(xml, &candidates, &media));
    }
    VV_ASSIGN_OR_RETURN(std::vector<std::string> found, WalkForVbox(path));
    for (std::string& f : found) candidates.push_back({std::move(f), false, "", ""});
  } else if (S_ISREG(st.st_mode)) {
    VV_ASSIGN_OR_RETURN(std::string text, ReadSettingsFile(path));
    Doc doc;
    VV_RETURN_IF_ERROR(LoadDoc(text, path, &doc));
    if (doc.xml.document_element().child("Global")) {
      VV_RETURN_IF_ERROR(AddGlobal(path, &candidates, &media));
    } else {
      candidates.push_back({path, false, "", std::move(text)});
    }
  } else {
    return Status::InvalidArgument(
        fmt::format("{} is neither a folder nor a VirtualBox settings file", Printable(path)));
  }

  // Read every file and pool the media registries first: a disk may be registered by
  // another machine.
  for (Candidate& c : candidates) {
    if (c.text.empty()) {
      Result<std::string> text = ReadSettingsFile(c.path);
      if (!text.ok()) {
        if (c.registered) {
          return text.status().WithContext(fmt::format("VirtualBox.xml registers machine {} at {}",
                                                       c.registered_uuid, Printable(c.path)));
        }
        return text.status();
      }
      c.text = std::move(*text);
    }
    VV_ASSIGN_OR_RETURN(MediaRegistry own, ParseVboxMediaRegistry(c.text, c.path));
    media.Merge(own);
  }

  std::vector<VboxMachine> machines;
  std::map<std::string, size_t> by_uuid;  // uuid -> index in machines / candidates
  std::vector<const Candidate*> source;
  for (const Candidate& c : candidates) {
    VV_ASSIGN_OR_RETURN(VboxMachine m, ParseVboxMachine(c.text, c.path, &media));
    if (c.registered && m.uuid != c.registered_uuid) {
      return Status::InvalidArgument(fmt::format(
          "VirtualBox.xml registers machine {} at {}, but that file describes machine {}",
          c.registered_uuid, Printable(c.path), m.uuid));
    }
    auto it = by_uuid.find(m.uuid);
    if (it == by_uuid.end()) {
      by_uuid[m.uuid] = machines.size();
      machines.push_back(std::move(m));
      source.push_back(&c);
      continue;
    }
    const Candidate& old = *source[it->second];
    if (SameFile(old.path, c.path)) continue;
    if (old.registered && !c.registered) continue;
    const bool old_backup = IsSettingsBackupName(old.path);
    const bool new_backup = IsSettingsBackupName(c.path);
    if (!old.registered && old_backup != new_backup) {
      if (old_backup) {
        machines[it->second] = std::move(m);
        source[it->second] = &c;
      }
      continue;
    }
    return Status::InvalidArgument(
        fmt::format("{} and {} both describe machine {}; give the one VirtualBox uses",
                    Printable(old.path), Printable(c.path), m.uuid));
  }
  for (const VboxMachine& m : machines) VV_RETURN_IF_ERROR(CheckLayersExist(m));
  return machines;
}

}  // namespace vmvault::ingest
