// Private to the configuration parser (config_toml.cc and config_sources.cc, the only
// files that include this, and so toml++): Reader, which reads typed values out of toml++
// tables and records every problem with its place, and the helpers both files share.
// A Reader appends to a vector of errors the caller owns; it is not thread-safe.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "base/names.h"
#include "ingest/config.h"

namespace vmvault::ingest::config_internal {

using Names = std::vector<std::string_view>;
// Strings read from the file, each with its place.
using PlacedStrings = std::vector<std::pair<std::string, ConfigLocation>>;

inline ConfigLocation At(const toml::source_region& r) {
  return {static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}
inline ConfigLocation At(const toml::node& n) { return At(n.source()); }

inline std::string_view TypeName(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

inline std::string Join(const Names& names, std::string_view sep = ", ") {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += sep;
    out += n;
  }
  return out;
}

// "a", "a and b", "a, b and c".
inline std::string JoinAnd(const Names& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

inline bool Contains(const Names& names, std::string_view n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

inline bool IsAbsolute(std::string_view p) { return !p.empty() && p.front() == '/'; }

inline const Names kTopScalarKeys = {"repository", "period", "nice", "ionice"};
inline const Names kTiers = {"hot", "warm", "cold"};
inline const Names kPeriods = {"day", "week", "month", "quarter", "half", "year"};

// Reads typed values out of tables and records every problem with its place.
class Reader {
 public:
  explicit Reader(std::vector<ConfigError>* errors) : errors_(errors) {}

  void Error(ConfigLocation at, std::string message) {
    errors_->push_back({at, std::move(message)});
  }
  void Error(const toml::node& n, std::string message) { Error(At(n), std::move(message)); }

  // Reports every key of `t` that is not in `known`, naming the closest known key.
  // `where` describes the table: "in [schedule]".
  void CheckKeys(const toml::table& t, std::string_view where, const Names& known) {
    for (auto&& [key, node] : t) {
      if (Contains(known, key.str())) continue;
      UnknownKey(key, where, known);
    }
  }

  void UnknownKey(const toml::key& key, std::string_view where, const Names& known) {
    std::string msg = fmt::format("unknown key '{}' {}", Printable(key.str()), where);
    const std::string near = ClosestMatch(key.str(), known);
    if (!near.empty()) {
      msg += fmt::format(" (did you mean '{}'?)", near);
    } else if (Contains(kTopScalarKeys, key.str()) && where != "at the top level") {
      msg += fmt::format(
          " ('{}' is a top-level key: keys after a [table] header belong to that table, so "
          "put top-level keys above the first header)",
          key.str());
    }
    Error(At(key.source()), std::move(msg));
  }

  // t[key] if it is of type `type`; reports any other type.
  const toml::node* Get(const toml::table& t, std::string_view key, std::string_view name,
                        toml::node_type type) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    if (n->type() != type) {
      Error(*n, fmt::format("{}: expected {}, not {}", name, TypeName(type), TypeName(n->type())));
      return nullptr;
    }
    return n;
  }

  std::optional<std::string> String(const toml::table& t, std::string_view key,
                                    std::string_view name) {
    const toml::node* n = Get(t, key, name, toml::node_type::string);
    if (n == nullptr) return std::nullopt;
    return n->as_string()->get();
  }

  std::optional<int64_t> Integer(const toml::table& t, std::string_view key, std::string_view name,
                                 int64_t min, int64_t max) {
    const toml::node* n = Get(t, key, name, toml::node_type::integer);
    if (n == nullptr) return std::nullopt;
    const int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      Error(*n, fmt::format("{}: {} is out of range ({} to {})", name, v, min, max));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> Bool(const toml::table& t, std::string_view key, std::string_view name) {
    const toml::node* n = Get(t, key, name, toml::node_type::boolean);
    if (n == nullptr) return std::nullopt;
    return n->as_boolean()->get();
  }

  // A duration string of at least `min`.
  std::optional<Seconds> Duration(const toml::table& t, std::string_view key, std::string_view name,
                                  Seconds min) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (n->is_integer()) {
      Error(*n, fmt::format("{}: write a duration as a string with a unit, such as \"{}s\"", name,
                            n->as_integer()->get()));
      return std::nullopt;
    }
    auto s = String(t, key, name);
    if (!s) return std::nullopt;
    auto d = ParseDuration(*s);
    if (!d.ok()) {
      Error(*n, fmt::format("{}: {}", name, d.status().message()));
      return std::nullopt;
    }
    if (*d < min) {
      Error(*n, fmt::format("{}: '{}' is too short (at least {})", name, *s, FormatDuration(min)));
      return std::nullopt;
    }
    return *d;
  }

  // An array of strings, each with its place. Reports another type, or an element
  // that is not a string.
  std::optional<PlacedStrings> Strings(const toml::table& t, std::string_view key,
                                       std::string_view name) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (n->is_string()) {
      Error(*n, fmt::format("{}: expected an array of strings: write [\"{}\"]", name,
                            Printable(n->as_string()->get())));
      return std::nullopt;
    }
    n = Get(t, key, name, toml::node_type::array);
    if (n == nullptr) return std::nullopt;
    return StringElements(*n->as_array(), name);
  }

  std::optional<PlacedStrings> StringElements(const toml::array& a, std::string_view name) {
    PlacedStrings out;
    bool ok = true;
    for (const toml::node& e : a) {
      if (!e.is_string()) {
        Error(e, fmt::format("{}: expected strings, not {}", name, TypeName(e.type())));
        ok = false;
        continue;
      }
      out.emplace_back(e.as_string()->get(), At(e));
    }
    if (!ok) return std::nullopt;
    return out;
  }

  const toml::table* Table(const toml::table& t, std::string_view key, std::string_view name) {
    const toml::node* n = Get(t, key, name, toml::node_type::table);
    return n == nullptr ? nullptr : n->as_table();
  }

  // `value` when it is one of `options`; else reports it with the closest option.
  bool OneOf(const toml::node& n, std::string_view name, std::string_view value,
             const Names& options, std::string_view what) {
    if (Contains(options, value)) return true;
    std::string msg = fmt::format("{}: unknown {} '{}'", name, what, Printable(value));
    const std::string near = ClosestMatch(value, options);
    if (!near.empty()) msg += fmt::format(" (did you mean '{}'?)", near);
    msg += fmt::format("; one of {}", Join(options));
    Error(n, std::move(msg));
    return false;
  }

  // A period name: day, week, month, quarter, half or year.
  std::optional<Period> PeriodValue(const toml::table& t, std::string_view key,
                                    std::string_view name) {
    auto s = String(t, key, name);
    if (!s || !OneOf(*t.get(key), name, *s, kPeriods, "period")) return std::nullopt;
    return ParsePeriod(*s);
  }

  // tags = [...]: each a valid tag (config_values.h), with its place.
  std::optional<PlacedStrings> Tags(const toml::table& t, std::string_view name) {
    auto tags = Strings(t, "tags", name);
    if (!tags) return std::nullopt;
    PlacedStrings out;
    for (auto& [tag, at] : *tags) {
      if (!IsValidTag(tag)) {
        Error(at, fmt::format("{}: '{}' is not a tag: use 1 to 64 letters, digits, '-', '_' "
                              "or '.'",
                              name, Printable(tag)));
        continue;
      }
      out.emplace_back(std::move(tag), at);
    }
    return out;
  }

 private:
  std::vector<ConfigError>* errors_;
};

// Reads the [[source]] array of tables into *sources (one per table that has a valid
// kind), and reports bad values and duplicate sources.
void ReadSources(Reader& r, const toml::node& node, std::vector<SourceConfig>* sources);

}  // namespace vmvault::ingest::config_internal
