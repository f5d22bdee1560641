// Which alerts are due (pure, with FakeClock time), and the message they become.
#include "ingest/alerts.h"

#include <gtest/gtest.h>

#include "base/clock.h"

namespace vmvault::ingest {
namespace {

constexpr int64_t kSecond = 1000000;
constexpr int64_t kHour = 3600 * kSecond;
constexpr int64_t kDay = 24 * kHour;
// 2026-03-05T10:00:00Z, a Thursday.
constexpr int64_t kNow = int64_t{1772704800} * kSecond;

AlertsConfig Enabled() {
  AlertsConfig c;
  c.to = {"ops@example.com"};
  return c;
}

VmBackupState Hot(std::string vm, std::optional<int64_t> last) {
  return {std::move(vm), "hot", Seconds(86400), last, 0};
}

std::vector<std::string> Keys(const std::vector<Alert>& alerts) {
  std::vector<std::string> keys;
  for (const Alert& a : alerts) keys.push_back(a.key);
  return keys;
}

TEST(AlertsTest, AVmIsBehindWhenItsLastBackupIsOlderThanIntervalPlusTolerance) {
  FakeClock clock(kNow);
  const AlertsConfig c = Enabled();  // tolerance 1d; hot: every 1d
  const std::vector<VmBackupState> vms = {Hot("fresh", kNow - kHour),
                                          Hot("edge", kNow - 2 * kDay),
                                          Hot("late", kNow - 2 * kDay - kSecond)};
  auto due = DueAlerts(c, vms, {}, {}, clock.NowMicros());
  ASSERT_EQ(Keys(due), std::vector<std::string>{"behind:late"});
  EXPECT_EQ(due[0].kind, AlertKind::kBehind);
  EXPECT_EQ(due[0].subject, "late is behind schedule");
  EXPECT_EQ(due[0].body,
            "The newest backup of late was made at 2026-03-03T09:59:59Z, 2d1s ago.\n"
            "Its tier, hot, backs it up every 1d; an alert is sent when that is exceeded by "
            "more than 1d (alerts.behind-tolerance).\n");
  // Time passes: "edge" falls behind too.
  clock.Advance(kSecond);
  EXPECT_EQ(Keys(DueAlerts(c, vms, {}, {}, clock.NowMicros())),
            (std::vector<std::string>{"behind:edge", "behind:late"}));
}

TEST(AlertsTest, AVmWithoutBackupsIsMeasuredFromWhenItWasScheduled) {
  const AlertsConfig c = Enabled();
  VmBackupState vm = Hot("new", std::nullopt);
  vm.scheduled_since_us = kNow - kDay;
  EXPECT_TRUE(DueAlerts(c, {vm}, {}, {}, kNow).empty());
  vm.scheduled_since_us = kNow - 3 * kDay;
  auto due = DueAlerts(c, {vm}, {}, {}, kNow);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_NE(due[0].body.find("new has no backup yet; it has been scheduled since "
                             "2026-03-02T10:00:00Z, 3d ago."),
            std::string::npos)
      << due[0].body;
}

TEST(AlertsTest, AJobIsStuckAfterStuckAfter) {
  AlertsConfig c = Enabled();  // stuck after 6h
  const std::vector<RunningJob> jobs = {{"backup of web01", kNow - 6 * kHour},
                                        {"restore of db01", kNow - 6 * kHour - kSecond}};
  auto due = DueAlerts(c, {}, jobs, {}, kNow);
  ASSERT_EQ(Keys(due), std::vector<std::string>{"stuck:restore of db01"});
  EXPECT_EQ(due[0].kind, AlertKind::kStuck);
  EXPECT_EQ(due[0].subject, "restore of db01 seems stuck");
  EXPECT_EQ(due[0].body,
            "The restore of db01 started at 2026-03-05T03:59:59Z and is still running after "
            "6h1s (more than alerts.stuck-after, 6h).\n");
  c.stuck_after = Seconds(60);
  EXPECT_EQ(DueAlerts(c, {}, jobs, {}, kNow).size(), 2u);
}

TEST(AlertsTest, SwitchesAndRepeatsAreRespected) {
  const std::vector<VmBackupState> vms = {Hot("late", kNow - 10 * kDay)};
  const std::vector<RunningJob> jobs = {{"backup of late", kNow - kDay}};
  AlertsConfig c = Enabled();
  EXPECT_EQ(DueAlerts(c, vms, jobs, {}, kNow).size(), 2u);
  c.on_behind = false;
  EXPECT_EQ(Keys(DueAlerts(c, vms, jobs, {}, kNow)),
            std::vector<std::string>{"stuck:backup of late"});
  c.on_stuck = false;
  EXPECT_TRUE(DueAlerts(c, vms, jobs, {}, kNow).empty());
  EXPECT_TRUE(DueAlerts(AlertsConfig{}, vms, jobs, {}, kNow).empty());  // no `to`

  // Sent less than a day ago: not again; a day later: again.
  c = Enabled();
  const std::map<std::string, int64_t> sent = {{"behind:late", kNow - kDay + kSecond}};
  EXPECT_EQ(Keys(DueAlerts(c, vms, jobs, sent, kNow)),
            std::vector<std::string>{"stuck:backup of late"});
  EXPECT_EQ(DueAlerts(c, vms, jobs, sent, kNow + kSecond).size(), 2u);
}

TEST(AlertsTest, AlertWantedFollowsTheSwitches) {
  AlertsConfig c;
  EXPECT_FALSE(AlertWanted(c, AlertKind::kTest));
  c = Enabled();
  c.on_failure = false;
  EXPECT_FALSE(AlertWanted(c, AlertKind::kFailure));
  EXPECT_TRUE(AlertWanted(c, AlertKind::kTest));
  EXPECT_TRUE(AlertWanted(c, AlertKind::kBehind));
  // Not wanted: OK, and nothing is run (the sendmail path does not exist).
  c.sendmail = "/nonexistent/sendmail";
  EXPECT_TRUE(SendAlert(c, FailureAlert("backup of x", Status::IOError("disk"))).ok());
  EXPECT_FALSE(SendAlert(c, {AlertKind::kTest, "", "t", "b"}).ok());
}

TEST(AlertsTest, TheMessageIsRfc5322) {
  AlertsConfig c = Enabled();
  c.to = {"a@example.com", "b@example.org"};
  c.from = "vmvault@kvm1.example.com";
  const Alert alert = FailureAlert("backup of web01", Status::IOError("disk full"));
  const std::string m = FormatAlertMessage(c, alert, kNow);
  const size_t end = m.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  const std::string headers = m.substr(0, end + 2);
  EXPECT_NE(headers.find("Date: Thu, 05 Mar 2026 10:00:00 +0000\r\n"), std::string::npos) << m;
  EXPECT_NE(headers.find("From: vmvault@kvm1.example.com\r\n"), std::string::npos);
  EXPECT_NE(headers.find("To: a@example.com, b@example.org\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Subject: [vmvault] backup of web01 failed\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Message-ID: <1772704800000000."), std::string::npos);
  EXPECT_NE(headers.find("@kvm1.example.com>\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
  EXPECT_EQ(m.substr(end + 4), "The backup of web01 failed:\r\n\r\nI/O error: disk full\r\n");
  // Two messages never share a Message-ID.
  EXPECT_NE(FormatAlertMessage(c, alert, kNow), m);
}

TEST(AlertsTest, HeadersCannotBeInjectedAndUtf8IsEncoded) {
  AlertsConfig c = Enabled();
  const std::string m =
      FormatAlertMessage(c, {AlertKind::kTest, "", "x\r\nBcc: evil@example.com", "b"}, kNow);
  EXPECT_EQ(m.find("\r\nBcc:"), std::string::npos) << m;
  EXPECT_NE(m.find("Subject: [vmvault] x  Bcc: evil@example.com\r\n"), std::string::npos);
  const std::string u = FormatAlertMessage(c, {AlertKind::kTest, "", "caf\xc3\xa9", "b"}, kNow);
  EXPECT_NE(u.find("Subject: =?UTF-8?B?W3ZtdmF1bHRdIGNhZsOp?=\r\n"), std::string::npos) << u;
  // Without `from`, a sendmail message leaves From to the mailer.
  EXPECT_EQ(FormatAlertMessage(c, {AlertKind::kTest, "", "s", "b"}, kNow, false).find("From:"),
            std::string::npos);
  EXPECT_NE(FormatAlertMessage(c, {AlertKind::kTest, "", "s", "b"}, kNow).find("From: vmvault@"),
            std::string::npos);
}

TEST(AlertsTest, TheTransportIsNamedWithoutItsPassword) {
  AlertsConfig c = Enabled();
  EXPECT_EQ(AlertTransport(c), "/usr/sbin/sendmail");
  c.smtp_url = "smtps://alice:s3cret@mail.example.com:465";
  EXPECT_EQ(AlertTransport(c), "smtps://alice@mail.example.com:465");
  c.smtp_url = "smtp://mail.example.com:587";
  EXPECT_EQ(AlertTransport(c), "smtp://mail.example.com:587");
}

}  // namespace
}  // namespace vmvault::ingest
