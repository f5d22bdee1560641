#include "ingest/config_values.h"

#include <gtest/gtest.h>

namespace vmvault::ingest {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;

int At(int h, int m) { return h * 60 + m; }

TEST(DurationTest, ParsesEveryUnitAndCombinations) {
  EXPECT_EQ(*ParseDuration("90s"), Seconds(90));
  EXPECT_EQ(*ParseDuration("5m"), minutes(5));
  EXPECT_EQ(*ParseDuration("6h"), hours(6));
  EXPECT_EQ(*ParseDuration("1d"), days(1));
  EXPECT_EQ(*ParseDuration("2w"), days(14));
  EXPECT_EQ(*ParseDuration("1h30m"), minutes(90));
  EXPECT_EQ(*ParseDuration("1d12h"), hours(36));
  EXPECT_EQ(*ParseDuration("1w2d3h4m5s"), days(9) + hours(3) + minutes(4) + Seconds(5));
  EXPECT_EQ(*ParseDuration("0s"), Seconds(0));
  EXPECT_EQ(*ParseDuration("36500d"), days(36500));
}

TEST(DurationTest, RejectsWhatIsNotADuration) {
  for (const char* bad : {"", "5", "m", "5x", "1.5h", "-1d", "30m1h", "1h1h", "5 m", " 5m", "5m ",
                          "5min", "1d 12h", "36501d", "999999999999999s", "1e3s"}) {
    auto d = ParseDuration(bad);
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
  // The messages say what to write instead.
  EXPECT_NE(ParseDuration("1mo").status().message().find("use 30d"), std::string::npos);
  EXPECT_NE(ParseDuration("1M").status().message().find("use 30d"), std::string::npos);
  EXPECT_NE(ParseDuration("1y").status().message().find("use 365d"), std::string::npos);
  EXPECT_NE(ParseDuration("1.5h").status().message().find("1h30m"), std::string::npos);
  EXPECT_NE(ParseDuration("30m1h").status().message().find("largest first"), std::string::npos);
  EXPECT_NE(ParseDuration("90").status().message().find("no unit"), std::string::npos);
}

TEST(DurationTest, FormatsShortestAndRoundTrips) {
  EXPECT_EQ(FormatDuration(Seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(Seconds(90)), "1m30s");
  EXPECT_EQ(FormatDuration(minutes(90)), "1h30m");
  EXPECT_EQ(FormatDuration(days(1)), "1d");
  EXPECT_EQ(FormatDuration(days(14)), "2w");
  EXPECT_EQ(FormatDuration(days(30)), "30d");
  EXPECT_EQ(FormatDuration(hours(36)), "1d12h");
  for (int64_t s : {1, 59, 60, 61, 3599, 3600, 86399, 86400, 86401, 604800, 2592000, 31536000}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(Seconds(s))), Seconds(s)) << s;
  }
}

TEST(BackupWindowTest, ParsesTimes) {
  auto w = BackupWindow::Parse("22:00-06:00");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->start, At(22, 0));
  EXPECT_EQ(w->end, At(6, 0));
  EXPECT_TRUE(w->CrossesMidnight());
  EXPECT_EQ(w->Length(), 8 * 60);
  EXPECT_EQ(w->ToString(), "22:00-06:00");
  EXPECT_EQ(*BackupWindow::Parse("6:30-7:05"), (BackupWindow{At(6, 30), At(7, 5)}));
  EXPECT_EQ(*BackupWindow::Parse("22:00 - 06:00"), *w);
  EXPECT_EQ(BackupWindow::Parse("00:00-24:00")->Length(), kMinutesPerDay);
  EXPECT_EQ(BackupWindow::Parse("00:00-24:00")->ToString(), "00:00-24:00");
  EXPECT_EQ(BackupWindow::Parse("23:59-00:00")->Length(), 1);
}

TEST(BackupWindowTest, RejectsBadWindows) {
  for (const char* bad :
       {"", "22:00", "22:00-", "-06:00", "22:00-06:00-07:00", "2200-0600", "22:0-06:00",
        "22:000-06:00", "aa:bb-cc:dd", "24:00-06:00", "25:00-06:00", "22:60-06:00", "22:00-24:01",
        "123:00-01:00", "22.00-06.00", "10pm-6am"}) {
    EXPECT_EQ(BackupWindow::Parse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  for (const char* same : {"22:00-22:00", "00:00-00:00", "6:00-06:00"}) {
    auto w = BackupWindow::Parse(same);
    EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument) << same;
    EXPECT_NE(w.status().message().find("starts when it ends"), std::string::npos);
  }
  EXPECT_NE(BackupWindow::Parse("24:00-06:00").status().message().find("00:00"), std::string::npos);
}

TEST(BackupWindowTest, ContainsAcrossMidnight) {
  const BackupWindow w = *BackupWindow::Parse("22:00-06:00");
  EXPECT_FALSE(w.Contains(At(21, 59)));
  EXPECT_TRUE(w.Contains(At(22, 0)));
  EXPECT_TRUE(w.Contains(At(23, 59)));
  EXPECT_TRUE(w.Contains(At(0, 0)));
  EXPECT_TRUE(w.Contains(At(5, 59)));
  EXPECT_FALSE(w.Contains(At(6, 0)));
  EXPECT_FALSE(w.Contains(At(12, 0)));
  // Minutes outside [0, 1440) wrap.
  EXPECT_TRUE(w.Contains(kMinutesPerDay + At(22, 0)));
  EXPECT_TRUE(w.Contains(-60));  // 23:00 the day before
  EXPECT_FALSE(w.Contains(kMinutesPerDay + At(6, 0)));

  EXPECT_EQ(w.MinutesLeft(At(22, 0)), 8 * 60);
  EXPECT_EQ(w.MinutesLeft(At(23, 0)), 7 * 60);
  EXPECT_EQ(w.MinutesLeft(At(0, 0)), 6 * 60);
  EXPECT_EQ(w.MinutesLeft(At(5, 59)), 1);
  EXPECT_EQ(w.MinutesLeft(At(6, 0)), 0);
  EXPECT_EQ(w.MinutesLeft(At(21, 59)), 0);
}

TEST(BackupWindowTest, ContainsWithinADay) {
  const BackupWindow w = *BackupWindow::Parse("01:00-05:00");
  EXPECT_FALSE(w.CrossesMidnight());
  EXPECT_FALSE(w.Contains(At(0, 59)));
  EXPECT_TRUE(w.Contains(At(1, 0)));
  EXPECT_TRUE(w.Contains(At(4, 59)));
  EXPECT_FALSE(w.Contains(At(5, 0)));
  EXPECT_EQ(w.MinutesLeft(At(1, 0)), 240);
  EXPECT_EQ(w.MinutesLeft(At(4, 59)), 1);

  // Up to midnight, written either way.
  for (const char* text : {"22:00-24:00", "22:00-00:00"}) {
    const BackupWindow late = *BackupWindow::Parse(text);
    EXPECT_FALSE(late.Contains(At(21, 59))) << text;
    EXPECT_TRUE(late.Contains(At(22, 0))) << text;
    EXPECT_TRUE(late.Contains(At(23, 59))) << text;
    EXPECT_FALSE(late.Contains(At(0, 0))) << text;
    EXPECT_EQ(late.MinutesLeft(At(23, 0)), 60) << text;
    EXPECT_EQ(late.Length(), 120) << text;
  }

  const BackupWindow day = *BackupWindow::Parse("00:00-24:00");
  for (int m = 0; m < kMinutesPerDay; ++m) ASSERT_TRUE(day.Contains(m)) << m;
  EXPECT_EQ(day.MinutesLeft(At(23, 59)), kMinutesPerDay);  // never closes
}

TEST(GlobTest, ValidatesAndMatches) {
  EXPECT_TRUE(IsGlob("web*"));
  EXPECT_TRUE(IsGlob("db0?"));
  EXPECT_TRUE(IsGlob("db0[12]"));
  EXPECT_FALSE(IsGlob("web01"));
  EXPECT_FALSE(IsGlob("web\\*"));
  for (const char* good : {"web*", "db0[1-3]", "[!x]*", "a\\*", "*", "[]]x", "[a-]"}) {
    EXPECT_TRUE(ValidateGlob(good).ok()) << good << ": " << ValidateGlob(good).ToString();
  }
  for (const char* bad : {"", "web[", "web[*", "[z-a]", "a\\", "[!"}) {
    EXPECT_EQ(ValidateGlob(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ValidateGlob("[z-a]").message().find("reversed"), std::string::npos);
  EXPECT_TRUE(GlobMatch("web*", "web01"));
  EXPECT_FALSE(GlobMatch("web*", "db01"));
  EXPECT_TRUE(GlobMatch("db0[1-3]", "db02"));
  EXPECT_FALSE(GlobMatch("db0[1-3]", "db04"));
  EXPECT_TRUE(GlobMatch("[!w]*", "db01"));
  EXPECT_TRUE(GlobMatch("a\\*", "a*"));
  EXPECT_FALSE(GlobMatch("a\\*", "ab"));
}

TEST(HookVariablesTest, ChecksArguments) {
  EXPECT_TRUE(CheckHookArgument("{{VM}}", HookEvent::kPreBackup).empty());
  EXPECT_TRUE(CheckHookArgument("--vm={{VM}}:{{Tier}}", HookEvent::kPreBackup).empty());
  EXPECT_TRUE(CheckHookArgument("plain", HookEvent::kPreSchedule).empty());
  EXPECT_TRUE(CheckHookArgument("{{Target}}", HookEvent::kPostRestore).empty());
  EXPECT_TRUE(CheckHookArgument("{{Status}}", HookEvent::kPostSchedule).empty());

  auto p = CheckHookArgument("{{vm}}", HookEvent::kPreBackup);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("did you mean {{VM}}"), std::string::npos) << p[0];
  p = CheckHookArgument("{{Backup}}", HookEvent::kPreBackup);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("not available in pre-backup"), std::string::npos) << p[0];
  p = CheckHookArgument("{{Status}}", HookEvent::kPreSnapshot);
  ASSERT_EQ(p.size(), 1u);
  p = CheckHookArgument("{{Nonsense}}", HookEvent::kPreBackup);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("Repository, VM, Tier"), std::string::npos) << p[0];
  p = CheckHookArgument("{{}}", HookEvent::kPreBackup);
  EXPECT_EQ(p.size(), 1u);
  p = CheckHookArgument("{{VM", HookEvent::kPreBackup);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("without a closing"), std::string::npos) << p[0];
  EXPECT_EQ(CheckHookArgument("{{a}}{{b}}", HookEvent::kPreBackup).size(), 2u);

  // Every event offers Repository; only post- events offer Status.
  for (int i = 0; i < kHookEventCount; ++i) {
    const auto e = static_cast<HookEvent>(i);
    EXPECT_TRUE(CheckHookArgument("{{Repository}}", e).empty()) << HookEventName(e);
    const bool post = HookEventName(e).substr(0, 5) == "post-";
    EXPECT_EQ(CheckHookArgument("{{Status}}", e).empty(), post) << HookEventName(e);
  }
}

TEST(HookVariablesTest, ExpandsIntoSeparateArguments) {
  const std::vector<std::string> argv = {"/usr/local/bin/x", "{{VM}}",  "--tier={{Tier}}",
                                         "{{VM}}/{{VM}}",    "plain",   "{{Missing}}",
                                         "{{open",           "}}{{VM}}"};
  const auto out = ExpandHookArgv(argv, {{"VM", "web 01"}, {"Tier", "hot"}});
  EXPECT_EQ(out, (std::vector<std::string>{"/usr/local/bin/x", "web 01", "--tier=hot",
                                           "web 01/web 01", "plain", "", "{{open", "}}web 01"}));
}

TEST(ClosestMatchTest, FindsLikelyTypos) {
  const std::vector<std::string_view> keys = {"concurrency", "window",     "tags",
                                              "keep-last",   "repository", "timeout"};
  EXPECT_EQ(ClosestMatch("concurency", keys), "concurrency");
  EXPECT_EQ(ClosestMatch("windwo", keys), "window");
  EXPECT_EQ(ClosestMatch("tag", keys), "tags");
  EXPECT_EQ(ClosestMatch("keep_last", keys), "keep-last");
  EXPECT_EQ(ClosestMatch("Repository", keys), "repository");
  EXPECT_EQ(ClosestMatch("repo", keys), "repository");
  EXPECT_EQ(ClosestMatch("hook-timeout", keys), "timeout");
  EXPECT_EQ(ClosestMatch("zzz", keys), "");
  EXPECT_EQ(ClosestMatch("", keys), "");
  EXPECT_EQ(ClosestMatch("completely-different", keys), "");
}

TEST(ConfigPathTest, FlagThenEnvironmentThenDefault) {
  ConfigPath p = ResolveConfigPath("/a.toml", "/b.toml");
  EXPECT_EQ(p.path, "/a.toml");
  EXPECT_EQ(p.origin, ConfigPath::Origin::kFlag);
  p = ResolveConfigPath("", "/b.toml");
  EXPECT_EQ(p.path, "/b.toml");
  EXPECT_EQ(p.origin, ConfigPath::Origin::kEnvironment);
  p = ResolveConfigPath("", "");
  EXPECT_EQ(p.path, "/etc/vmvault/config.toml");
  EXPECT_EQ(p.origin, ConfigPath::Origin::kDefault);
  p = ResolveConfigPath("", nullptr);
  EXPECT_EQ(p.path, kDefaultConfigPath);

  ::setenv("VMVAULT_CONFIG", "/env.toml", 1);
  EXPECT_EQ(ResolveConfigPath("").path, "/env.toml");
  EXPECT_EQ(ResolveConfigPath("x.toml").path, "x.toml");
  ::unsetenv("VMVAULT_CONFIG");
  EXPECT_EQ(ResolveConfigPath("").path, kDefaultConfigPath);
}

TEST(ValueChecksTest, TagsAddressesUrlsSizesUris) {
  EXPECT_TRUE(IsValidTag("prod"));
  EXPECT_TRUE(IsValidTag("site-a_2.x"));
  EXPECT_FALSE(IsValidTag(""));
  EXPECT_FALSE(IsValidTag("two words"));
  EXPECT_FALSE(IsValidTag(std::string(65, 't')));

  EXPECT_TRUE(IsValidEmailAddress("ops@example.com"));
  EXPECT_TRUE(IsValidEmailAddress("root@localhost"));
  for (const char* bad : {"", "ops", "@example.com", "ops@", "a@b@c", "ops @example.com",
                          "ops@example.com\nBcc: x@y", "<ops@example.com>", "a@b,c@d"}) {
    EXPECT_FALSE(IsValidEmailAddress(bad)) << bad;
  }

  EXPECT_EQ(SmtpUrlProblem("smtp://mail.example.com"), "");
  EXPECT_EQ(SmtpUrlProblem("smtp://mail.example.com:587"), "");
  EXPECT_EQ(SmtpUrlProblem("smtps://user:secret@mail.example.com:465/"), "");
  EXPECT_EQ(SmtpUrlProblem("smtp://[::1]:25"), "");
  for (const char* bad :
       {"", "mail.example.com", "http://mail", "smtp://", "smtp://:25", "smtp://host:0",
        "smtp://host:99999", "smtp://host:x", "smtp://host/path", "smtp://ho st"}) {
    EXPECT_NE(SmtpUrlProblem(bad), "") << bad;
  }

  for (const char* good : {"10%", "100%", "1%", "4G", "512M", "1T", "64k", "2g"}) {
    EXPECT_TRUE(IsValidSnapshotSize(good)) << good;
  }
  for (const char* bad : {"", "%", "0%", "101%", "4", "G", "4X", "1.5G", "-1G", "0G"}) {
    EXPECT_FALSE(IsValidSnapshotSize(bad)) << bad;
  }

  for (const char* good : {"qemu:///system", "qemu:///session", "qemu+ssh://root@host/system",
                           "test:///default", "vbox:///session", "qemu+tls://h:16514/system"}) {
    EXPECT_TRUE(IsValidLibvirtUri(good)) << good;
  }
  for (const char* bad : {"", "qemu", "/system", "://x", "QEMU:///system", "qemu:///sys tem"}) {
    EXPECT_FALSE(IsValidLibvirtUri(bad)) << bad;
  }
}

}  // namespace
}  // namespace vmvault::ingest
