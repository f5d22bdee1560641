// ApplyPriority (ingest/priority.h) on a thread of the test: the nice value and the I/O
// class the kernel then reports for that thread (getpriority, ioprio_get and
// /proc/thread-self/stat), and that other threads keep theirs.
#include "ingest/priority.h"

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace vmvault::ingest {
namespace {

// Field 19 of /proc/thread-self/stat: the nice value.
int NiceFromProc() {
  std::ifstream in("/proc/thread-self/stat");
  std::string text;
  std::getline(in, text);
  std::istringstream rest(text.substr(text.rfind(')') + 1));
  std::string field;
  for (int i = 3; i <= 19; ++i) rest >> field;
  return std::stoi(field);
}

TEST(PriorityTest, NiceAndIoniceApplyToTheCallingThread) {
  const int before = ThreadNice();
  const std::string io_before = ThreadIoPriority();
  int nice = -100, proc_nice = -100;
  std::string io, io_idle;
  Status s1, s2;
  std::thread t([&] {
    IoNice be;
    be.io_class = IoNice::Class::kBestEffort;
    be.level = 6;
    s1 = ApplyPriority(17, be);
    nice = ThreadNice();
    proc_nice = NiceFromProc();
    io = ThreadIoPriority();
    IoNice idle;
    idle.io_class = IoNice::Class::kIdle;
    s2 = ApplyPriority(std::nullopt, idle);
    io_idle = ThreadIoPriority();
  });
  t.join();
  ASSERT_TRUE(s1.ok()) << s1.ToString();
  ASSERT_TRUE(s2.ok()) << s2.ToString();
  EXPECT_EQ(nice, 17);
  EXPECT_EQ(proc_nice, 17);
  EXPECT_EQ(io, "best-effort: prio 6");
  EXPECT_EQ(io_idle, "idle");
  // This thread is as it was.
  EXPECT_EQ(ThreadNice(), before);
  EXPECT_EQ(ThreadIoPriority(), io_before);
}

TEST(PriorityTest, NothingConfiguredChangesNothing) {
  std::string io;
  int nice = 0;
  Status s;
  std::thread t([&] {
    s = ApplyPriority(std::nullopt, IoNice{});
    nice = ThreadNice();
    io = ThreadIoPriority();
  });
  t.join();
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(nice, ThreadNice());
  EXPECT_EQ(io, ThreadIoPriority());
}

}  // namespace
}  // namespace vmvault::ingest
