#include "tools/cli.h"

#include <stdlib.h>

#include <fstream>

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "store/retention.h"
#include "tests/temp_dir.h"
#include "tools/app.h"
#include "tools/logging.h"
#include "tools/output.h"

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
  EXPECT_EQ(ExitCodeFor(Status::Behind("x")), kExitBehind);
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
  EXPECT_EQ(names, (std::vector<std::string>{"init", "ingest", "list", "show-backups", "status",
                                             "mount", "restore", "verify", "prune", "gc", "scrub",
                                             "config", "schedule", "show-queue", "archive",
                                             "activate"}));
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

namespace vmvault::tools {
namespace {

// Parses `args` as the command line; the exit code CLI11 gives, 0 when it parsed.
int Parse(std::vector<std::string> args, GlobalOptions* global = nullptr) {
  GlobalOptions g;
  std::function<Status()> run;
  auto app = MakeApp(global != nullptr ? *global : g, run);
  args.insert(args.begin(), "vmvault");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app->parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.get_exit_code();
  }
  return 0;
}

TEST(CliTest, ReportingCommandsTakeOneMachineFormat) {
  EXPECT_EQ(Parse({"status", "--json"}), 0);
  EXPECT_EQ(Parse({"status", "--yaml", "--human", "--config", "/x.toml"}), 0);
  EXPECT_NE(Parse({"status", "--json", "--yaml"}), 0);
  EXPECT_EQ(Parse({"list", "web", "--yaml"}), 0);
  EXPECT_EQ(Parse({"show-backups", "web", "--human"}), 0);
  EXPECT_NE(Parse({"show-backups"}), 0) << "the VM is required";
}

TEST(CliTest, LoggingOptionsAreOnEveryCommand) {
  GlobalOptions g;
  ASSERT_EQ(Parse({"gc", "--log-file", "/var/log/vmvault.log", "--log-level", "debug"}, &g), 0);
  EXPECT_EQ(g.log.file, "/var/log/vmvault.log");
  EXPECT_EQ(g.log.level, "debug");
  GlobalOptions s;
  ASSERT_EQ(Parse({"schedule", "--syslog"}, &s), 0);
  EXPECT_TRUE(s.log.syslog);
  EXPECT_NE(Parse({"gc", "--syslog", "--log-file", "/tmp/x"}), 0);
  EXPECT_NE(Parse({"prune", "--log-level", "loud"}), 0);
}

TEST(CliTest, LoggingChoosesTheSinksTheOptionsAndTheConfigurationName) {
  auto sinks = [] { return spdlog::default_logger()->sinks(); };
  auto has = [&]<typename T>(T*) {
    for (const auto& s : sinks()) {
      if (std::dynamic_pointer_cast<T>(s)) return true;
    }
    return false;
  };
  using FileSink = spdlog::sinks::basic_file_sink_mt;
  using SyslogSink = spdlog::sinks::syslog_sink_mt;
  GlobalOptions g;
  ASSERT_TRUE(ConfigureLogging(g, nullptr).ok());
  EXPECT_EQ(sinks().size(), 1u) << "stderr only";

  ingest::LogConfig config;  // syslog by default
  ASSERT_TRUE(ConfigureLogging(g, &config).ok());
  EXPECT_TRUE(has(static_cast<SyslogSink*>(nullptr)));

  vmvault::testing::TempDir tmp;
  config.target = ingest::LogConfig::Target::kFile;
  config.file = tmp / "from-config.log";
  config.level = "warning";
  ASSERT_TRUE(ConfigureLogging(g, &config).ok());
  EXPECT_TRUE(has(static_cast<FileSink*>(nullptr)));
  spdlog::info("not at warning");
  spdlog::warn("a warning");
  std::ifstream in(config.file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("not at warning"), std::string::npos);
  EXPECT_NE(text.find("] warning: a warning"), std::string::npos) << text;

  g.log.syslog = true;  // the command line wins over the file
  ASSERT_TRUE(ConfigureLogging(g, &config).ok());
  EXPECT_TRUE(has(static_cast<SyslogSink*>(nullptr)));
  EXPECT_FALSE(has(static_cast<FileSink*>(nullptr)));

  GlobalOptions bad;
  std::ofstream(tmp / "plain") << "a file, not a directory\n";
  bad.log.file = tmp / "plain/log";
  Status s = ConfigureLogging(bad, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_NE(s.message().find("cannot open the log file"), std::string::npos);
  ASSERT_TRUE(ConfigureLogging(GlobalOptions(), nullptr).ok());
}

TEST(CliTest, YamlHoldsTheJsonTree) {
  const nlohmann::json doc = {{"name", "web"},
                              {"time", "2026-11-21"},
                              {"yes", "yes"},
                              {"bytes", uint64_t{1} << 40},
                              {"neg", -3},
                              {"ratio", 0.25},
                              {"seconds", 0.041253},
                              {"ok", true},
                              {"none", nullptr},
                              {"list", {1, "two", nullptr}},
                              {"empty", nlohmann::json::array()},
                              {"nested", {{"a", {{"b", "c: d"}}}}}};
  const YAML::Node y = YAML::Load(ToYaml(doc));
  EXPECT_EQ(y["name"].as<std::string>(), "web");
  EXPECT_EQ(y["time"].as<std::string>(), "2026-11-21");
  EXPECT_EQ(y["yes"].Tag(), "!") << "quoted, so it stays a string";
  EXPECT_EQ(y["bytes"].as<uint64_t>(), uint64_t{1} << 40);
  EXPECT_EQ(y["neg"].as<int>(), -3);
  EXPECT_DOUBLE_EQ(y["ratio"].as<double>(), 0.25);
  EXPECT_DOUBLE_EQ(y["seconds"].as<double>(), 0.041253);
  EXPECT_NE(ToYaml(doc).find("seconds: 0.041253\n"), std::string::npos) << ToYaml(doc);
  EXPECT_NE(ToYaml(doc).find("empty: []\n"), std::string::npos) << ToYaml(doc);
  EXPECT_TRUE(y["ok"].as<bool>());
  EXPECT_TRUE(y["none"].IsNull());
  EXPECT_EQ(y["list"][1].as<std::string>(), "two");
  EXPECT_TRUE(y["list"][2].IsNull());
  EXPECT_TRUE(y["empty"].IsSequence());
  EXPECT_EQ(y["empty"].size(), 0u);
  EXPECT_EQ(y["nested"]["a"]["b"].as<std::string>(), "c: d");
}

TEST(CliTest, TablesAlignTheirColumns) {
  EXPECT_EQ(Table({{"VM", "SIZE", "NOTE"}, {"web01", "5", ""}, {"db", "123456", "late"}}),
            "VM     SIZE    NOTE\nweb01  5\ndb     123456  late\n");
  EXPECT_EQ(Bytes(1536, false), "1536");
  EXPECT_EQ(Bytes(1536, true), "1.5 KiB");
}

}  // namespace
}  // namespace vmvault::tools
