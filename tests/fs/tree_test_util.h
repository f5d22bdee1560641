// Helpers shared by the tree tests (tree_test.cc, tree_layout_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fs/tree.h"
#include "tests/fs/fs_test_util.h"

namespace vmvault::fs::testing {

// The names in a directory node, sorted (as the tree keeps them).
inline std::vector<std::string> Names(const Node& dir) {
  std::vector<std::string> out;
  for (const auto& [name, ino] : dir.children) out.push_back(name);
  return out;
}

// A disk of `size` bytes, all data; `source_path` "" records /images/<name>.img.
inline DiskSpec Disk(std::string name, uint64_t size, std::string source_path = "") {
  DiskSpec d;
  d.name = std::move(name);
  d.size = size;
  d.source_path = std::move(source_path);
  return d;
}

}  // namespace vmvault::fs::testing
