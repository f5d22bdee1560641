// The scheduler's decisions (ingest/schedule.h) with fixed times: the backup window
// (edges, crossing midnight, local time against the UTC clock), the queue's order and
// reasons, and the states it derives.
#include "ingest/schedule.h"

#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "ingest/schedule_run.h"
#include "store/repository.h"

namespace vmvault::ingest {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kDay = 86400 * kSecond;
// 2026-11-21T00:00:00Z
constexpr int64_t kMidnightUtc = int64_t{1795219200} * kSecond;

// Sets TZ for the test's duration (POSIX TZ strings need no tzdata).
class TzGuard {
 public:
  explicit TzGuard(const char* tz) {
    if (const char* old = ::getenv("TZ")) old_ = old, had_ = true;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~TzGuard() {
    if (had_) ::setenv("TZ", old_.c_str(), 1);
    else ::unsetenv("TZ");
    ::tzset();
  }

 private:
  std::string old_;
  bool had_ = false;
};

int64_t At(int hour, int minute) { return kMidnightUtc + (hour * 60 + minute) * 60 * kSecond; }

TEST(ScheduleWindowTest, EdgesOfADaytimeWindow) {
  TzGuard tz("UTC0");
  const BackupWindow w = *BackupWindow::Parse("09:00-17:30");
  FakeClock clock(At(8, 59));
  WindowCheck c = CheckWindow(w, clock.NowMicros());
  EXPECT_FALSE(c.open);
  EXPECT_EQ(c.minutes_until_open, 1);
  EXPECT_EQ(WindowClosedMessage(w, c),
            "outside the backup window 09:00-17:30 (it is 08:59 local time); it opens at 09:00, "
            "in 1m");
  clock.Advance(60 * kSecond);  // 09:00: the start is inside
  c = CheckWindow(w, clock.NowMicros());
  EXPECT_TRUE(c.open);
  EXPECT_EQ(c.minutes_left, 8 * 60 + 30);
  clock.Set(At(17, 29) + 59 * kSecond);
  EXPECT_TRUE(CheckWindow(w, clock.NowMicros()).open);
  clock.Set(At(17, 30));  // the end is not
  c = CheckWindow(w, clock.NowMicros());
  EXPECT_FALSE(c.open);
  EXPECT_EQ(c.minutes_until_open, 15 * 60 + 30);
  EXPECT_TRUE(CheckWindow(std::nullopt, clock.NowMicros()).open);
}

TEST(ScheduleWindowTest, AWindowCrossingMidnight) {
  TzGuard tz("UTC0");
  const BackupWindow w = *BackupWindow::Parse("22:00-06:00");
  EXPECT_FALSE(CheckWindow(w, At(21, 59)).open);
  EXPECT_TRUE(CheckWindow(w, At(22, 0)).open);
  EXPECT_TRUE(CheckWindow(w, At(23, 59)).open);
  EXPECT_TRUE(CheckWindow(w, At(0, 0)).open);
  EXPECT_EQ(CheckWindow(w, At(0, 0)).minutes_left, 6 * 60);
  EXPECT_TRUE(CheckWindow(w, At(5, 59)).open);
  const WindowCheck c = CheckWindow(w, At(6, 0));
  EXPECT_FALSE(c.open);
  EXPECT_EQ(c.minutes_until_open, 16 * 60);
  EXPECT_TRUE(CheckWindow(*BackupWindow::Parse("00:00-24:00"), At(23, 59)).open);
}

TEST(ScheduleWindowTest, TheWindowIsLocalTimeAndTheClockUtc) {
  const BackupWindow w = *BackupWindow::Parse("22:00-06:00");
  {
    TzGuard tz("CET-1");  // UTC+1: 21:30 UTC is 22:30 local
    EXPECT_EQ(LocalMinuteOfDay(At(21, 30)), 22 * 60 + 30);
    EXPECT_TRUE(CheckWindow(w, At(21, 30)).open);
    EXPECT_FALSE(CheckWindow(w, At(5, 30)).open);  // 06:30 local
  }
  {
    TzGuard tz("EST5");  // UTC-5: 02:00 UTC is 21:00 the day before
    EXPECT_EQ(LocalMinuteOfDay(At(2, 0)), 21 * 60);
    const WindowCheck c = CheckWindow(w, At(2, 0));
    EXPECT_FALSE(c.open);
    EXPECT_EQ(c.minutes_until_open, 60);
    EXPECT_TRUE(CheckWindow(w, At(10, 59)).open);  // 05:59 local
  }
}

// A repository in memory and a configuration of file sources.
class ScheduleQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { repo_ = store::Repository::OpenInMemory(store::RepoConfig{}); }

  SourceConfig& AddFile(const std::string& vm, const std::string& tier = "warm") {
    SourceConfig s;
    s.kind = SourceKind::kFile;
    s.vm = vm;
    s.paths = {"/vms/" + vm + ".qcow2"};
    s.tier = tier;
    s.where.line = static_cast<int>(config_.sources.size()) + 1;
    config_.sources.push_back(s);
    return config_.sources.back();
  }

  // A backup of `vm` at `t` whose one disk was read with `stamp`.
  void Backup(const std::string& vm, int64_t t, store::DiskRecord::SourceStamp stamp = {}) {
    store::BackupRecord b;
    b.vm = vm;
    b.time_us = t;
    store::DiskRecord d;
    d.name = "disk";
    d.chunk_size = 65536;
    d.source_stamp = stamp;
    b.disks.push_back(d);
    store::VmRecord v;
    v.name = vm;
    ASSERT_TRUE(repo_->catalog().CommitBackup(v, &b, {{}}).ok());
  }

  std::vector<QueueEntry> Queue(int64_t now) {
    auto q = BuildQueue(config_, repo_->catalog(), states_, now,
                        [this](const std::string& path) { return stamps_[path]; }, inventory_,
                        [this](int64_t pid, uint64_t) { return pid == live_pid_; });
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? *q : std::vector<QueueEntry>{};
  }

  static std::vector<std::string> Names(const std::vector<QueueEntry>& q, bool due) {
    std::vector<std::string> out;
    for (const auto& e : q) {
      if (e.due == due) out.push_back(e.vm);
    }
    return out;
  }

  static const QueueEntry& Find(const std::vector<QueueEntry>& q, const std::string& vm) {
    for (const auto& e : q) {
      if (e.vm == vm) return e;
    }
    ADD_FAILURE() << vm;
    return q.front();
  }

  std::unique_ptr<store::Repository> repo_;
  Config config_;
  std::map<std::string, store::VmStateRecord, std::less<>> states_;
  std::map<std::string, store::DiskRecord::SourceStamp> stamps_;
  Inventory inventory_;
  int64_t live_pid_ = -1;
};

TEST_F(ScheduleQueueTest, NeverBackedUpFirstThenOldestLastBackup) {
  const int64_t now = 100 * kDay;
  AddFile("recent", "hot");
  AddFile("new1");
  AddFile("old", "hot");
  AddFile("older", "hot");
  AddFile("new2");
  Backup("recent", now - 2 * kDay);
  Backup("old", now - 3 * kDay);
  Backup("older", now - 10 * kDay);
  const auto q = Queue(now);
  EXPECT_EQ(Names(q, true), (std::vector<std::string>{"new1", "new2", "older", "old", "recent"}));
  EXPECT_EQ(Find(q, "new1").reason, "never backed up");
  EXPECT_EQ(Find(q, "new1").state, store::VmState::kNew);
  EXPECT_EQ(Find(q, "older").reason, "last backup 10 days ago, interval 1d");
  EXPECT_EQ(Find(q, "older").state, store::VmState::kBackupNecessary);
}

TEST_F(ScheduleQueueTest, IntervalsDecideAndSkippedSourcesSayWhy) {
  const int64_t now = 100 * kDay;
  AddFile("weekly");                   // warm: 7d
  AddFile("due");
  AddFile("off").enabled = false;
  AddFile("untagged");
  AddFile("tagged").tags = {"prod"};
  AddFile("kept");
  SourceConfig dom;
  dom.kind = SourceKind::kDomain;
  dom.names = {"db*"};
  config_.sources.push_back(dom);
  config_.schedule.tags = {"prod"};
  config_.sources[0].tags = config_.sources[1].tags = config_.sources[5].tags = {"prod"};
  config_.sources[6].tags = {"prod"};
  states_["kept"] = {store::VmState::kArchived, 1, 0, 0, "", ""};
  Backup("weekly", now - 6 * kDay);
  Backup("due", now - 7 * kDay);
  const auto q = Queue(now);
  EXPECT_EQ(Names(q, true), (std::vector<std::string>{"tagged", "due"}));  // never backed up first
  EXPECT_EQ(Find(q, "weekly").reason, "last backup 6 days ago, interval 1w; next due in 1d");
  EXPECT_EQ(Find(q, "weekly").state, store::VmState::kClean);
  EXPECT_EQ(Find(q, "due").reason, "last backup 7 days ago, interval 1w");
  EXPECT_EQ(Find(q, "off").reason, "disabled");
  EXPECT_EQ(Find(q, "untagged").reason, "outside tag filter (prod)");
  EXPECT_EQ(Find(q, "kept").reason, "archived");
  EXPECT_EQ(Find(q, "kept").state, store::VmState::kArchived);
  EXPECT_EQ(q.back().vm, "");
  EXPECT_EQ(q.back().reason, "the domain source's VMs are found when it runs");
  // Not due ones follow in file order.
  EXPECT_EQ(Names(q, false), (std::vector<std::string>{"weekly", "off", "untagged", "kept", ""}));
}

TEST_F(ScheduleQueueTest, AChangedSourceFileMakesAVmDue) {
  const int64_t now = 100 * kDay;
  AddFile("web");
  const store::DiskRecord::SourceStamp read_as{1, 2, 3, 4};
  stamps_["/vms/web.qcow2"] = read_as;
  Backup("web", now - kDay, read_as);
  EXPECT_EQ(Names(Queue(now), true), std::vector<std::string>{});
  stamps_["/vms/web.qcow2"].mtime_ns = 5;
  auto q = Queue(now);
  EXPECT_EQ(Names(q, true), std::vector<std::string>{"web"});
  EXPECT_EQ(q[0].reason,
            "source /vms/web.qcow2 changed since the last backup 1 day ago, interval 1w");
  // A backup without stamps (older vmvault, or a device) is judged by its interval only.
  Backup("web", now - kDay / 2);
  EXPECT_EQ(Names(Queue(now), true), std::vector<std::string>{});
  // More disks than the last backup had is a change.
  config_.sources[0].paths.push_back("/vms/web-data.qcow2");
  EXPECT_EQ(Queue(now)[0].reason,
            "its disks changed (1 in the last backup, 2 configured) since the last backup 12 "
            "hours ago, interval 1w");
}

TEST_F(ScheduleQueueTest, InterruptedAndFailedAttemptsAreDueAgain) {
  const int64_t now = 100 * kDay;
  AddFile("crashed");
  AddFile("running");
  AddFile("failed");
  AddFile("fixed");
  for (const char* vm : {"crashed", "running", "failed", "fixed"}) Backup(vm, now - kDay);
  live_pid_ = 42;
  states_["crashed"] = {store::VmState::kBackupInProgress, now - 60 * kSecond, 41, 7, "h", ""};
  states_["running"] = {store::VmState::kBackupInProgress, now - 60 * kSecond, 42, 7, "h", ""};
  states_["failed"] = {store::VmState::kBackupNecessary, now - 60 * kSecond, 0, 0, "",
                       "last attempt failed: qemu-img: no such file"};
  // A failure before the last backup no longer counts.
  states_["fixed"] = {store::VmState::kBackupNecessary, now - 2 * kDay, 0, 0, "",
                      "last attempt failed: old"};
  const auto q = Queue(now);
  EXPECT_EQ(Names(q, true), (std::vector<std::string>{"crashed", "failed"}));
  EXPECT_EQ(Find(q, "crashed").reason,
            "interrupted backup (pid 41 on h gone); last backup 1 day ago, interval 1w");
  EXPECT_EQ(Find(q, "failed").reason,
            "last attempt failed: qemu-img: no such file; last backup 1 day ago, interval 1w");
  EXPECT_EQ(Find(q, "running").state, store::VmState::kBackupInProgress);
  EXPECT_EQ(Find(q, "running").reason, "backup in progress (pid 42)");
  EXPECT_EQ(Find(q, "fixed").state, store::VmState::kClean);
}

TEST(ScheduleTest, AgesAndVmNames) {
  EXPECT_EQ(DescribeAge(30 * kSecond), "just now");
  EXPECT_EQ(DescribeAge(60 * kSecond), "1 minute ago");
  EXPECT_EQ(DescribeAge(2 * 3600 * kSecond), "2 hours ago");
  EXPECT_EQ(DescribeAge(kDay), "1 day ago");
  SourceConfig s;
  s.kind = SourceKind::kFile;
  s.paths = {"/vms/web01.qcow2"};
  EXPECT_EQ(*SourceVmName(s), "web01");
  s.vm = "www";
  EXPECT_EQ(*SourceVmName(s), "www");
  s.kind = SourceKind::kDomain;
  s.names = {"db*"};
  EXPECT_FALSE(SourceVmName(s).ok());
}

TEST_F(ScheduleQueueTest, DomainsAreFoundByPatternAndARunningDueOneIsRunning) {
  const int64_t now = 100 * kDay;
  SourceConfig dom;
  dom.kind = SourceKind::kDomain;
  dom.names = {"web*", "db"};
  dom.exclude = {"web-old"};
  dom.tier = "hot";
  config_.sources.push_back(dom);
  SourceConfig broken = dom;
  broken.names = {"x*"};
  broken.connect = "qemu+ssh://nowhere/system";
  config_.sources.push_back(broken);
  inventory_.emplace(0, std::vector<FoundVm>{{"web1", true},
                                              {"web2", false},
                                              {"web-old", true},
                                              {"db", true},
                                              {"mail", true}});
  inventory_.emplace(
      1, Status::IOError("listing the domains of qemu+ssh://nowhere/system: refused"));
  // web2 is shut off and its disk file has not changed since its backup (an hour ago);
  // db runs and was backed up an hour ago too: neither is due. web1 never was.
  stamps_["/vms/web2.qcow2"] = {7, 8, 9, 10};
  for (const std::string vm : {"web2", "db"}) {
    store::BackupRecord b;
    b.vm = vm;
    b.time_us = now - 3600 * kSecond;
    store::DiskRecord d;
    d.name = "vda";
    d.chunk_size = 65536;
    d.source_path = "/vms/" + vm + ".qcow2";
    if (vm == "web2") d.source_stamp = {7, 8, 9, 10};
    b.disks.push_back(d);
    store::VmRecord v;
    v.name = vm;
    ASSERT_TRUE(repo_->catalog().CommitBackup(v, &b, {{}}).ok());
  }
  auto q = Queue(now);
  EXPECT_EQ(Names(q, true), (std::vector<std::string>{"web1"}));
  EXPECT_EQ(Find(q, "web1").state, store::VmState::kRunning);
  EXPECT_TRUE(Find(q, "web1").running);
  EXPECT_EQ(Find(q, "web1").name, "web1");
  EXPECT_EQ(Find(q, "web1").reason, "never backed up; running");
  EXPECT_EQ(Find(q, "web2").state, store::VmState::kClean);
  EXPECT_EQ(Find(q, "db").state, store::VmState::kClean);  // running, but not due
  for (const QueueEntry& e : q) {
    EXPECT_NE(e.vm, "web-old");  // excluded
    EXPECT_NE(e.vm, "mail");     // not selected
  }
  EXPECT_EQ(q.back().vm, "");
  EXPECT_EQ(q.back().reason, "listing the domains of qemu+ssh://nowhere/system: refused");

  // web2's disk file changes: due. db's interval (1d) passes: due and running.
  stamps_["/vms/web2.qcow2"] = {7, 8, 9, 11};
  q = Queue(now + kDay);
  EXPECT_EQ(Find(q, "web2").reason, "last backup 1 day ago, interval 1d");
  EXPECT_EQ(Find(q, "db").state, store::VmState::kRunning);
  EXPECT_EQ(Find(q, "db").reason, "last backup 1 day ago, interval 1d; running");
  q = Queue(now);
  EXPECT_EQ(Find(q, "web2").reason,
            "source /vms/web2.qcow2 changed since the last backup 1 hour ago, interval 1d");
  EXPECT_EQ(Find(q, "web2").state, store::VmState::kBackupNecessary);
}

TEST(ScheduleGlobTest, VirtualBoxSourcesWithoutNamesTakeEveryMachine) {
  SourceConfig vbox;
  vbox.kind = SourceKind::kVirtualBox;
  vbox.exclude = {"tmp-*"};
  const std::vector<FoundVm> found{{"a", false}, {"tmp-1", false}, {"b", true}};
  const std::vector<FoundVm> got = SelectFound(vbox, found);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].name, "a");
  EXPECT_EQ(got[1].name, "b");
  SourceConfig dom;
  dom.kind = SourceKind::kDomain;  // a domain source without names selects nothing
  EXPECT_TRUE(SelectFound(dom, found).empty());
}

// --- Picking and running jobs ---

QueueEntry Due(const std::string& vm, bool running = false) {
  QueueEntry e;
  e.vm = vm;
  e.due = true;
  e.running = running;
  return e;
}

TEST(ScheduleJobsTest, PickNextJobKeepsTheLimitsAndTheOrder) {
  std::vector<QueueEntry> q{Due("r1", true), Due("r2", true), Due("f1"), Due("f2")};
  q.push_back(QueueEntry{});  // not due
  q.back().vm = "clean";
  std::vector<bool> started(q.size(), false);
  EXPECT_EQ(PickNextJob(q, started, 0, false, 2, true), 0u);
  started[0] = true;
  // A running VM's job runs: the next running one waits, a shut-off one goes.
  EXPECT_EQ(PickNextJob(q, started, 1, true, 2, true), 2u);
  started[2] = true;
  EXPECT_EQ(PickNextJob(q, started, 2, true, 2, true), std::nullopt);  // the limit
  EXPECT_EQ(PickNextJob(q, started, 1, true, 2, true), 3u);
  EXPECT_EQ(PickNextJob(q, started, 1, false, 2, true), 1u);
  EXPECT_EQ(PickNextJob(q, started, 0, false, 2, false), std::nullopt);  // window closed
  started[1] = started[3] = true;
  EXPECT_EQ(PickNextJob(q, started, 0, false, 2, true), std::nullopt);  // all started
  EXPECT_EQ(ThreadsPerJob(8, 3), 2u);
  EXPECT_EQ(ThreadsPerJob(2, 4), 1u);
  EXPECT_EQ(ThreadsPerJob(16, 1), 16u);
}

// Counts the jobs that run at once; a job waits at its gate until the test's
// condition lets it go.
struct JobMeter {
  std::mutex mu;
  std::condition_variable cv;
  int in = 0, live_in = 0, most = 0, most_live = 0, started = 0;
  bool clock_moved = false;
  std::vector<std::string> order;

  void Enter(const QueueEntry& e) {
    std::lock_guard<std::mutex> lock(mu);
    ++in;
    ++started;
    if (e.running) ++live_in;
    most = std::max(most, in);
    most_live = std::max(most_live, live_in);
    order.push_back(e.vm);
    cv.notify_all();
  }
  void Leave(const QueueEntry& e) {
    std::lock_guard<std::mutex> lock(mu);
    --in;
    if (e.running) --live_in;
  }
  template <typename Pred>
  void WaitUntil(Pred pred) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return pred(*this); });
  }
};

TEST(ScheduleJobsTest, NoMoreJobsAtOnceThanTheConcurrency) {
  const std::vector<QueueEntry> q{Due("a"), Due("b"), Due("c"), Due("d")};
  FakeClock clock(kMidnightUtc);
  JobMeter m;
  JobRunOptions o;
  o.concurrency = 2;
  o.run = [&](size_t i) {
    m.Enter(q[i]);
    // Hold until a second job runs beside this one (or every job has started).
    m.WaitUntil([&](const JobMeter& x) { return x.in >= 2 || x.started == 4; });
    m.Leave(q[i]);
    return i == 2 ? Status::IOError("c failed") : Status::OK();
  };
  const JobRunSummary s = RunJobs(q, o, clock);
  EXPECT_EQ(m.most, 2);
  EXPECT_EQ(s.most_at_once, 2);
  ASSERT_EQ(s.finished.size(), 4u);
  EXPECT_EQ(s.left, 0u);
  int failed = 0;
  for (const auto& [i, st] : s.finished) failed += st.ok() ? 0 : 1;
  EXPECT_EQ(failed, 1);
  std::sort(m.order.begin(), m.order.end());  // threads enter in any order
  EXPECT_EQ(m.order, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(ScheduleJobsTest, RunningVmsGoOneAtATimeBesideOthers) {
  const std::vector<QueueEntry> q{Due("r1", true), Due("r2", true), Due("r3", true), Due("f1")};
  FakeClock clock(kMidnightUtc);
  JobMeter m;
  JobRunOptions o;
  o.concurrency = 3;
  o.run = [&](size_t i) {
    m.Enter(q[i]);
    // r1 and f1 wait for each other, so they overlap; r2 and r3 just run.
    if (q[i].vm == "r1" || q[i].vm == "f1") {
      m.WaitUntil([](const JobMeter& x) { return x.started >= 2; });
    }
    m.Leave(q[i]);
    return Status::OK();
  };
  const JobRunSummary s = RunJobs(q, o, clock);
  EXPECT_EQ(m.most_live, 1);  // never two running VMs at once
  EXPECT_GE(m.most, 2);       // but a shut-off one beside
  EXPECT_EQ(s.finished.size(), 4u);
  // r2 starts only once r1 has ended, r3 once r2 has.
  auto at = [&](const std::string& vm) {
    return std::find(m.order.begin(), m.order.end(), vm) - m.order.begin();
  };
  EXPECT_LT(at("r1"), at("r2"));
  EXPECT_LT(at("r2"), at("r3"));
  EXPECT_EQ(m.order.size(), 4u);
}

TEST(ScheduleJobsTest, WhenTheWindowClosesRunningJobsFinishAndNoNewOneStarts) {
  TzGuard tz("UTC0");
  const BackupWindow w = *BackupWindow::Parse("22:00-06:00");
  const std::vector<QueueEntry> q{Due("a"), Due("b"), Due("c"), Due("d")};
  FakeClock clock(At(5, 58));
  JobMeter m;
  JobRunOptions o;
  o.concurrency = 1;
  o.window_open = [&] { return CheckWindow(w, clock.NowMicros()).open; };
  o.run = [&](size_t i) {
    m.Enter(q[i]);
    clock.Advance(60 * kSecond);  // each job takes a minute
    m.Leave(q[i]);
    return Status::OK();
  };
  JobRunSummary s = RunJobs(q, o, clock);
  // a runs 05:58-05:59, b 05:59-06:00; at 06:00 the window has closed.
  EXPECT_EQ(m.order, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.finished.size(), 2u);
  EXPECT_EQ(s.left, 2u);

  // With two at once: a and b start at 05:58 and both finish although the window
  // closes while they run (each takes two minutes); c and d never start.
  clock.Set(At(5, 58));
  JobMeter m2;
  o.concurrency = 2;
  o.run = [&](size_t i) {
    m2.Enter(q[i]);
    m2.WaitUntil([](const JobMeter& x) { return x.started >= 2; });
    if (q[i].vm == "a") {
      clock.Advance(120 * kSecond);
      std::lock_guard<std::mutex> lock(m2.mu);
      m2.clock_moved = true;
      m2.cv.notify_all();
    }
    // Neither ends before the window has closed.
    m2.WaitUntil([](const JobMeter& x) { return x.clock_moved; });
    m2.Leave(q[i]);
    return Status::OK();
  };
  s = RunJobs(q, o, clock);
  EXPECT_EQ(m2.order.size(), 2u);
  EXPECT_EQ(s.finished.size(), 2u);
  for (const auto& [i, st] : s.finished) EXPECT_TRUE(st.ok());
  EXPECT_EQ(s.left, 2u);
}

TEST(ScheduleJobsTest, TickSeesTheJobsRunningAndWhenTheyStarted) {
  const std::vector<QueueEntry> q{Due("slow")};
  FakeClock clock(kMidnightUtc);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ActiveJob> seen;
  JobRunOptions o;
  o.tick_interval = std::chrono::milliseconds(1);
  o.tick = [&](const std::vector<ActiveJob>& active) {
    std::lock_guard<std::mutex> lock(mu);
    if (seen.empty()) seen = active;
    cv.notify_all();
  };
  o.run = [&](size_t) {
    // Ends once a tick has seen it.
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !seen.empty(); });
    return Status::OK();
  };
  const JobRunSummary s = RunJobs(q, o, clock);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].entry, 0u);
  EXPECT_EQ(seen[0].started_us, kMidnightUtc);
  EXPECT_EQ(s.finished.size(), 1u);
}

}  // namespace
}  // namespace vmvault::ingest
