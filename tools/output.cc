#include "tools/output.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/progress.h"

namespace vmvault::tools {
namespace {

void Emit(const nlohmann::json& j, YAML::Emitter& out) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      if (j.empty()) out << YAML::Flow;  // {} rather than an empty block
      out << YAML::BeginMap;
      for (const auto& [key, value] : j.items()) {
        out << YAML::Key << key << YAML::Value;
        Emit(value, out);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      if (j.empty()) out << YAML::Flow;  // []
      out << YAML::BeginSeq;
      for (const auto& value : j) Emit(value, out);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      // Quoted, so "2026-11-21" or "yes" read back as strings.
      out << YAML::DoubleQuoted << j.get_ref<const std::string&>();
      break;
    case nlohmann::json::value_t::boolean:
      out << j.get<bool>();
      break;
    case nlohmann::json::value_t::number_unsigned:
      out << j.get<uint64_t>();
      break;
    case nlohmann::json::value_t::number_integer:
      out << j.get<int64_t>();
      break;
    case nlohmann::json::value_t::number_float:
      out << j.get<double>();
      break;
    default:
      out << YAML::Null;
      break;
  }
}

}  // namespace

void AddOutputOptions(CLI::App& app, OutputOptions* options) {
  CLI::Option* json = app.add_flag("--json", options->json, "Print JSON (sizes in bytes)");
  app.add_flag("--yaml", options->yaml, "Print YAML, the same fields as --json")->excludes(json);
  app.add_flag("--human", options->human,
               "Print sizes in KiB, MiB, GiB (default: exact byte counts)");
}

std::string Bytes(uint64_t bytes, bool human) {
  return human ? HumanBytes(bytes) : std::to_string(bytes);
}

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += c + 1 == row.size() ? row[c] : fmt::format("{:<{}}  ", row[c], width[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
  }
  return out;
}

std::string ToYaml(const nlohmann::json& doc) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetDoublePrecision(16);  // 0.041253, not 0.041252999999999998
  Emit(doc, out);
  std::string text = out.c_str();
  text += '\n';
  return text;
}

Status PrintDocument(const nlohmann::json& doc, const OutputOptions& options) {
  const std::string text =
      options.yaml ? ToYaml(doc)
                   : doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    return Status::IOError("cannot write to standard output");
  }
  return Status::OK();
}

}  // namespace vmvault::tools
