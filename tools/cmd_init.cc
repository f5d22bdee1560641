// vmvault init: create a repository.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "store/repository.h"
#include "tools/cli.h"

namespace vmvault::tools {

Command InitCommand() {
  return {"init", "Create a repository", [](CLI::App& app, GlobalOptions& global) {
            auto chunk_size = std::make_shared<std::string>("256K");
            auto level = std::make_shared<int>(store::kDefaultZstdLevel);
            app.add_option("--chunk-size", *chunk_size,
                           "Chunk size, a power of two from 64K to 4M (default 256K)");
            app.add_option("--zstd-level", *level, "zstd compression level, 1-19 (default 3)");
            return [&global, chunk_size, level]() -> Status {
              VV_ASSIGN_OR_RETURN(uint64_t cs, ParseSize(*chunk_size));
              store::RepoConfig config;
              if (cs > store::kMaxChunkSize) {
                return Status::InvalidArgument(fmt::format(
                    "chunk size {} is not a power of two from 64 KiB to 4 MiB", *chunk_size));
              }
              config.chunk_size = static_cast<uint32_t>(cs);
              config.zstd_level = *level;
              VV_RETURN_IF_ERROR(store::Repository::Init(global.repo, config));
              if (!global.quiet) {
                fmt::print("Created repository {} (chunk size {}, zstd level {})\n", global.repo,
                           *chunk_size, *level);
              }
              return Status::OK();
            };
          }};
}

}  // namespace vmvault::tools
