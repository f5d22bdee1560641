// How the reporting commands (list, show-backups, status) print: text, JSON or YAML,
// with byte counts exact or readable. The machine forms are one nlohmann::json tree;
// YAML is emitted from that same tree (through yaml-cpp, which only output.cc
// includes), so both carry the same fields and values.
//
// Plain functions; not thread-safe (they write to stdout).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace CLI {
class App;
}

namespace vmvault::tools {

struct OutputOptions {
  bool json = false;
  bool yaml = false;
  bool human = false;  // text: KiB/MiB/GiB instead of exact byte counts
  bool machine() const { return json || yaml; }
};

// Declares --json, --yaml (exclusive) and --human on `app`, into *options.
void AddOutputOptions(CLI::App& app, OutputOptions* options);

// A byte count for text output: "1048576", or with `human` "1.0 MiB".
std::string Bytes(uint64_t bytes, bool human);

// Rows as aligned columns, two spaces apart, the first row being the header; the last
// column is not padded. Each line ends in '\n'.
std::string Table(const std::vector<std::vector<std::string>>& rows);

// `doc` as YAML: mappings in block style, keys in the tree's order; strings that would
// read back as another type are quoted; null is `~`.
std::string ToYaml(const nlohmann::json& doc);

// Prints `doc` to stdout as JSON (indented) or YAML, as `options` asks.
// REQUIRES: options.machine().
Status PrintDocument(const nlohmann::json& doc, const OutputOptions& options);

}  // namespace vmvault::tools
