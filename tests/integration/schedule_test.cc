// vmvault schedule, show-queue, archive and activate, end to end over VMs made of small
// image files (file sources in a configuration file this test writes): every VM backed
// up in queue order, a second run that does nothing until a file changes, the reasons
// show-queue gives, archive and activate, the refusal outside the backup window, and
// the busy message while another writer holds the repository.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"
#include "tests/smtp_sink.h"

namespace vmvault::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kExitBusy = 4, kExitNotNow = 8;

class ScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_ / "repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_, "--chunk-size", "64K"}).exit_code, 0);
    for (const std::string vm : {"alpha", "bravo", "charlie"}) {
      const std::string image = tmp_ / (vm + ".raw");
      ASSERT_EQ(Sh("truncate -s 4M " + image + " && head -c 256K /dev/urandom | dd of=" + image +
                   " conv=notrunc status=none"),
                0);
    }
    WriteConfig("");
  }

  // Three file sources, then a disabled one and one outside the tag filter. `top` goes
  // before the first table, `tables` after the sources.
  void WriteConfig(const std::string& schedule_extra, const std::string& top = "",
                   const std::string& tables = "") {
    std::ofstream out(config_);
    out << top << "\nrepository = \"" << repo_ << "\"\n[schedule]\ntags = [\"prod\"]\n"
        << schedule_extra << "\n";
    for (const std::string vm : {"charlie", "alpha", "bravo"}) {
      out << "[[source]]\nkind = \"file\"\npaths = [\"" << tmp_ / (vm + ".raw")
          << "\"]\ntier = \"hot\"\ntags = [\"prod\"]\n";
    }
    out << "[[source]]\nkind = \"file\"\nvm = \"off\"\npaths = [\"" << tmp_ / "off.raw"
        << "\"]\nenabled = false\n";
    out << "[[source]]\nkind = \"file\"\nvm = \"test\"\npaths = [\"" << tmp_ / "test.raw"
        << "\"]\ntags = [\"test\"]\n";
    out << tables;
  }

  // A shell script at tmp_/name.
  std::string Script(const std::string& name, const std::string& body) {
    const std::string path = tmp_ / name;
    std::ofstream(path) << "#!/bin/sh\n" << body;
    ::chmod(path.c_str(), 0755);
    return path;
  }

  RunResult Vmvault(const std::string& cmd, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{VmvaultPath(), cmd, "--config", config_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCmd(argv);
  }

  // show-queue --json: vm -> entry.
  std::map<std::string, nlohmann::json> Queue() {
    RunResult r = Vmvault("show-queue", {"--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, nlohmann::json> out;
    const nlohmann::json all = nlohmann::json::parse(r.out);
    for (const auto& e : all["vms"]) out[e["vm"]] = e;
    return out;
  }

  // Backup ids by VM (each VM's newest), and the count of all backups.
  std::map<std::string, uint64_t> Latest(size_t* total = nullptr) {
    std::map<std::string, uint64_t> out;
    if (total) *total = 0;
    for (const auto& vm : ListJson(repo_)) {
      out[vm["name"]] = vm["backups"].back()["id"];
      if (total) *total += vm["backups"].size();
    }
    return out;
  }

  TempDir tmp_;
  std::string repo_;
  std::string config_ = tmp_ / "config.toml";
};

TEST_F(ScheduleTest, BacksUpDueVmsInOrderAndThenNothingUntilAChange) {
  auto q = Queue();
  EXPECT_EQ(q["charlie"]["reason"], "never backed up");
  EXPECT_EQ(q["charlie"]["position"], 1);
  EXPECT_EQ(q["alpha"]["position"], 2);
  EXPECT_EQ(q["bravo"]["position"], 3);
  EXPECT_EQ(q["off"]["reason"], "disabled");
  EXPECT_EQ(q["test"]["reason"], "outside tag filter (prod)");

  RunResult r = Vmvault("schedule");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // silent under cron
  size_t total = 0;
  auto ids = Latest(&total);
  EXPECT_EQ(total, 3u);
  EXPECT_EQ(ids.count("off") + ids.count("test"), 0u);
  EXPECT_LT(ids["charlie"], ids["alpha"]);  // the order of the queue
  EXPECT_LT(ids["alpha"], ids["bravo"]);
  q = Queue();
  EXPECT_EQ(q["alpha"]["state"], "CLEAN");
  EXPECT_THAT(q["alpha"]["reason"].get<std::string>(),
              HasSubstr("interval 1d; next due in"));
  EXPECT_EQ(q["alpha"]["due"], false);

  // Nothing changed: nothing to do.
  r = Vmvault("schedule");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Latest(&total);
  EXPECT_EQ(total, 3u);

  // One file changes: only its VM is backed up.
  ASSERT_EQ(Sh("head -c 64K /dev/urandom | dd of=" + std::string(tmp_ / "bravo.raw") +
               " bs=64K seek=10 conv=notrunc status=none"),
            0);
  q = Queue();
  EXPECT_EQ(q["bravo"]["due"], true);
  EXPECT_THAT(q["bravo"]["reason"].get<std::string>(), HasSubstr("bravo.raw changed since the last backup"));
  r = Vmvault("schedule");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto after = Latest(&total);
  EXPECT_EQ(total, 4u);
  EXPECT_GT(after.at("bravo"), ids["bravo"]);
  EXPECT_EQ(after.at("alpha"), ids["alpha"]);
}

TEST_F(ScheduleTest, ArchivedVmsAreSkippedUntilActivated) {
  RunResult r = Vmvault("archive", {"alpha"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Queue()["alpha"]["reason"], "archived");
  ASSERT_EQ(Vmvault("schedule").exit_code, 0);
  auto ids = Latest();
  EXPECT_EQ(ids.count("alpha"), 0u);
  EXPECT_EQ(ids.count("bravo"), 1u);
  r = Vmvault("archive", {"nosuchvm"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.err, HasSubstr("no VM named 'nosuchvm'"));

  ASSERT_EQ(Vmvault("activate", {"alpha"}).exit_code, 0);
  auto q = Queue();
  EXPECT_EQ(q["alpha"]["reason"], "never backed up");
  EXPECT_EQ(q["alpha"]["position"], 1);
  ASSERT_EQ(Vmvault("schedule").exit_code, 0);
  EXPECT_EQ(Latest().count("alpha"), 1u);
}

TEST_F(ScheduleTest, OutsideTheWindowItRefusesAndSaysWhenItOpens) {
  // A one-hour window starting two hours from now, local time.
  const time_t now = ::time(nullptr);
  struct tm local {};
  ::localtime_r(&now, &local);
  const int start = (local.tm_hour * 60 + local.tm_min + 120) % 1440;
  const int end = (start + 60) % 1440;
  char window[32];
  std::snprintf(window, sizeof(window), "window = \"%02d:%02d-%02d:%02d\"", start / 60,
                start % 60, end / 60, end % 60);
  WriteConfig(window);
  RunResult r = Vmvault("schedule");
  EXPECT_EQ(r.exit_code, kExitNotNow) << r.err;
  EXPECT_THAT(r.err, HasSubstr("outside the backup window"));
  const std::string opens = fmt::format("opens at {:02}:{:02}", start / 60, start % 60);
  EXPECT_THAT(r.err, HasSubstr(opens));
  EXPECT_TRUE(Latest().empty());
}

TEST_F(ScheduleTest, ASecondWriterMakesItSayTheRepositoryIsBusy) {
  // What a running schedule holds: the repository's writer lock.
  const int fd = ::open((repo_ + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  RunResult r = Vmvault("schedule");
  ::close(fd);
  EXPECT_EQ(r.exit_code, kExitBusy);
  EXPECT_THAT(r.err, HasSubstr("is busy"));
  EXPECT_THAT(r.err, HasSubstr("this schedule started nothing"));
  // Two at once: one backs up, the other is busy or (if it started after) finds nothing due.
  Process other({VmvaultPath(), "schedule", "--config", config_}, tmp_ / "other.log");
  r = Vmvault("schedule");
  other.Stop(std::chrono::seconds(60));
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == kExitBusy) << r.err;
  EXPECT_EQ(other.how_it_ended() == "exit 0" || other.how_it_ended() == "exit 4", true)
      << other.how_it_ended() << Slurp(tmp_ / "other.log");
  size_t total = 0;
  Latest(&total);
  EXPECT_EQ(total, 3u);  // never twice
}

TEST_F(ScheduleTest, TwoJobsAtOnceBackEveryVmUpByteForByte) {
  WriteConfig("concurrency = 2");
  RunResult r = Vmvault("schedule");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  size_t total = 0;
  const auto ids = Latest(&total);
  EXPECT_EQ(total, 3u);
  for (const std::string vm : {"alpha", "bravo", "charlie"}) {
    ASSERT_EQ(ids.count(vm), 1u) << vm;
    const std::string restored = tmp_ / (vm + ".restored");
    r = RunCmd({VmvaultPath(), "restore", "--repo", repo_, vm, "--to", restored, "--force"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(CompareFiles(restored, tmp_ / (vm + ".raw")), "") << vm;
  }
  r = RunCmd({VmvaultPath(), "verify", "--repo", repo_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const std::string vm : {"alpha", "bravo", "charlie"}) {
    EXPECT_EQ(Queue()[vm]["state"], "CLEAN") << vm;
  }
}

TEST_F(ScheduleTest, AFailingPreBackupHookSkipsThatVmWhileTheOthersAreBackedUp) {
  // The pre-backup hook records its nice value and I/O class (the job's: it inherits
  // them) and fails for alpha; the post-backup hook records how each backup ended.
  const std::string log = tmp_ / "hooks.log";
  const std::string pre = Script(
      "pre.sh", "echo \"pre $1 nice=$(cut -d' ' -f19 /proc/self/stat) io=$(ionice -p $$)\" >> " +
                    log + "\n[ \"$1\" = alpha ] && { echo 'alpha is not ready' >&2; exit 3; }\n"
                    "exit 0\n");
  const std::string post = Script("post.sh", "echo \"post $1 $2 [$3]\" >> " + log + "\n");
  const std::string sched = Script("sched.sh", "echo \"$1 $2\" >> " + log + "\n");
  WriteConfig("concurrency = 2", "nice = 12\nionice = \"idle\"",
              "[hooks]\npre-backup = [\"" + pre + "\", \"{{VM}}\"]\npost-backup = [\"" + post +
                  "\", \"{{VM}}\", \"{{Status}}\", \"{{Backup}}\"]\npre-schedule = [\"" + sched +
                  "\", \"pre-schedule\", \"{{Repository}}\"]\npost-schedule = [\"" + sched +
                  "\", \"post-schedule\", \"{{Status}}\"]\n");
  RunResult r = Vmvault("schedule");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("1 of 3 backups failed"));
  EXPECT_THAT(r.err, HasSubstr("VM alpha"));
  EXPECT_THAT(r.err, HasSubstr("exit status 3"));
  auto ids = Latest();
  EXPECT_EQ(ids.count("alpha"), 0u);
  EXPECT_EQ(ids.count("bravo"), 1u);
  EXPECT_EQ(ids.count("charlie"), 1u);
  auto q = Queue();
  EXPECT_EQ(q["alpha"]["state"], "NEW");  // no backup yet, and due again
  EXPECT_EQ(q["alpha"]["due"], true);
  EXPECT_EQ(q["bravo"]["state"], "CLEAN");

  const std::string hooks = Slurp(log);
  for (const std::string vm : {"alpha", "bravo", "charlie"}) {
    EXPECT_THAT(hooks, HasSubstr("pre " + vm + " nice=12 io=idle")) << hooks;
  }
  EXPECT_THAT(hooks, HasSubstr("post alpha failed []"));
  const std::string bravo_backup = ListJson(repo_)[0]["backups"][0]["name"];
  EXPECT_THAT(hooks, HasSubstr("post bravo ok [" + bravo_backup + "]"));
  EXPECT_THAT(hooks, HasSubstr("pre-schedule " + repo_));
  EXPECT_THAT(hooks, HasSubstr("post-schedule failed"));
  EXPECT_EQ(hooks.find("pre-schedule"), 0u);  // before everything
  EXPECT_EQ(hooks.rfind("post-schedule failed\n"), hooks.size() - 21);  // after everything

  // A failing pre-schedule hook starts nothing.
  const std::string no = Script("no.sh", "exit 1\n");
  WriteConfig("", "", "[hooks]\npre-schedule = [\"" + no + "\"]\n");
  ASSERT_EQ(Sh("head -c 64K /dev/urandom | dd of=" + std::string(tmp_ / "bravo.raw") +
               " bs=64K seek=3 conv=notrunc status=none"),
            0);
  r = Vmvault("schedule");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("pre-schedule hook"));
  EXPECT_THAT(r.err, HasSubstr("no backup started"));
  EXPECT_EQ(Latest(), ids);
}

// The local SMTP sink (tests/smtp_sink.h) as a process stopped by PID when the test
// ends; `port` gets the port it listens on.
std::unique_ptr<Process> StartSmtpSink(const TempDir& tmp, std::string* port) {
  std::ofstream(tmp / "sink.py") << kSmtpSink << std::flush;
  auto sink = std::make_unique<Process>(
      std::vector<std::string>{"python3", tmp / "sink.py", tmp / "port", tmp / "messages"},
      tmp / "sink.log");
  for (int i = 0; i < 1000 && port->empty(); ++i) {
    *port = Slurp(tmp / "port");
    if (port->empty()) ::usleep(10'000);
  }
  return sink;
}

std::string AlertsTable(const std::string& port) {
  return "[alerts]\nto = [\"ops@example.com\"]\nfrom = \"vmvault@example.com\"\n"
         "smtp-url = \"smtp://127.0.0.1:" + port + "\"\n";
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(ScheduleTest, AFailedBackupSendsAnAlert) {
  std::string port;
  auto sink = StartSmtpSink(tmp_, &port);
  ASSERT_FALSE(port.empty()) << Slurp(tmp_ / "sink.log");
  WriteConfig("concurrency = 2", "", AlertsTable(port));
  // bravo's image is gone.
  ASSERT_EQ(::unlink((tmp_ / "bravo.raw").c_str()), 0);
  RunResult r = Vmvault("schedule");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("VM bravo"));
  EXPECT_EQ(Latest().size(), 2u);
  const std::string messages = Slurp(tmp_ / "messages");
  EXPECT_THAT(messages, HasSubstr("Subject: [vmvault] backup of VM bravo failed"));
  EXPECT_THAT(messages, HasSubstr("bravo.raw"));  // the error, in the body
  EXPECT_EQ(messages.find("backup of VM alpha"), std::string::npos);
  EXPECT_THAT(messages, HasSubstr("\"to\": [\"ops@example.com\"]"));
}

// A job that runs longer than alerts.stuck-after (alpha's pre-backup hook sleeps) gets
// one stuck alert while it runs, the other jobs none, and the run still succeeds.
TEST_F(ScheduleTest, AJobRunningLongerThanStuckAfterGetsOneAlert) {
  std::string port;
  auto sink = StartSmtpSink(tmp_, &port);
  ASSERT_FALSE(port.empty()) << Slurp(tmp_ / "sink.log");
  const std::string slow = Script("slow.sh", "if [ \"$1\" = alpha ]; then sleep 200; fi\n");
  WriteConfig("", "",
              AlertsTable(port) + "stuck-after = \"1m\"\n[hooks]\npre-backup = [\"" + slow +
                  "\", \"{{VM}}\"]\n");
  // The shortest stuck-after is a minute, so the clock runs ten times faster, the
  // hook's sleep too (20 s). The schedule looks for stuck jobs every quarter of
  // stuck-after on the monotonic clock, which stays real: at 15 s.
  RunResult r = RunCmd({"env", "FAKETIME_DONT_FAKE_MONOTONIC=1", "faketime", "-f", "+0 x10",
                        VmvaultPath(), "schedule", "--config", config_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string messages = Slurp(tmp_ / "messages");
  EXPECT_EQ(Count(messages, "Subject: [vmvault] backup of VM alpha seems stuck"), 1u)
      << messages;
  EXPECT_EQ(Count(messages, "seems stuck"), 1u) << messages;
  EXPECT_THAT(messages, HasSubstr("alerts.stuck-after"));  // the body says why
  EXPECT_EQ(Latest().size(), 3u);
}

// Three days later (faketime) bravo's image is gone: its backup fails, and since its
// last backup is older than its interval (1 day, hot tier) plus the tolerance (1 day),
// a behind-schedule alert goes out too, once: the next run repeats the failure alert,
// not the behind one.
TEST_F(ScheduleTest, AVmBehindItsScheduleGetsOneAlertADay) {
  std::string port;
  auto sink = StartSmtpSink(tmp_, &port);
  ASSERT_FALSE(port.empty()) << Slurp(tmp_ / "sink.log");
  WriteConfig("", "", AlertsTable(port));
  RunResult first = Vmvault("schedule");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(Slurp(tmp_ / "messages"), "");  // nothing failed, nobody behind
  ASSERT_EQ(::unlink((tmp_ / "bravo.raw").c_str()), 0);
  auto later = [&] {
    return RunCmd({"faketime", "-f", "+3d", VmvaultPath(), "schedule", "--config", config_});
  };
  RunResult r = later();
  EXPECT_NE(r.exit_code, 0);
  std::string messages = Slurp(tmp_ / "messages");
  EXPECT_EQ(Count(messages, "Subject: [vmvault] backup of VM bravo failed"), 1u) << messages;
  EXPECT_EQ(Count(messages, "Subject: [vmvault] bravo is behind schedule"), 1u) << messages;
  EXPECT_EQ(Count(messages, "is behind schedule"), 1u) << "alpha and charlie were backed up";
  r = later();
  EXPECT_NE(r.exit_code, 0);
  messages = Slurp(tmp_ / "messages");
  EXPECT_EQ(Count(messages, "Subject: [vmvault] backup of VM bravo failed"), 2u) << messages;
  EXPECT_EQ(Count(messages, "Subject: [vmvault] bravo is behind schedule"), 1u) << messages;
  // alpha and charlie were due again three days later, and not seconds after that.
  size_t total = 0;
  Latest(&total);
  EXPECT_EQ(total, 3u + 2u);
}

}  // namespace
}  // namespace vmvault::testing
