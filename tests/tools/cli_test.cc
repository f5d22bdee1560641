#include "tools/cli.h"

#include <stdlib.h>

#include <gtest/gtest.h>

namespace vmvault::tools {
namespace {

TEST(CliTest, ParseSizeAcceptsSuffixes) {
  EXPECT_EQ(*ParseSize("65536"), 65536u);
  EXPECT_EQ(*ParseSize("64K"), 65536u);
  EXPECT_EQ(*ParseSize("1M"), 1u << 20);
  EXPECT_EQ(*ParseSize("4MiB"), 4u << 20);
  EXPECT_EQ(*ParseSize("2G"), 2ull << 30);
  for (const char* bad : {"", "M", "1X", "-1", "1.5M", "one", "18014398509481985K"}) {
    EXPECT_EQ(ParseSize(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CliTest, ExitCodesDistinguishWhatMonitoringNeeds) {
  EXPECT_EQ(ExitCodeFor(Status::OK()), kExitOk);
  EXPECT_EQ(ExitCodeFor(Status::FailedPrecondition("x")), kExitRepo);
  EXPECT_EQ(ExitCodeFor(Status::Corruption("x")), kExitRepo);
  EXPECT_EQ(ExitCodeFor(Status::Busy("x")), kExitBusy);
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("x")), kExitBadInput);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("x")), kExitBadInput);
  EXPECT_EQ(ExitCodeFor(Status::ReadOnly("x")), kExitReadOnly);
  EXPECT_EQ(ExitCodeFor(Status::NoSpace("x")), kExitNoSpace);
  EXPECT_EQ(ExitCodeFor(Status::IOError("x")), kExitError);
}

TEST(CliTest, RepoPathHonoursTheEnvironment) {
  ::setenv("VMVAULT_REPO", "/srv/backups", 1);
  EXPECT_EQ(DefaultRepoPath(), "/srv/backups");
  ::unsetenv("VMVAULT_REPO");
  EXPECT_FALSE(DefaultRepoPath().empty());
}

TEST(CliTest, EveryCommandIsInTheTable) {
  std::vector<std::string> names;
  for (const auto& c : Commands()) names.emplace_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"init", "ingest", "list", "mount", "restore"}));
}

}  // namespace
}  // namespace vmvault::tools
