// `vmvault config check` through the binary: what it prints and its exit codes. Needs no
// root, so it is a unit-labelled binary of its own (cli_config_test).
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace vmvault::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kExitUsage = 2, kExitBadInput = 5;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class ConfigCheckTest : public ::testing::Test {
 protected:
  // Writes `text` to a file in the temporary directory and returns its path.
  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = tmp_ / name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }

  RunResult Check(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv{VmvaultPath(), "config", "check"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCmd(argv, env);
  }

  // A configuration this host agrees with: no warnings.
  std::string GoodConfig() {
    Sh("mkdir -p " + (tmp_ / "repo") + " && touch " + (tmp_ / "repo/vmvault.json") + " " +
       (tmp_ / "web01.qcow2"));
    return "repository = \"" + (tmp_ / "repo") + R"("

[schedule]
window = "22:00-06:00"
concurrency = 2

[[source]]
kind = "domain"
name = ["web*", "db01"]
tier = "hot"
tags = ["prod"]

[[source]]
kind = "file"
paths = [")" +
           (tmp_ / "web01.qcow2") +
           R"("]

[retention.default]
keep-daily = 7

[hooks]
post-backup = ["/bin/true", "{{VM}}", "{{Status}}"]
)";
  }

  TempDir tmp_;
};

TEST_F(ConfigCheckTest, AGoodFileIsOkWithASummary) {
  const std::string path = Write("config.toml", GoodConfig());
  RunResult r = Check({"--config", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // nothing to warn about
  const auto out = Lines(r.out);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0], path + ": OK");
  EXPECT_THAT(r.out, HasSubstr("repository: " + (tmp_ / "repo") + "\n"));
  EXPECT_THAT(r.out, HasSubstr("window 22:00-06:00 (8h, across midnight), 2 at a time"));
  EXPECT_THAT(r.out, HasSubstr("sources:    2\n"));
  EXPECT_THAT(r.out, HasSubstr("  line 7: domain web*, db01 on qemu:///system; hot; tags prod\n"));
  EXPECT_THAT(r.out, HasSubstr("  line 13: file web01: " + (tmp_ / "web01.qcow2")));
  EXPECT_THAT(r.out, HasSubstr("retention:  default: keep-daily 7"));
  EXPECT_THAT(r.out, HasSubstr("hooks:      post-backup; timeout 5m"));

  // -q: nothing at all; options after `check` in any order.
  r = Check({"-q", "--config", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
}

TEST_F(ConfigCheckTest, EveryProblemWithItsLineAndExitCode5) {
  const std::string path = Write("bad.toml", R"(repository = "relative"

[schedule]
window = "22:00-22:00"
concurency = 2

[[source]]
kind = "domain"
name = "web*"

[[source]]
kind = "domain"
name = "web*"

[hooks]
pre-backup = ["freeze", "{{vm}}"]
)");
  RunResult r = Check({"--config", path});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(Lines(r.err),
              ::testing::ElementsAre(
                  path + ":1:14: repository: 'relative' is not an absolute path",
                  StartsWith(path + ":4:10: schedule.window: the window '22:00-22:00' starts "
                                    "when it ends"),
                  path + ":5:1: unknown key 'concurency' in [schedule] (did you mean "
                         "'concurrency'?)",
                  path + ":13:8: duplicate source: the domain 'web*' on qemu:///system is "
                         "already backed up by the source at line 7",
                  StartsWith(path + ":16:15: hooks.pre-backup: the program 'freeze' is not an "
                                    "absolute path"),
                  path + ":16:25: hooks.pre-backup: unknown variable {{vm}} (did you mean "
                         "{{VM}}?)",
                  "vmvault: Invalid argument: " + path + ": 6 errors"));
  // -q does not hide problems.
  r = Check({"--config", path, "-q"});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_EQ(Lines(r.err).size(), 7u);
}

TEST_F(ConfigCheckTest, SyntaxError) {
  const std::string path = Write("syntax.toml", "[schedule]\nwindow = \"22:00-06:00\n");
  RunResult r = Check({"--config", path});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_THAT(Lines(r.err),
              ::testing::ElementsAre(StartsWith(path + ":2:"),
                                     "vmvault: Invalid argument: " + path + ": 1 error"));
  EXPECT_THAT(r.err, HasSubstr("syntax error"));
}

TEST_F(ConfigCheckTest, MissingOrUnreadableFiles) {
  RunResult r = Check({"--config", tmp_ / "absent.toml"});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("no configuration file at " + (tmp_ / "absent.toml") +
                               " (given with --config)"));
  // VMVAULT_CONFIG when there is no --config.
  r = Check({}, {"VMVAULT_CONFIG=" + (tmp_ / "from-env.toml")});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr((tmp_ / "from-env.toml") + " (from $VMVAULT_CONFIG)"));
  const std::string env_file = Write("env.toml", "");
  r = Check({}, {"VMVAULT_CONFIG=" + env_file});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith(env_file + ": OK\n"));
  // --config wins over VMVAULT_CONFIG.
  r = Check({"--config", env_file}, {"VMVAULT_CONFIG=" + (tmp_ / "absent.toml")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The default, named as such.
  if (::access("/etc/vmvault/config.toml", F_OK) != 0) {
    r = Check({}, {"VMVAULT_CONFIG="});
    EXPECT_EQ(r.exit_code, kExitBadInput);
    EXPECT_THAT(r.err, HasSubstr("no configuration file at /etc/vmvault/config.toml (the "
                                 "default: give --config PATH or set VMVAULT_CONFIG)"));
  }
  // A directory.
  r = Check({"--config", tmp_.path()});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("is a directory"));
}

TEST_F(ConfigCheckTest, Usage) {
  EXPECT_EQ(RunCmd({VmvaultPath(), "config"}).exit_code, kExitUsage);
  EXPECT_EQ(RunCmd({VmvaultPath(), "config", "frobnicate"}).exit_code, kExitUsage);
  EXPECT_EQ(Check({"--bogus"}).exit_code, kExitUsage);
  EXPECT_EQ(Check({"--config"}).exit_code, kExitUsage);
  RunResult h = Check({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_THAT(h.out, HasSubstr("--config"));
  h = RunCmd({VmvaultPath(), "config", "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_THAT(h.out, HasSubstr("check"));
  h = RunCmd({VmvaultPath(), "--help"});
  EXPECT_THAT(h.out, HasSubstr("config"));
}

TEST_F(ConfigCheckTest, WarnsAboutWhatTheHostContradicts) {
  const std::string path = Write("warn.toml", R"(repository = ")" + (tmp_ / "no-repo") + R"("

[[source]]
kind = "file"
paths = [")" + (tmp_ / "missing.qcow2") + R"("]

[hooks]
pre-backup = ["/nonexistent/freeze", "{{VM}}"]

[alerts]
to = ["ops@example.com"]
smtp-url = "smtp://vmvault:secret@mail.example.com"
)",
                                 0644);
  RunResult r = Check({"--config", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;  // warnings do not fail the check
  EXPECT_THAT(r.out, StartsWith(path + ": OK\n"));
  EXPECT_THAT(
      Lines(r.err),
      ::testing::ElementsAre(
          path + ": warning: there is no repository at " + (tmp_ / "no-repo") +
              " yet (vmvault init --repo " + (tmp_ / "no-repo") + ")",
          path + ":3:1: warning: file source: " + (tmp_ / "missing.qcow2") + " does not exist",
          path + ":8:14: warning: hooks.pre-backup: /nonexistent/freeze is not an "
                 "executable file",
          path + ": warning: alerts.smtp-url holds a password, and every user can read " + path +
              " (chmod 600 it)"));
}

TEST_F(ConfigCheckTest, TestAlertGoesThroughSendmail) {
  // A sendmail that keeps its arguments and the message.
  const std::string sendmail = Write("sendmail",
                                     "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + (tmp_ / "args") +
                                         "\ncat > " + (tmp_ / "message") + "\n",
                                     0755);
  const std::string path = Write("alerts.toml", "[alerts]\nto = [\"ops@example.com\"]\n"
                                                "from = \"vmvault@example.com\"\nsendmail = \"" +
                                                    sendmail + "\"\n");
  RunResult r = RunCmd({VmvaultPath(), "config", "test-alert", "--config", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("sent a test message from vmvault@example.com to ops@example.com"));
  EXPECT_EQ(Slurp(tmp_ / "args"), "-oi\n-f\nvmvault@example.com\n--\nops@example.com\n");
  const std::string message = Slurp(tmp_ / "message");
  EXPECT_THAT(message, HasSubstr("To: ops@example.com"));
  EXPECT_THAT(message, HasSubstr("Subject: [vmvault] test message from "));
  EXPECT_THAT(message, HasSubstr("vmvault config test-alert"));

  // A failing sendmail is an error naming it; no alerts configured is a clear error.
  const std::string failing = Write("failing", "#!/bin/sh\necho 'no route' >&2\nexit 75\n", 0755);
  const std::string bad = Write("bad.toml", "[alerts]\nto = [\"ops@example.com\"]\nsendmail = \"" +
                                                failing + "\"\n");
  RunResult f = RunCmd({VmvaultPath(), "config", "test-alert", "--config", bad});
  EXPECT_NE(f.exit_code, 0);
  EXPECT_THAT(f.err, HasSubstr(failing));
  const std::string none = Write("none.toml", "");
  RunResult n = RunCmd({VmvaultPath(), "config", "test-alert", "--config", none});
  EXPECT_EQ(n.exit_code, kExitBadInput);
  EXPECT_THAT(n.err, HasSubstr("sends no alerts"));
}

}  // namespace
}  // namespace vmvault::testing
