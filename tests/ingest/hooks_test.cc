// Hooks with real processes: /bin/sh scripts written by the test are the hooks (the hook
// is a program; vmvault itself runs it without a shell). Output is checked in the log
// through an ostream sink that replaces the default logger for each test.
#include "ingest/hooks.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "base/file_util.h"
#include "ingest/subprocess.h"
#include "tests/temp_dir.h"

namespace vmvault::ingest {
namespace {

HookCommand Hook(std::vector<std::string> argv) {
  HookCommand c;
  c.argv = std::move(argv);
  return c;
}

using testing::TempDir;

class HooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    sink->set_pattern("%l %v");
    auto logger = std::make_shared<spdlog::logger>("hooks-test", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }

  // An executable /bin/sh script in the temporary directory.
  std::string Script(const std::string& name, const std::string& body) {
    const std::string path = dir_ / name;
    std::ofstream(path) << "#!/bin/sh\n" << body;
    ::chmod(path.c_str(), 0755);
    return path;
  }
  std::string Log() {
    spdlog::default_logger()->flush();
    return log_.str();
  }
  std::string Read(const std::string& name) {
    auto text = ReadFile(dir_ / name);
    return text.ok() ? *text : "<" + text.status().ToString() + ">";
  }

  TempDir dir_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(HooksTest, VariablesAreSubstitutedInsideArgumentsAndExported) {
  const std::string hook = Script("args.sh", "for a in \"$@\"; do echo \"[$a]\"; done > " +
                                                 (dir_ / "args") +
                                                 "\nenv | grep ^VMVAULT_ | sort > " +
                                                 (dir_ / "env") + "\n");
  const HookCommand cmd = Hook({hook, "{{VM}}", "--tier={{Tier}}", "{{Repository}}/x {{VM}}", "{{Unset}}"});
  const HookValues values = {{"VM", "web 01"}, {"Tier", "hot"}, {"Repository", "/srv/r"}};
  const HookResult r = RunHook(cmd, HookEvent::kPreBackup, values, std::chrono::seconds(30));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.exit_code, 0);
  // A value with a space stays one argument; a variable without a value is empty.
  EXPECT_EQ(Read("args"), "[web 01]\n[--tier=hot]\n[/srv/r/x web 01]\n[]\n");
  EXPECT_EQ(Read("env"),
            "VMVAULT_EVENT=pre-backup\nVMVAULT_REPOSITORY=/srv/r\nVMVAULT_TIER=hot\n"
            "VMVAULT_VM=web 01\n");
  EXPECT_EQ(r.argv[1], "web 01");
}

// No shell ever sees a hook's arguments or values: shell syntax in the configured
// arguments and in a hostile VM name reaches the program as literal text.
TEST_F(HooksTest, ShellSyntaxInArgumentsAndValuesIsPassedLiterally) {
  const std::string canary = dir_ / "canary";
  std::ofstream(canary) << "still here\n";
  const std::string hook = Script("args.sh", "for a in \"$@\"; do echo \"[$a]\"; done > " +
                                                 (dir_ / "args") + "\n");
  const std::string rm = "; rm -f " + canary;
  const HookCommand cmd = Hook({hook, rm, "$(rm -f " + canary + ")", "`rm -f " + canary + "`",
                                "{{VM}}", "a && rm -f " + canary + " | cat > /dev/null", "*"});
  const HookValues values = {{"VM", "x$(rm -f " + canary + ");rm -f " + canary}};
  const HookResult r = RunHook(cmd, HookEvent::kPreBackup, values, std::chrono::seconds(30));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Read("canary"), "still here\n");
  EXPECT_EQ(Read("args"), "[" + rm + "]\n[$(rm -f " + canary + ")]\n[`rm -f " + canary +
                              "`]\n[x$(rm -f " + canary + ");rm -f " + canary + "]\n[a && rm -f " +
                              canary + " | cat > /dev/null]\n[*]\n");
}

TEST_F(HooksTest, AVariableTheCallerLeftOutIsLogged) {
  const std::string hook = Script("true.sh", "exit 0\n");
  const HookCommand cmd = Hook({hook, "{{Backup}}"});
  const HookResult r =
      RunHook(cmd, HookEvent::kPostBackup, {{"VM", "a"}}, std::chrono::seconds(30));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_NE(Log().find("warning post-backup hook " + hook + ": no value for {{Backup}}"),
            std::string::npos)
      << Log();
}

TEST_F(HooksTest, OutputGoesToTheLogLineByLine) {
  const std::string hook =
      Script("talk.sh", "echo first line\necho second line\necho oops >&2\nprintf 'no newline'\n");
  const HookResult r =
      RunHook(Hook({hook}), HookEvent::kPostSchedule, {{"Status", "ok"}}, std::chrono::seconds(30));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  const std::string log = Log();
  const std::string prefix = "hook post-schedule " + hook + ": ";
  EXPECT_NE(log.find("info " + prefix + "first line\n"), std::string::npos) << log;
  EXPECT_NE(log.find("info " + prefix + "second line\n"), std::string::npos) << log;
  EXPECT_NE(log.find("warning " + prefix + "oops\n"), std::string::npos) << log;
  EXPECT_NE(log.find("info " + prefix + "no newline\n"), std::string::npos) << log;
}

TEST_F(HooksTest, AHookInheritsNoDescriptorButItsStandardStreams) {
  // A descriptor vmvault holds without close-on-exec, as libraries' descriptors may be
  // (the repository lock, a FUSE device): a hook that daemonizes must not keep it.
  const int null = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(null, 0);
  const int leaked = ::fcntl(null, F_DUPFD, 100);  // far from what the script opens itself
  ::close(null);
  ASSERT_GE(leaked, 100);
  const std::string hook = Script("fds.sh", "ls /proc/$$/fd > " + (dir_ / "fds") + "\n");
  const HookResult r = RunHook(Hook({hook}), HookEvent::kPreBackup, {}, std::chrono::seconds(30));
  ::close(leaked);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  std::istringstream fds(Read("fds"));
  std::vector<int> open;
  for (std::string line; std::getline(fds, line);) open.push_back(std::stoi(line));
  // The script's own descriptors: 0-2, the redirection of ls's output (ls lists the
  // shell's, not its own) and the script file sh reads its commands from.
  EXPECT_EQ(std::count(open.begin(), open.end(), leaked), 0) << Read("fds");
  EXPECT_LE(open.size(), 5u) << Read("fds");
}

TEST_F(HooksTest, AFailingExitCodeSaysWhichHookAndHow) {
  const std::string hook = Script("fail.sh", "echo cannot freeze >&2\nexit 3\n");
  const HookResult r = RunHook(Hook({hook, "{{VM}}"}), HookEvent::kPreBackup, {{"VM", "db01"}},
                               std::chrono::seconds(30));
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status.code(), StatusCode::kExternal);
  EXPECT_EQ(r.status.message(), "pre-backup hook " + hook + " failed: exit status 3");
  EXPECT_NE(Log().find("cannot freeze"), std::string::npos);
}

TEST_F(HooksTest, ASignalIsReported) {
  const std::string hook = Script("term.sh", "kill -TERM $$\nsleep 5\n");
  const HookResult r = RunHook(Hook({hook}), HookEvent::kPostBackup, {}, std::chrono::seconds(30));
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_NE(r.status.message().find("failed: killed by signal 15 (Terminated)"),
            std::string::npos)
      << r.status.ToString();
}

TEST_F(HooksTest, AMissingProgramIsNotFound) {
  const HookResult r = RunHook(Hook({dir_ / "no-such-hook"}), HookEvent::kPreRestore, {},
                               std::chrono::seconds(30));
  EXPECT_FALSE(r.started);
  EXPECT_EQ(r.status.code(), StatusCode::kNotFound);
  EXPECT_NE(r.status.message().find("pre-restore hook " + (dir_ / "no-such-hook") +
                                    " could not be run"),
            std::string::npos)
      << r.status.ToString();
}

// The PID is gone, or a zombie nobody reaped yet: either way it is not running.
bool Dead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

TEST_F(HooksTest, ATimeoutKillsTheHookAndItsChildren) {
  // The child keeps the output pipes open too; the whole group must die.
  const std::string hook =
      Script("hang.sh", "sleep 60 &\necho $! > " + (dir_ / "child.pid") + "\nwait\n");
  const auto start = std::chrono::steady_clock::now();
  const HookResult r =
      RunHook(Hook({hook}), HookEvent::kPreSnapshot, {}, std::chrono::milliseconds(500));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_EQ(r.status.message(),
            "pre-snapshot hook " + hook + " failed: still running after 0.5 s, killed");
  const pid_t child = std::atoi(Read("child.pid").c_str());
  ASSERT_GT(child, 0);
  bool dead = false;
  for (int i = 0; i < 500 && !(dead = Dead(child)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(dead) << "the hook's child " << child << " still runs";
  if (!dead) ::kill(child, SIGKILL);
}

TEST_F(HooksTest, APreEventStopsAtTheFirstFailureAPostEventRunsEveryCommand) {
  const std::string fail = Script("fail.sh", "exit 2\n");
  const std::string mark = Script("mark.sh", "echo \"$1\" >> " + (dir_ / "marks") + "\n");
  HooksConfig hooks;
  hooks.timeout = std::chrono::seconds(30);
  hooks.commands[static_cast<size_t>(HookEvent::kPreBackup)] = {Hook({fail}), Hook({mark, "pre"})};
  hooks.commands[static_cast<size_t>(HookEvent::kPostBackup)] = {Hook({fail}), Hook({mark, "post"})};

  const Status pre = RunHooks(hooks, HookEvent::kPreBackup, {});
  EXPECT_EQ(pre.message(), "pre-backup hook " + fail + " failed: exit status 2");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "marks"));

  const Status post = RunHooks(hooks, HookEvent::kPostBackup, {});
  EXPECT_EQ(post.message(), "post-backup hook " + fail + " failed: exit status 2");
  EXPECT_EQ(Read("marks"), "post\n");

  EXPECT_TRUE(RunHooks(hooks, HookEvent::kPreRestore, {}).ok());  // none configured
}

TEST_F(HooksTest, StdinTextSurvivesAProgramThatDoesNotReadIt) {
  // A program that exits without reading makes the writer get EPIPE; that must be
  // neither fatal (SIGPIPE) nor an error.
  ProcessOptions options;
  options.stdin_text = std::string(4 << 20, 'x');
  auto out = RunProcess({"true"}, options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->exit_code, 0);
  options.stdin_text = "through\nstdin\n";
  out = RunProcess({"cat"}, options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->stdout_text, "through\nstdin\n");
}

}  // namespace
}  // namespace vmvault::ingest
