// CheckConfig: TOML text to a Config and its problems. With config_sources.cc, the only
// file that includes toml++ (through config_reader.h). toml++ (as Debian builds it)
// reports syntax errors by throwing toml::parse_error; that is caught here. After the
// parse, the table is walked with pointer accessors that do not throw.
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "base/names.h"
#include "ingest/config.h"
#include "ingest/config_reader.h"

namespace vmvault::ingest {
namespace config_internal {
namespace {

// Top-level keys: written after a [table] header, they land in that table.
const Names kTopKeys = {"repository", "period",    "nice",  "ionice", "schedule", "tiers",
                        "source",     "retention", "hooks", "alerts", "log"};
const Names kPolicyKeys = {"keep-last",    "keep-hourly", "keep-daily", "keep-weekly",
                           "keep-monthly", "keep-yearly", "max-age",    "max-count"};

// "Error while parsing key-value pair: expected value, saw '\n'" ->
// "syntax error: expected value, saw '\n' (in a key-value pair)".
std::string SyntaxMessage(std::string_view description) {
  constexpr std::string_view kPrefix = "Error while parsing ";
  if (description.substr(0, kPrefix.size()) == kPrefix) {
    const std::string_view rest = description.substr(kPrefix.size());
    const size_t colon = rest.find(": ");
    if (colon != std::string_view::npos) {
      return fmt::format("syntax error: {} (in a {})", rest.substr(colon + 2),
                         rest.substr(0, colon));
    }
  }
  return fmt::format("syntax error: {}", description);
}

// Parses one configuration document into a Config, collecting problems.
class ConfigParser {
 public:
  ConfigParser(Config* config, std::vector<ConfigError>* errors) : c_(*config), r_(errors) {}

  void Parse(const toml::table& root) {
    r_.CheckKeys(root, "at the top level", kTopKeys);
    ReadTopScalars(root);
    if (const toml::table* t = r_.Table(root, "schedule", "schedule")) ReadSchedule(*t);
    if (const toml::table* t = r_.Table(root, "tiers", "tiers")) ReadTiers(*t);
    if (const toml::node* n = root.get("source")) ReadSources(r_, *n, &c_.sources);
    if (const toml::table* t = r_.Table(root, "retention", "retention")) ReadRetention(*t);
    if (const toml::table* t = r_.Table(root, "hooks", "hooks")) ReadHooks(*t);
    if (const toml::table* t = r_.Table(root, "alerts", "alerts")) ReadAlerts(*t);
    if (const toml::table* t = r_.Table(root, "log", "log")) ReadLog(*t);
    CheckTagFilter();
  }

 private:
  void ReadTopScalars(const toml::table& root) {
    if (auto s = r_.String(root, "repository", "repository")) {
      if (!IsAbsolute(*s)) {
        r_.Error(*root.get("repository"),
                 fmt::format("repository: '{}' is not an absolute path", Printable(*s)));
      } else {
        c_.repository = *s;
      }
    }
    if (auto p = r_.PeriodValue(root, "period", "period")) c_.period = *p;
    if (auto n = r_.Integer(root, "nice", "nice", -20, 19)) c_.nice = static_cast<int>(*n);
    if (auto s = r_.String(root, "ionice", "ionice")) ReadIoNice(*s, *root.get("ionice"));
  }

  void ReadIoNice(const std::string& s, const toml::node& n) {
    if (s == "none") return;
    if (s == "idle") {
      c_.ionice.io_class = IoNice::Class::kIdle;
      return;
    }
    if (s == "best-effort") {
      c_.ionice.io_class = IoNice::Class::kBestEffort;
      return;
    }
    if (s.size() == 13 && s.substr(0, 12) == "best-effort:" && s[12] >= '0' && s[12] <= '7') {
      c_.ionice.io_class = IoNice::Class::kBestEffort;
      c_.ionice.level = s[12] - '0';
      return;
    }
    if (s.substr(0, 8) == "realtime") {
      r_.Error(n,
               "ionice: the realtime class would starve the VMs' own I/O; use idle or "
               "best-effort:N");
      return;
    }
    r_.Error(n, fmt::format("ionice: '{}' is not an I/O class: use idle, best-effort, "
                            "best-effort:N (N from 0, highest, to 7) or none",
                            Printable(s)));
  }

  void ReadSchedule(const toml::table& t) {
    r_.CheckKeys(t, "in [schedule]", {"window", "concurrency", "tags"});
    if (auto s = r_.String(t, "window", "schedule.window")) {
      auto w = BackupWindow::Parse(*s);
      if (w.ok()) {
        c_.schedule.window = *w;
      } else {
        r_.Error(*t.get("window"), fmt::format("schedule.window: {}", w.status().message()));
      }
    }
    if (auto n = r_.Integer(t, "concurrency", "schedule.concurrency", 1, 64)) {
      c_.schedule.concurrency = static_cast<int>(*n);
    }
    if (auto tags = r_.Tags(t, "schedule.tags")) {
      for (auto& [tag, at] : *tags) {
        c_.schedule.tags.push_back(tag);
        tag_filter_places_.push_back(at);
      }
    }
  }

  void ReadTiers(const toml::table& t) {
    for (auto&& [key, node] : t) {
      const std::string name = fmt::format("tiers.{}", key.str());
      if (!Contains(kTiers, key.str())) {
        std::string msg = fmt::format("tiers: unknown tier '{}'", Printable(key.str()));
        const std::string near = ClosestMatch(key.str(), kTiers);
        if (!near.empty()) msg += fmt::format(" (did you mean '{}'?)", near);
        r_.Error(At(key.source()), msg + "; the tiers are hot, warm and cold");
        continue;
      }
      const toml::table* tier = r_.Table(t, key.str(), name);
      if (tier == nullptr) continue;
      r_.CheckKeys(*tier, fmt::format("in [{}]", name), {"interval"});
      if (auto d = r_.Duration(*tier, "interval", name + ".interval", Seconds(60))) {
        c_.tiers[std::string(key.str())].interval = *d;
      }
    }
  }
  void CheckTagFilter() {
    Names all;
    for (const SourceConfig& s : c_.sources) {
      for (const std::string& tag : s.tags) {
        if (!Contains(all, tag)) all.push_back(tag);
      }
    }
    for (size_t i = 0; i < c_.schedule.tags.size(); ++i) {
      const std::string& tag = c_.schedule.tags[i];
      if (Contains(all, tag)) continue;
      std::string msg = fmt::format("schedule.tags: no source has the tag '{}'", tag);
      const std::string near = ClosestMatch(tag, all);
      if (!near.empty()) msg += fmt::format(" (did you mean '{}'?)", near);
      r_.Error(tag_filter_places_[i], msg);
    }
  }
  void ReadRetention(const toml::table& t) {
    r_.CheckKeys(t, "in [retention]", {"default", "tier", "vm"});
    if (const toml::table* d = r_.Table(t, "default", "retention.default")) {
      c_.retention.defaults = ReadPolicy(*d, "retention.default");
    }
    if (const toml::table* tiers = r_.Table(t, "tier", "retention.tier")) {
      for (auto&& [key, node] : *tiers) {
        if (!Contains(kTiers, key.str())) {
          std::string msg = fmt::format("retention.tier: unknown tier '{}'", Printable(key.str()));
          const std::string near = ClosestMatch(key.str(), kTiers);
          if (!near.empty()) msg += fmt::format(" (did you mean '{}'?)", near);
          r_.Error(At(key.source()), msg + "; the tiers are hot, warm and cold");
          continue;
        }
        const std::string name = fmt::format("retention.tier.{}", key.str());
        if (const toml::table* p = r_.Table(*tiers, key.str(), name)) {
          c_.retention.tier[std::string(key.str())] = ReadPolicy(*p, name);
        }
      }
    }
    if (const toml::table* vms = r_.Table(t, "vm", "retention.vm")) {
      for (auto&& [key, node] : *vms) {
        const std::string name = fmt::format("retention.vm.\"{}\"", Printable(key.str()));
        const Status st = ValidateName(key.str(), "VM name");
        if (!st.ok()) {
          r_.Error(At(key.source()), fmt::format("retention.vm: {}", st.message()));
          continue;
        }
        if (const toml::table* p = r_.Table(*vms, key.str(), name)) {
          c_.retention.vm[std::string(key.str())] = ReadPolicy(*p, name);
        }
      }
    }
  }

  RetentionPolicy ReadPolicy(const toml::table& t, const std::string& name) {
    RetentionPolicy p;
    p.where = At(t);
    r_.CheckKeys(t, fmt::format("in [{}]", name), kPolicyKeys);
    const std::pair<const char*, int*> keeps[] = {
        {"keep-last", &p.keep_last},       {"keep-hourly", &p.keep_hourly},
        {"keep-daily", &p.keep_daily},     {"keep-weekly", &p.keep_weekly},
        {"keep-monthly", &p.keep_monthly}, {"keep-yearly", &p.keep_yearly}};
    for (const auto& [key, field] : keeps) {
      if (auto n = r_.Integer(t, key, fmt::format("{}.{}", name, key), 0, store::kMaxKeep)) {
        *field = static_cast<int>(*n);
      }
    }
    if (const toml::node* n = t.get("max-count")) {
      if (n->is_integer() && n->as_integer()->get() == 0) {
        r_.Error(*n, fmt::format("{}.max-count: 0 would remove every backup; leave max-count out "
                                 "for no limit",
                                 name));
      } else if (auto v = r_.Integer(t, "max-count", name + ".max-count", 1, store::kMaxKeep)) {
        p.max_count = static_cast<int>(*v);
      }
    }
    p.max_age = r_.Duration(t, "max-age", name + ".max-age", store::kMinMaxAge);
    return p;
  }

  void ReadHooks(const toml::table& t) {
    Names known = {"timeout"};
    for (int i = 0; i < kHookEventCount; ++i) known.push_back(HookEventName(HookEvent(i)));
    r_.CheckKeys(t, "in [hooks]", known);
    if (auto d = r_.Duration(t, "timeout", "hooks.timeout", Seconds(1))) c_.hooks.timeout = *d;
    for (int i = 0; i < kHookEventCount; ++i) {
      const auto e = static_cast<HookEvent>(i);
      const std::string name = fmt::format("hooks.{}", HookEventName(e));
      const toml::node* n = t.get(HookEventName(e));
      if (n == nullptr) continue;
      if (n->is_string()) {
        r_.Error(*n, fmt::format("{}: write the command as an array, program first: "
                                 "[\"/usr/local/bin/program\", \"{{{{VM}}}}\"] (hooks run "
                                 "without a shell, so a string is not split into arguments)",
                                 name));
        continue;
      }
      if (!n->is_array()) {
        r_.Error(*n, fmt::format("{}: expected an array, not {}", name, TypeName(n->type())));
        continue;
      }
      const toml::array& a = *n->as_array();
      if (a.empty()) {
        r_.Error(*n, fmt::format("{}: the command is empty; leave the key out for no hook", name));
        continue;
      }
      if (a.is_homogeneous(toml::node_type::array)) {  // several commands
        for (const toml::node& cmd : a) ReadHookCommand(*cmd.as_array(), e, name);
      } else if (a.is_homogeneous(toml::node_type::string)) {  // one command
        ReadHookCommand(a, e, name);
      } else {
        r_.Error(*n, fmt::format("{}: expected one command [\"/path/program\", \"arg\"] or several "
                                 "[[\"/path/one\"], [\"/path/two\"]]",
                                 name));
      }
    }
  }

  void ReadHookCommand(const toml::array& a, HookEvent e, const std::string& name) {
    if (a.empty()) {
      r_.Error(a, fmt::format("{}: a command is empty", name));
      return;
    }
    auto args = r_.StringElements(a, name);
    if (!args) return;
    HookCommand cmd;
    cmd.where = At(a);
    bool ok = true;
    const auto& [program, program_at] = args->front();
    if (program.find("{{") != std::string::npos) {
      r_.Error(program_at, fmt::format("{}: the program may not contain {{{{variables}}}}; pass "
                                       "them as arguments",
                                       name));
      ok = false;
    } else if (!IsAbsolute(program)) {
      r_.Error(program_at,
               fmt::format("{}: the program '{}' is not an absolute path (hooks run without a "
                           "shell or $PATH)",
                           name, Printable(program)));
      ok = false;
    }
    for (size_t i = 1; i < args->size(); ++i) {
      for (const std::string& problem : CheckHookArgument((*args)[i].first, e)) {
        r_.Error((*args)[i].second, fmt::format("{}: {}", name, problem));
        ok = false;
      }
    }
    if (!ok) return;
    for (auto& [arg, at] : *args) cmd.argv.push_back(arg);
    c_.hooks.commands[static_cast<size_t>(e)].push_back(std::move(cmd));
  }

  void ReadAlerts(const toml::table& t) {
    r_.CheckKeys(t, "in [alerts]",
                 {"to", "from", "smtp-url", "sendmail", "on-failure", "on-behind",
                  "behind-tolerance", "on-stuck", "stuck-after"});
    AlertsConfig& a = c_.alerts;
    if (auto to = r_.Strings(t, "to", "alerts.to")) {
      for (auto& [addr, at] : *to) {
        if (!IsValidEmailAddress(addr)) {
          r_.Error(at, fmt::format("alerts.to: '{}' is not an email address", Printable(addr)));
          continue;
        }
        a.to.push_back(addr);
      }
    } else if (t.get("to") == nullptr) {
      r_.Error(t, "alerts: no address to send alerts to: add to = [\"ops@example.com\"]");
    }
    if (auto from = r_.String(t, "from", "alerts.from")) {
      if (!IsValidEmailAddress(*from)) {
        r_.Error(*t.get("from"),
                 fmt::format("alerts.from: '{}' is not an email address", Printable(*from)));
      }
      a.from = *from;
    }
    if (auto url = r_.String(t, "smtp-url", "alerts.smtp-url")) {
      const std::string why = SmtpUrlProblem(*url);
      if (!why.empty()) {
        r_.Error(*t.get("smtp-url"),
                 fmt::format("alerts.smtp-url: '{}' is not an SMTP URL: {}", Printable(*url), why));
      }
      a.smtp_url = *url;
    }
    if (auto sendmail = r_.String(t, "sendmail", "alerts.sendmail")) {
      if (!IsAbsolute(*sendmail)) {
        r_.Error(*t.get("sendmail"), fmt::format("alerts.sendmail: '{}' is not an absolute path",
                                                 Printable(*sendmail)));
      }
      a.sendmail = *sendmail;
      if (t.get("smtp-url") != nullptr) {
        r_.Error(*t.get("sendmail"), "alerts.sendmail: give smtp-url or sendmail, not both");
      }
    }
    if (!a.smtp_url.empty()) a.sendmail.clear();
    if (auto b = r_.Bool(t, "on-failure", "alerts.on-failure")) a.on_failure = *b;
    if (auto b = r_.Bool(t, "on-behind", "alerts.on-behind")) a.on_behind = *b;
    if (auto b = r_.Bool(t, "on-stuck", "alerts.on-stuck")) a.on_stuck = *b;
    if (auto d = r_.Duration(t, "behind-tolerance", "alerts.behind-tolerance", Seconds(0))) {
      a.behind_tolerance = *d;
    }
    if (auto d = r_.Duration(t, "stuck-after", "alerts.stuck-after", Seconds(60))) {
      a.stuck_after = *d;
    }
  }

  void ReadLog(const toml::table& t) {
    r_.CheckKeys(t, "in [log]", {"target", "level"});
    if (auto target = r_.String(t, "target", "log.target")) {
      const toml::node& n = *t.get("target");
      if (*target == "syslog") {
        c_.log.target = LogConfig::Target::kSyslog;
      } else if (*target == "stderr") {
        c_.log.target = LogConfig::Target::kStderr;
      } else if (target->substr(0, 5) == "file:") {
        const std::string path = target->substr(5);
        if (!IsAbsolute(path) || path.back() == '/') {
          r_.Error(n,
                   fmt::format("log.target: '{}' is not an absolute file path", Printable(path)));
        } else {
          c_.log.target = LogConfig::Target::kFile;
          c_.log.file = path;
        }
      } else {
        std::string msg = fmt::format("log.target: unknown target '{}'", Printable(*target));
        const std::string near = ClosestMatch(*target, {"syslog", "stderr"});
        if (!near.empty()) msg += fmt::format(" (did you mean '{}'?)", near);
        r_.Error(n, msg + "; use syslog, stderr or file:/path/to/file");
      }
    }
    if (auto level = r_.String(t, "level", "log.level")) {
      if (r_.OneOf(*t.get("level"), "log.level", *level, {"error", "warning", "info", "debug"},
                   "level")) {
        c_.log.level = *level;
      }
    }
  }

  Config& c_;
  Reader r_;
  std::vector<ConfigLocation> tag_filter_places_;  // of c_.schedule.tags
};

}  // namespace
}  // namespace config_internal

ConfigCheck CheckConfig(std::string_view text, std::string_view source_name) {
  ConfigCheck out;
  try {
    toml::table root = toml::parse(text, source_name);
    config_internal::ConfigParser(&out.config, &out.errors).Parse(root);
  } catch (const toml::parse_error& e) {
    out.errors.push_back(
        {config_internal::At(e.source()), config_internal::SyntaxMessage(e.description())});
  } catch (const std::exception& e) {
    out.errors.push_back({{}, fmt::format("cannot read the configuration: {}", e.what())});
  }
  std::stable_sort(
      out.errors.begin(), out.errors.end(), [](const ConfigError& a, const ConfigError& b) {
        return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
      });
  return out;
}

}  // namespace vmvault::ingest
