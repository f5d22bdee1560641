#include "ingest/config_values.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

namespace vmvault::ingest {
namespace {

constexpr char kDurationExamples[] = "90s, 5m, 6h, 1d, 2w or 1h30m";

Status BadDuration(std::string_view text, std::string_view why) {
  return Status::InvalidArgument(
      fmt::format("'{}' is not a duration: {} (try {})", text, why, kDurationExamples));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// "HH:MM" or "H:MM" -> minute of the day. "24:00" only when `allow_24`.
Result<int> ParseTimeOfDay(std::string_view text, bool allow_24) {
  const size_t colon = text.find(':');
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format("'{}' is not a time of day: {}", text, why));
  };
  if (colon == std::string_view::npos || colon == 0 || colon > 2 || text.size() != colon + 3) {
    return bad("write it as HH:MM, for example 22:00 or 6:30");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (i != colon && !IsDigit(text[i])) return bad("write it as HH:MM, for example 22:00 or 6:30");
  }
  const int hours = std::atoi(std::string(text.substr(0, colon)).c_str());
  const int minutes = std::atoi(std::string(text.substr(colon + 1)).c_str());
  if (minutes > 59) return bad("the minutes go from 00 to 59");
  if (hours == 24 && minutes == 0) {
    if (allow_24) return kMinutesPerDay;
    return bad("24:00 can only end a window; a window starting at midnight starts at 00:00");
  }
  if (hours > 23) return bad("the hours go from 0 to 23");
  return hours * 60 + minutes;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string Normalize(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '_') c = '-';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string JoinVariables(const std::vector<std::string_view>& vars) {
  std::string out;
  for (std::string_view v : vars) {
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

}  // namespace

Result<Seconds> ParseDuration(std::string_view text) {
  static constexpr std::array<std::pair<char, int64_t>, 5> kUnits = {
      {{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}}};
  if (text.empty()) return BadDuration(text, "it is empty");
  int64_t total = 0;
  int last_rank = -1;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) {
      if (text[i] == '-') return BadDuration(text, "it is negative");
      return BadDuration(text, "expected a whole number");
    }
    int64_t n = 0;
    const size_t digits_start = i;
    while (i < text.size() && IsDigit(text[i])) {
      if (i - digits_start >= 12) return BadDuration(text, "it is too long");
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i == text.size()) {
      return BadDuration(text, "the number has no unit (s, m, h, d or w)");
    }
    const char unit = text[i];
    std::string_view word = text.substr(i);
    size_t word_len = 0;
    while (word_len < word.size() && IsAlpha(word[word_len])) ++word_len;
    word = word.substr(0, word_len);
    if (word == "M" || word == "mo" || word == "mon" || word == "month" || word == "months") {
      return BadDuration(text, "there is no month unit: use 30d");
    }
    if (word == "y" || word == "year" || word == "years") {
      return BadDuration(text, "there is no year unit: use 365d");
    }
    if (unit == '.' || unit == ',') return BadDuration(text, "use whole numbers: 1h30m, not 1.5h");
    if (unit == ' ') return BadDuration(text, "write it without spaces");
    int rank = -1;
    for (size_t r = 0; r < kUnits.size(); ++r) {
      if (kUnits[r].first == unit) rank = static_cast<int>(r);
    }
    if (rank < 0 || word_len > 1) {
      return BadDuration(text, fmt::format("unknown unit '{}' (use s, m, h, d or w)",
                                           word_len > 0 ? word : text.substr(i, 1)));
    }
    if (rank <= last_rank) {
      return BadDuration(text, "write the units largest first, each once");
    }
    last_rank = rank;
    total += n * kUnits[rank].second;
    if (total > kMaxDuration.count()) return BadDuration(text, "it is longer than 100 years");
    ++i;
  }
  return Seconds(total);
}

std::string FormatDuration(Seconds d) {
  int64_t s = d.count();
  if (s == 0) return "0s";
  std::string out;
  if (s < 0) {
    out = "-";
    s = -s;
  }
  if (s % (7 * 86400) == 0) return out + fmt::format("{}w", s / (7 * 86400));
  static constexpr std::array<std::pair<char, int64_t>, 4> kUnits = {
      {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}}};
  for (const auto& [unit, per] : kUnits) {
    if (s >= per) {
      out += fmt::format("{}{}", s / per, unit);
      s %= per;
    }
  }
  return out;
}

Result<BackupWindow> BackupWindow::Parse(std::string_view text) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos || text.find('-', dash + 1) != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format(
        "'{}' is not a window: write START-END in 24-hour time, for example 22:00-06:00", text));
  }
  VV_ASSIGN_OR_RETURN(const int start, ParseTimeOfDay(Trim(text.substr(0, dash)), false));
  VV_ASSIGN_OR_RETURN(const int end, ParseTimeOfDay(Trim(text.substr(dash + 1)), true));
  if (start == end) {
    return Status::InvalidArgument(fmt::format(
        "the window '{}' starts when it ends; for the whole day write 00:00-24:00 or leave "
        "the window out",
        text));
  }
  return BackupWindow{start, end};
}

bool BackupWindow::Contains(int minute_of_day) const {
  const int m = ((minute_of_day % kMinutesPerDay) + kMinutesPerDay) % kMinutesPerDay;
  if (!CrossesMidnight()) return start <= m && m < end;
  return m >= start || m < end;
}

int BackupWindow::MinutesLeft(int minute_of_day) const {
  if (!Contains(minute_of_day)) return 0;
  if (Length() == kMinutesPerDay) return kMinutesPerDay;
  const int m = ((minute_of_day % kMinutesPerDay) + kMinutesPerDay) % kMinutesPerDay;
  if (!CrossesMidnight() || m < end) return end - m;
  return kMinutesPerDay - m + end;
}

int BackupWindow::Length() const {
  return CrossesMidnight() ? kMinutesPerDay - start + end : end - start;
}

std::string BackupWindow::ToString() const {
  return fmt::format("{:02}:{:02}-{:02}:{:02}", start / 60, start % 60, end / 60, end % 60);
}

bool IsGlob(std::string_view pattern) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;
    } else if (c == '*' || c == '?' || c == '[') {
      return true;
    }
  }
  return false;
}

Status ValidateGlob(std::string_view pattern) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format("'{}' is not a valid pattern: {}", pattern, why));
  };
  if (pattern.empty()) return bad("it is empty");
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      if (i + 1 == pattern.size()) return bad("it ends with '\\'");
      ++i;
      continue;
    }
    if (c != '[') continue;
    size_t j = i + 1;
    if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) ++j;
    const size_t first = j;
    bool closed = false;
    for (; j < pattern.size(); ++j) {
      if (pattern[j] == ']' && j != first) {
        closed = true;
        break;
      }
      if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
        if (static_cast<unsigned char>(pattern[j + 2]) < static_cast<unsigned char>(pattern[j])) {
          return bad(fmt::format("the range '{}-{}' is reversed", pattern[j], pattern[j + 2]));
        }
        j += 2;
      }
    }
    if (!closed) return bad(fmt::format("the '[' at position {} is not closed by ']'", i + 1));
    i = j;
  }
  return Status::OK();
}

bool GlobMatch(std::string_view pattern, std::string_view name) {
  return ::fnmatch(std::string(pattern).c_str(), std::string(name).c_str(), 0) == 0;
}

std::string_view HookEventName(HookEvent e) {
  switch (e) {
    case HookEvent::kPreSchedule:
      return "pre-schedule";
    case HookEvent::kPostSchedule:
      return "post-schedule";
    case HookEvent::kPreBackup:
      return "pre-backup";
    case HookEvent::kPostBackup:
      return "post-backup";
    case HookEvent::kPreSnapshot:
      return "pre-snapshot";
    case HookEvent::kPostSnapshot:
      return "post-snapshot";
    case HookEvent::kPreRestore:
      return "pre-restore";
    case HookEvent::kPostRestore:
      return "post-restore";
  }
  return "?";
}

const std::vector<std::string_view>& HookVariables(HookEvent e) {
  using V = std::vector<std::string_view>;
  static const V kPreSchedule = {"Repository"};
  static const V kPostSchedule = {"Repository", "Status"};
  static const V kPreBackup = {"Repository", "VM", "Tier"};
  static const V kPostBackup = {"Repository", "VM", "Tier", "Backup", "Status"};
  static const V kPreSnapshot = {"Repository", "VM", "Tier", "Method"};
  static const V kPostSnapshot = {"Repository", "VM", "Tier", "Method", "Status"};
  static const V kPreRestore = {"Repository", "VM", "Tier", "Backup", "Target"};
  static const V kPostRestore = {"Repository", "VM", "Tier", "Backup", "Target", "Status"};
  switch (e) {
    case HookEvent::kPreSchedule:
      return kPreSchedule;
    case HookEvent::kPostSchedule:
      return kPostSchedule;
    case HookEvent::kPreBackup:
      return kPreBackup;
    case HookEvent::kPostBackup:
      return kPostBackup;
    case HookEvent::kPreSnapshot:
      return kPreSnapshot;
    case HookEvent::kPostSnapshot:
      return kPostSnapshot;
    case HookEvent::kPreRestore:
      return kPreRestore;
    case HookEvent::kPostRestore:
      return kPostRestore;
  }
  return kPreSchedule;
}

const std::vector<std::string_view>& AllHookVariables() {
  static const std::vector<std::string_view> kAll = {"Repository", "VM",     "Tier",  "Backup",
                                                     "Method",     "Target", "Status"};
  return kAll;
}

std::vector<std::string> CheckHookArgument(std::string_view arg, HookEvent e) {
  std::vector<std::string> problems;
  const auto& allowed = HookVariables(e);
  for (size_t pos = arg.find("{{"); pos != std::string_view::npos; pos = arg.find("{{", pos)) {
    const size_t close = arg.find("}}", pos + 2);
    if (close == std::string_view::npos) {
      problems.push_back(fmt::format("'{{{{' without a closing '}}}}' in '{}'", arg));
      break;
    }
    const std::string_view name = arg.substr(pos + 2, close - pos - 2);
    pos = close + 2;
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    const auto& all = AllHookVariables();
    if (std::find(all.begin(), all.end(), name) != all.end()) {
      problems.push_back(fmt::format("{{{{{}}}}} is not available in {} hooks (they have {})", name,
                                     HookEventName(e), JoinVariables(allowed)));
      continue;
    }
    const std::string near = ClosestMatch(Trim(name), allowed);
    if (!near.empty()) {
      problems.push_back(
          fmt::format("unknown variable {{{{{}}}}} (did you mean {{{{{}}}}}?)", name, near));
    } else {
      problems.push_back(fmt::format("unknown variable {{{{{}}}}} ({} hooks have {})", name,
                                     HookEventName(e), JoinVariables(allowed)));
    }
  }
  return problems;
}

std::vector<std::string> ExpandHookArgv(const std::vector<std::string>& argv,
                                        const std::map<std::string, std::string>& values) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  for (const std::string& arg : argv) {
    std::string expanded;
    size_t pos = 0;
    while (true) {
      const size_t open = arg.find("{{", pos);
      const size_t close = open == std::string::npos ? open : arg.find("}}", open + 2);
      if (close == std::string::npos) {
        expanded.append(arg, pos, std::string::npos);
        break;
      }
      expanded.append(arg, pos, open - pos);
      const auto it = values.find(arg.substr(open + 2, close - open - 2));
      if (it != values.end()) expanded += it->second;
      pos = close + 2;
    }
    out.push_back(std::move(expanded));
  }
  return out;
}

std::string ClosestMatch(std::string_view word, const std::vector<std::string_view>& candidates) {
  const std::string w = Normalize(word);
  if (w.empty()) return "";
  const size_t limit = w.size() <= 4 ? 1 : w.size() <= 8 ? 2 : 3;
  std::string best;
  size_t best_distance = limit + 1;
  for (std::string_view c : candidates) {
    const size_t d = EditDistance(w, Normalize(c));
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  if (!best.empty()) return best;
  // "hook-timeout" for "timeout", "repo" for "repository".
  for (std::string_view c : candidates) {
    const std::string n = Normalize(c);
    if (n.size() >= 4 && w.size() >= 4 &&
        (w.find(n) != std::string::npos || n.find(w) != std::string::npos)) {
      return std::string(c);
    }
  }
  return "";
}

// A tag: 1 to 64 letters, digits, '-', '_' or '.'.
bool IsValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 64) return false;
  return std::all_of(tag.begin(), tag.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

// "someone@example.com": something before and after one '@', no spaces, control
// characters or the characters that would break a mail header.
bool IsValidEmailAddress(std::string_view a) {
  const size_t at = a.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size() ||
      a.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  return std::none_of(a.begin(), a.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"';
  });
}

// "" when `url` is smtp://[user[:password]@]host[:port][/] or smtps://...; else why not.
std::string SmtpUrlProblem(std::string_view url) {
  std::string_view rest;
  if (url.substr(0, 7) == "smtp://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "smtps://") {
    rest = url.substr(8);
  } else {
    return "it must start with smtp:// or smtps://";
  }
  if (std::any_of(url.begin(), url.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return "it may not contain spaces or control characters";
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return "it may not have a path";
  const size_t at = rest.rfind('@');
  std::string_view host = at == std::string_view::npos ? rest : rest.substr(at + 1);
  const size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    host = host.substr(0, colon);
    int p = 0;
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return "its port is not a number";
    }
    p = std::stoi(std::string(port));
    if (p < 1 || p > 65535) return "its port is out of range (1 to 65535)";
  }
  if (host.empty()) return "it names no host";
  return "";
}

// "10%" (1 to 100) of the origin, or a size with a unit: "512M", "4G", "1T".
bool IsValidSnapshotSize(std::string_view s) {
  if (s.size() < 2) return false;
  const std::string_view digits = s.substr(0, s.size() - 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      digits.size() > 9) {
    return false;
  }
  const int n = std::stoi(std::string(digits));
  const char unit = s.back();
  if (unit == '%') return n >= 1 && n <= 100;
  return n >= 1 && std::string_view("kKmMgGtT").find(unit) != std::string_view::npos;
}

// Whether `uri` looks like a libvirt URI: "driver[+transport]://[host]/path".
bool IsValidLibvirtUri(std::string_view uri) {
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  for (size_t i = 0; i < sep; ++i) {
    const char c = uri[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9' && i > 0) || c == '+';
    if (!ok) return false;
  }
  return std::none_of(uri.begin(), uri.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= 0x20; });
}

ConfigPath ResolveConfigPath(std::string_view flag, const char* env) {
  if (!flag.empty()) return {std::string(flag), ConfigPath::Origin::kFlag};
  if (env != nullptr && *env != '\0') return {env, ConfigPath::Origin::kEnvironment};
  return {kDefaultConfigPath, ConfigPath::Origin::kDefault};
}

ConfigPath ResolveConfigPath(std::string_view flag) {
  return ResolveConfigPath(flag, std::getenv("VMVAULT_CONFIG"));
}

}  // namespace vmvault::ingest
