#include "tools/cli.h"

#include <stdlib.h>

#include <gtest/gtest.h>

#include "store/retention.h"

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
  EXPECT_EQ(ExitCodeFor(Status::NotNow("x")), kExitNotNow);
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
  EXPECT_EQ(names, (std::vector<std::string>{"init", "ingest", "list", "mount", "restore", "verify",
                                           "prune", "gc", "scrub", "config", "schedule",
                                           "show-queue", "archive", "activate"}));
}

}  // namespace
}  // namespace vmvault::tools

namespace vmvault::tools {
namespace {

TEST(CliTest, PoliciesAreDescribedAsTheirOptions) {
  store::RetentionPolicy p;
  EXPECT_EQ(DescribePolicy(p), "keep everything");
  p.keep_last = 3;
  p.keep_weekly = 4;
  p.max_count = 20;
  p.max_age = std::chrono::days(90);
  EXPECT_EQ(DescribePolicy(p), "keep-last 3, keep-weekly 4, max-count 20, max-age 90d");
}

TEST(CliTest, SinceTakesDatesBackupNamesAndAges) {
  const int64_t now = int64_t{1795231800} * 1'000'000;  // 2026-11-21T03:30:00Z
  EXPECT_EQ(*ParseSince("2026-11-21T033000Z", now), now);
  EXPECT_EQ(*ParseSince("2026-11-21", now), now - (3 * 3600 + 1800) * int64_t{1'000'000});
  EXPECT_EQ(*ParseSince("2d", now), now - 2 * 86400 * int64_t{1'000'000});
  EXPECT_EQ(*ParseSince("12h", now), now - 12 * 3600 * int64_t{1'000'000});
  EXPECT_EQ(*ParseSince("1w", now), now - 7 * 86400 * int64_t{1'000'000});
  for (const char* bad : {"", "d", "-1d", "3x", "yesterday", "2026-13-01", "1000000d"}) {
    EXPECT_EQ(ParseSince(bad, now).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace vmvault::tools
