#include "ingest/config.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/temp_dir.h"

namespace vmvault::ingest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Every problem in `text` as "line:column: message".
std::vector<std::string> Errors(std::string_view text) {
  std::vector<std::string> out;
  for (const ConfigError& e : CheckConfig(text, "t.toml").errors) {
    out.push_back(fmt::format("{}:{}: {}", e.where.line, e.where.column, e.message));
  }
  return out;
}

// The one problem in `text`: its place and its message.
struct OneError {
  int line = 0, column = 0;
  std::string message;
};
OneError Only(std::string_view text) {
  const ConfigCheck c = CheckConfig(text, "t.toml");
  EXPECT_EQ(c.errors.size(), 1u) << ::testing::PrintToString(Errors(text));
  if (c.errors.empty()) return {};
  return {c.errors[0].where.line, c.errors[0].where.column, c.errors[0].message};
}

// The place and message of the one problem in `text`.
#define EXPECT_ONLY_ERROR(text, want_line, want_column, substring) \
  do {                                                             \
    const OneError e_ = Only(text);                                \
    EXPECT_EQ(e_.line, want_line) << e_.message;                   \
    EXPECT_EQ(e_.column, want_column) << e_.message;               \
    EXPECT_THAT(e_.message, HasSubstr(substring));                 \
  } while (0)

Config Parse(std::string_view text) {
  ConfigCheck c = CheckConfig(text, "t.toml");
  EXPECT_TRUE(c.ok()) << ::testing::PrintToString(Errors(text));
  return std::move(c.config);
}

TEST(ConfigTest, AnEmptyFileHoldsTheDefaults) {
  const Config c = Parse("");
  EXPECT_EQ(c.repository, "");
  EXPECT_EQ(c.period, Period::kMonth);
  EXPECT_FALSE(c.nice.has_value());
  EXPECT_EQ(c.ionice.io_class, IoNice::Class::kNone);
  EXPECT_FALSE(c.schedule.window.has_value());
  EXPECT_EQ(c.schedule.concurrency, 1);
  EXPECT_TRUE(c.schedule.tags.empty());
  EXPECT_EQ(c.Tier("hot").interval, std::chrono::days(1));
  EXPECT_EQ(c.Tier("warm").interval, std::chrono::days(7));
  EXPECT_EQ(c.Tier("cold").interval, std::chrono::days(30));
  EXPECT_EQ(c.tiers.size(), 3u);
  EXPECT_TRUE(c.sources.empty());
  EXPECT_TRUE(c.retention.defaults.KeepsEverything());
  EXPECT_TRUE(c.retention.For("any", "hot").KeepsEverything());
  EXPECT_EQ(c.hooks.timeout, std::chrono::minutes(5));
  for (int i = 0; i < kHookEventCount; ++i) EXPECT_TRUE(c.hooks.commands[i].empty());
  EXPECT_FALSE(c.alerts.enabled());
  EXPECT_TRUE(c.alerts.on_failure && c.alerts.on_behind && c.alerts.on_stuck);
  EXPECT_EQ(c.alerts.behind_tolerance, std::chrono::days(1));
  EXPECT_EQ(c.alerts.stuck_after, std::chrono::hours(6));
  EXPECT_EQ(c.alerts.sendmail, "/usr/sbin/sendmail");
  EXPECT_EQ(c.log.target, LogConfig::Target::kSyslog);
  EXPECT_EQ(c.log.level, "info");
  // Comments and blank lines only: the same.
  EXPECT_TRUE(CheckConfig("# nothing\n\n   # here\n", "t.toml").ok());
}

TEST(ConfigTest, ReadsEverySection) {
  const Config c = Parse(R"(repository = "/srv/vmvault"
period = "week"
nice = 10
ionice = "best-effort:7"

[schedule]
window = "22:00-06:00"
concurrency = 3
tags = ["prod"]

[tiers.hot]
interval = "12h"
[tiers.cold]
interval = "90d"

[[source]]
kind = "domain"
name = ["web*", "db01"]
exclude = ["web-test*"]
connect = "qemu+ssh://root@kvm1/system"
method = "snapshot"
tier = "hot"
tags = ["prod", "web"]

[[source]]
kind = "file"
paths = ["/vm/images/fileserver.qcow2", "/vm/images/../images/data.vdi"]
tags = ["prod"]
period = "day"

[[source]]
kind = "virtualbox"
path = "/data/vbox/hot/"
method = "pause"

[[source]]
kind = "device"
paths = ["/dev/sdb"]
vm = "appliance"
enabled = false

[[source]]
kind = "lvm"
paths = ["/dev/vg0/web02-root", "/dev/vg0/web02-data"]
vm = "web02"
snapshot-size = "4G"
tier = "cold"

[retention.default]
keep-daily = 7
keep-weekly = 4
keep-monthly = 6
keep-yearly = 2

[retention.tier.hot]
keep-last = 3
keep-hourly = 24
max-count = 50

[retention.vm."db01"]
keep-last = 30
max-age = "90d"

[hooks]
pre-backup = ["/usr/local/bin/freeze", "{{VM}}", "--tier={{Tier}}"]
post-backup = [["/usr/local/bin/thaw", "{{VM}}", "{{Status}}"], ["/usr/bin/logger", "done"]]
pre-restore = ["/usr/local/bin/check-target", "{{Target}}", "{{Backup}}"]
timeout = "10m"

[alerts]
to = ["ops@example.com", "oncall@example.com"]
from = "vmvault@kvm1.example.com"
smtp-url = "smtps://mailer:secret@mail.example.com:465"
on-stuck = false
behind-tolerance = "12h"
stuck-after = "8h"

[log]
target = "file:/var/log/vmvault.log"
level = "debug"
)");
  EXPECT_EQ(c.repository, "/srv/vmvault");
  EXPECT_EQ(c.period, Period::kWeek);
  EXPECT_EQ(c.nice, 10);
  EXPECT_EQ(c.ionice.io_class, IoNice::Class::kBestEffort);
  EXPECT_EQ(c.ionice.level, 7);
  ASSERT_TRUE(c.schedule.window.has_value());
  EXPECT_EQ(c.schedule.window->ToString(), "22:00-06:00");
  EXPECT_EQ(c.schedule.concurrency, 3);
  EXPECT_THAT(c.schedule.tags, ElementsAre("prod"));
  EXPECT_EQ(c.Tier("hot").interval, std::chrono::hours(12));
  EXPECT_EQ(c.Tier("warm").interval, std::chrono::days(7));  // not given: the default
  EXPECT_EQ(c.Tier("cold").interval, std::chrono::days(90));

  ASSERT_EQ(c.sources.size(), 5u);
  const SourceConfig& d = c.sources[0];
  EXPECT_EQ(d.kind, SourceKind::kDomain);
  EXPECT_EQ(d.where, (ConfigLocation{16, 1}));
  EXPECT_THAT(d.names, ElementsAre("web*", "db01"));
  EXPECT_THAT(d.exclude, ElementsAre("web-test*"));
  EXPECT_EQ(d.connect, "qemu+ssh://root@kvm1/system");
  EXPECT_EQ(d.method, "snapshot");
  EXPECT_EQ(d.tier, "hot");
  EXPECT_THAT(d.tags, ElementsAre("prod", "web"));
  EXPECT_FALSE(d.period.has_value());
  EXPECT_TRUE(d.enabled);

  const SourceConfig& f = c.sources[1];
  EXPECT_EQ(f.kind, SourceKind::kFile);
  EXPECT_THAT(f.paths, ElementsAre("/vm/images/fileserver.qcow2", "/vm/images/data.vdi"));
  EXPECT_EQ(f.vm, "fileserver");  // from the first file, as `vmvault ingest` names it
  EXPECT_EQ(f.tier, "warm");
  EXPECT_EQ(f.period, Period::kDay);
  EXPECT_EQ(f.connect, "");
  EXPECT_EQ(f.method, "");

  const SourceConfig& v = c.sources[2];
  EXPECT_EQ(v.kind, SourceKind::kVirtualBox);
  EXPECT_EQ(v.path, "/data/vbox/hot");
  EXPECT_THAT(v.names, ElementsAre("*"));
  EXPECT_EQ(v.method, "pause");

  EXPECT_EQ(c.sources[3].kind, SourceKind::kDevice);
  EXPECT_EQ(c.sources[3].vm, "appliance");
  EXPECT_FALSE(c.sources[3].enabled);
  EXPECT_EQ(c.sources[4].kind, SourceKind::kLvm);
  EXPECT_EQ(c.sources[4].snapshot_size, "4G");
  EXPECT_THAT(c.sources[4].paths, ElementsAre("/dev/vg0/web02-root", "/dev/vg0/web02-data"));

  // The tag filter and enabled decide what the schedule backs up.
  EXPECT_TRUE(c.Scheduled(c.sources[0]));
  EXPECT_TRUE(c.Scheduled(c.sources[1]));
  EXPECT_FALSE(c.Scheduled(c.sources[2]));  // no tags
  EXPECT_FALSE(c.Scheduled(c.sources[3]));  // disabled

  // A VM's policy, then its tier's, then the default, each as a whole.
  const RetentionPolicy& db = c.retention.For("db01", "hot");
  EXPECT_EQ(db.keep_last, 30);
  EXPECT_EQ(db.keep_daily, 0);  // not merged with the default
  EXPECT_EQ(db.max_age, std::chrono::days(90));
  const RetentionPolicy& hot = c.retention.For("web01", "hot");
  EXPECT_EQ(hot.keep_last, 3);
  EXPECT_EQ(hot.keep_hourly, 24);
  EXPECT_EQ(hot.max_count, 50);
  const RetentionPolicy& warm = c.retention.For("web01", "warm");
  EXPECT_EQ(warm.keep_daily, 7);
  EXPECT_EQ(warm.keep_yearly, 2);
  EXPECT_TRUE(warm.HasKeepRule());
  EXPECT_FALSE(warm.max_count.has_value());

  ASSERT_EQ(c.hooks.For(HookEvent::kPreBackup).size(), 1u);
  EXPECT_THAT(c.hooks.For(HookEvent::kPreBackup)[0].argv,
              ElementsAre("/usr/local/bin/freeze", "{{VM}}", "--tier={{Tier}}"));
  ASSERT_EQ(c.hooks.For(HookEvent::kPostBackup).size(), 2u);
  EXPECT_THAT(c.hooks.For(HookEvent::kPostBackup)[1].argv, ElementsAre("/usr/bin/logger", "done"));
  EXPECT_EQ(c.hooks.For(HookEvent::kPreRestore).size(), 1u);
  EXPECT_TRUE(c.hooks.For(HookEvent::kPreSchedule).empty());
  EXPECT_EQ(c.hooks.timeout, std::chrono::minutes(10));

  EXPECT_TRUE(c.alerts.enabled());
  EXPECT_THAT(c.alerts.to, ElementsAre("ops@example.com", "oncall@example.com"));
  EXPECT_EQ(c.alerts.from, "vmvault@kvm1.example.com");
  EXPECT_EQ(c.alerts.smtp_url, "smtps://mailer:secret@mail.example.com:465");
  EXPECT_EQ(c.alerts.sendmail, "");
  EXPECT_FALSE(c.alerts.on_stuck);
  EXPECT_EQ(c.alerts.behind_tolerance, std::chrono::hours(12));
  EXPECT_EQ(c.alerts.stuck_after, std::chrono::hours(8));

  EXPECT_EQ(c.log.target, LogConfig::Target::kFile);
  EXPECT_EQ(c.log.file, "/var/log/vmvault.log");
  EXPECT_EQ(c.log.level, "debug");
}

TEST(ConfigTest, SyntaxErrorsComeAloneWithTheirPlace) {
  EXPECT_ONLY_ERROR("a = 1\nb = \n", 2, 5, "syntax error: expected value");
  EXPECT_ONLY_ERROR("[schedule]\nconcurrency = 2\nconcurrency = 3\n", 3, 15, "syntax error");
  EXPECT_ONLY_ERROR("[log]\n[log]\n", 2, 1, "syntax error");
  EXPECT_ONLY_ERROR("repository = \"/x\n", 1, 17, "syntax error");
  EXPECT_ONLY_ERROR("[[source]\n", 1, 10, "syntax error");
  // The toml++ wording is tidied: no "Error while parsing" prefix.
  EXPECT_THAT(Only("a = 1\nb = \n").message, ::testing::Not(HasSubstr("Error while")));
}

TEST(ConfigTest, UnknownKeysNameTheClosestKnownOne) {
  EXPECT_ONLY_ERROR("repositry = \"/x\"\n", 1, 1,
                    "unknown key 'repositry' at the top level "
                    "(did you mean 'repository'?)");
  EXPECT_ONLY_ERROR("[schedule]\nwindow = \"22:00-06:00\"\nconcurency = 2\n", 3, 1,
                    "unknown key 'concurency' in [schedule] (did you mean 'concurrency'?)");
  EXPECT_ONLY_ERROR("[retention.default]\nkeep_last = 3\n", 2, 1, "did you mean 'keep-last'?");
  EXPECT_ONLY_ERROR("[hooks]\nhook-timeout = \"5m\"\n", 2, 1, "did you mean 'timeout'?");
  EXPECT_ONLY_ERROR("[tiers.hot]\nintervall = \"1d\"\n", 2, 1, "did you mean 'interval'?");
  EXPECT_ONLY_ERROR("[alerts]\nto = [\"a@b\"]\nsmtp_url = \"smtp://h\"\n", 3, 1,
                    "did you mean 'smtp-url'?");
  EXPECT_ONLY_ERROR("[log]\ntarget = \"syslog\"\nfacility = \"daemon\"\n", 3, 1,
                    "unknown key 'facility' in [log]");
  EXPECT_ONLY_ERROR("[[sources]]\nkind = \"file\"\n", 1, 3, "did you mean 'source'?");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\nname = \"x\"\nconect = \"qemu:///system\"\n", 4,
                    1, "unknown key 'conect' in [[source]] (did you mean 'connect'?)");
  // A top-level key written below a table header lands in that table.
  EXPECT_ONLY_ERROR("[schedule]\nconcurrency = 2\nnice = 10\n", 3, 1,
                    "put top-level keys above the first header");
  // A key of another kind of source.
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = [\"/a.raw\"]\nconnect = \"qemu:///x\"\n",
                    4, 1, "only domain sources have 'connect', not file sources");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\nname = \"x\"\nvm = \"y\"\n", 4, 1,
                    "only file, device and lvm sources have 'vm'");
}

TEST(ConfigTest, WrongTypes) {
  EXPECT_ONLY_ERROR("repository = 5\n", 1, 14, "repository: expected a string, not an integer");
  EXPECT_ONLY_ERROR("[schedule]\nconcurrency = \"2\"\n", 2, 15,
                    "schedule.concurrency: expected an integer, not a string");
  EXPECT_ONLY_ERROR("[schedule]\nconcurrency = 2.0\n", 2, 15, "not a floating-point number");
  EXPECT_ONLY_ERROR("[schedule]\nwindow = 22:00:00\n", 2, 10, "expected a string, not a time");
  EXPECT_ONLY_ERROR("[schedule]\ntags = \"prod\"\n", 2, 8, "write [\"prod\"]");
  EXPECT_ONLY_ERROR("[schedule]\ntags = [\"prod\", 3]\n", 2, 17,
                    "expected strings, not an integer");
  EXPECT_ONLY_ERROR("schedule = \"nightly\"\n", 1, 12, "schedule: expected a table, not a string");
  EXPECT_ONLY_ERROR("[tiers.hot]\ninterval = 86400\n", 2, 12,
                    "write a duration as a string with a unit, such as \"86400s\"");
  EXPECT_ONLY_ERROR("[tiers]\nhot = \"1d\"\n", 2, 7, "tiers.hot: expected a table, not a string");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = [\"/a.raw\"]\nenabled = \"no\"\n", 4, 11,
                    "source.enabled: expected a boolean, not a string");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\nname = 7\n", 3, 8,
                    "expected a string or an array of strings");
  EXPECT_ONLY_ERROR("[source]\nkind = \"file\"\n", 1, 1, "write [[source]], with two brackets");
  EXPECT_ONLY_ERROR("source = [1, 2]\n", 1, 10, "expected [[source]] tables");
  EXPECT_ONLY_ERROR("[alerts]\nto = [\"a@b\"]\non-failure = 1\n", 3, 14,
                    "alerts.on-failure: expected a boolean");
}

TEST(ConfigTest, BadValues) {
  EXPECT_ONLY_ERROR("repository = \"var/lib/vmvault\"\n", 1, 14, "not an absolute path");
  EXPECT_ONLY_ERROR("period = \"monht\"\n", 1, 10,
                    "period: unknown period 'monht' (did you mean 'month'?)");
  EXPECT_ONLY_ERROR("nice = 20\n", 1, 8, "nice: 20 is out of range (-20 to 19)");
  EXPECT_ONLY_ERROR("ionice = \"realtime:0\"\n", 1, 10, "realtime");
  EXPECT_ONLY_ERROR("ionice = \"best-effort:8\"\n", 1, 10, "not an I/O class");
  EXPECT_ONLY_ERROR("[schedule]\nconcurrency = 0\n", 2, 15, "out of range (1 to 64)");
  EXPECT_ONLY_ERROR("[schedule]\nwindow = \"22:00-6\"\n", 2, 10, "not a time of day");
  EXPECT_ONLY_ERROR("[schedule]\nwindow = \"25:00-06:00\"\n", 2, 10, "the hours go from 0 to 23");
  EXPECT_ONLY_ERROR("[schedule]\ntags = [\"two words\"]\n", 2, 9, "is not a tag");
  EXPECT_ONLY_ERROR("[tiers.hto]\ninterval = \"1d\"\n", 1, 8,
                    "unknown tier 'hto' (did you mean 'hot'?)");
  EXPECT_ONLY_ERROR("[tiers.cold]\ninterval = \"1mo\"\n", 2, 12, "there is no month unit: use 30d");
  EXPECT_ONLY_ERROR("[tiers.hot]\ninterval = \"30s\"\n", 2, 12, "too short (at least 1m)");
  EXPECT_ONLY_ERROR("[hooks]\ntimeout = \"5 minutes\"\n", 2, 11, "is not a duration");
  EXPECT_ONLY_ERROR("[alerts]\nto = [\"ops\"]\n", 2, 7, "'ops' is not an email address");
  EXPECT_ONLY_ERROR("[alerts]\nto = [\"a@b\"]\nfrom = \"me\"\n", 3, 8, "not an email address");
  EXPECT_ONLY_ERROR("[alerts]\nto = [\"a@b\"]\nsmtp-url = \"mail.example.com\"\n", 3, 12,
                    "must start with smtp:// or smtps://");
  EXPECT_ONLY_ERROR("[alerts]\nto = [\"a@b\"]\nsendmail = \"sendmail\"\n", 3, 12,
                    "not an absolute path");
  EXPECT_ONLY_ERROR("[alerts]\nto = [\"a@b\"]\nsmtp-url = \"smtp://h\"\nsendmail = \"/s\"\n", 4, 12,
                    "give smtp-url or sendmail, not both");
  EXPECT_ONLY_ERROR("[alerts]\nsmtp-url = \"smtp://h\"\n", 1, 1, "no address to send alerts to");
  EXPECT_ONLY_ERROR("[alerts]\nto = [\"a@b\"]\nstuck-after = \"0s\"\n", 3, 15, "too short");
  EXPECT_ONLY_ERROR("[log]\ntarget = \"file:vmvault.log\"\n", 2, 10, "not an absolute file path");
  EXPECT_ONLY_ERROR("[log]\ntarget = \"sylog\"\n", 2, 10, "(did you mean 'syslog'?)");
  EXPECT_ONLY_ERROR("[log]\nlevel = \"warn\"\n", 2, 9, "(did you mean 'warning'?)");
  EXPECT_ONLY_ERROR("[retention.default]\nkeep-daily = -1\n", 2, 14, "out of range");
  EXPECT_ONLY_ERROR("[retention.default]\nmax-count = 0\n", 2, 13, "0 would remove every backup");
  EXPECT_ONLY_ERROR("[retention.default]\nmax-age = \"10m\"\n", 2, 11, "too short (at least 1h)");
  EXPECT_ONLY_ERROR("[retention.tier.lukewarm]\nkeep-last = 1\n", 1, 17,
                    "retention.tier: unknown tier 'lukewarm' (did you mean 'warm'?)");
  EXPECT_ONLY_ERROR("[retention.vm.\"../etc\"]\nkeep-last = 1\n", 1, 15,
                    "VM name '../etc' may not start with '.'");
  EXPECT_ONLY_ERROR("[retention.vm.\"a/b\"]\nkeep-last = 1\n", 1, 15, "may not contain '/'");
}

TEST(ConfigTest, BadSources) {
  EXPECT_ONLY_ERROR("[[source]]\nname = \"web*\"\n", 1, 1, "source: no kind");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domian\"\nname = \"web*\"\n", 2, 8,
                    "unknown kind 'domian' (did you mean 'domain'?)");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\n", 1, 1, "a domain source needs name =");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"virtualbox\"\n", 1, 1,
                    "a virtualbox source needs path =");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\n", 1, 1, "a file source needs paths =");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"device\"\npaths = [\"/dev/sdb\"]\n", 1, 1,
                    "a device source needs vm =");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"lvm\"\npaths = [\"/dev/vg0/a\"]\n", 1, 1,
                    "an lvm source needs vm =");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\nname = \"web[0-9\"\n", 3, 8,
                    "'web[0-9' is not a valid pattern");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\nname = [\"ok\", \".hidden*\"]\n", 3, 15,
                    "may not start with '.'");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\nname = \"a\"\nexclude = [\"[z-a]\"]\n", 4, 12,
                    "reversed");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\nname = \"a\"\nconnect = \"localhost\"\n", 4, 11,
                    "not a libvirt URI");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"domain\"\nname = \"a\"\nmethod = \"paused\"\n", 4, 10,
                    "unknown method 'paused' (did you mean 'pause'?)");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"virtualbox\"\npath = \"/v\"\nmethod = \"snapshot\"\n", 4,
                    10, "one of pause");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"virtualbox\"\npath = \"vbox\"\n", 3, 8,
                    "not an absolute path");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = [\"/a.raw\", \"b.raw\"]\n", 3, 20,
                    "'b.raw' is not an absolute path");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = []\n", 3, 9, "the list is empty");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = [\"/a.raw\", \"/x/../a.raw\"]\n", 3, 20,
                    "listed twice");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"device\"\npaths = [\"/vm/a.raw\"]\nvm = \"a\"\n", 3, 10,
                    "not under /dev");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"lvm\"\npaths = [\"/dev/vg0\"]\nvm = \"a\"\n", 3, 10,
                    "of the form /dev/VG/LV");
  EXPECT_ONLY_ERROR(
      "[[source]]\nkind = \"lvm\"\npaths = [\"/dev/vg0/a\"]\nvm = \"a\"\nsnapshot-size = \"0%\"\n",
      5, 17, "neither a percentage");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = [\"/a.raw\"]\nvm = \"two\\nlines\"\n", 4,
                    6, "may not contain control characters");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = [\"/a.raw\"]\ntier = \"lukewarm\"\n", 4,
                    8, "unknown tier 'lukewarm' (did you mean 'warm'?)");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = [\"/a.raw\"]\nperiod = \"fortnight\"\n",
                    4, 10, "unknown period 'fortnight'");
  EXPECT_ONLY_ERROR("[[source]]\nkind = \"file\"\npaths = [\"/a.raw\"]\ntags = [\"\"]\n", 4, 9,
                    "is not a tag");
}

TEST(ConfigTest, DuplicateSources) {
  // The same domain on the same connection.
  EXPECT_ONLY_ERROR(R"([[source]]
kind = "domain"
name = "web*"

[[source]]
kind = "domain"
name = ["db01", "web*"]
)",
                    7, 17,
                    "the domain 'web*' on qemu:///system is already backed up by the "
                    "source at line 1");
  // The same domain name on another connection is the same VM in the repository.
  EXPECT_ONLY_ERROR(R"([[source]]
kind = "domain"
name = "db01"

[[source]]
kind = "domain"
name = "db01"
connect = "qemu+ssh://other/system"
)",
                    7, 8, "the VM 'db01' already comes from the source at line 1");
  // The same disk twice.
  EXPECT_ONLY_ERROR(R"([[source]]
kind = "file"
paths = ["/vm/a.qcow2"]

[[source]]
kind = "file"
paths = ["/vm/b.qcow2", "/vm/./a.qcow2"]
vm = "b"
)",
                    7, 25, "'/vm/a.qcow2' is already backed up by the source at line 1");
  // Two file sources whose VM names are the same (one derived from its first file).
  EXPECT_ONLY_ERROR(R"([[source]]
kind = "file"
paths = ["/vm/web01.qcow2"]

[[source]]
kind = "device"
paths = ["/dev/sdb"]
vm = "web01"
)",
                    8, 6, "the VM 'web01' already comes from the source at line 1");
  // The same VirtualBox folder twice, every machine in it.
  EXPECT_ONLY_ERROR(R"([[source]]
kind = "virtualbox"
path = "/data/vbox"

[[source]]
kind = "virtualbox"
path = "/data/vbox/"
)",
                    7, 8, "every machine in /data/vbox is already backed up");
  // Different globs on one connection, or one VirtualBox folder with different names,
  // are not duplicates.
  Parse(R"([[source]]
kind = "domain"
name = "web*"
[[source]]
kind = "domain"
name = "db*"
[[source]]
kind = "virtualbox"
path = "/v"
name = "a"
[[source]]
kind = "virtualbox"
path = "/v"
name = "b"
)");
}

TEST(ConfigTest, TheTagFilterNamesTagsSourcesHave) {
  EXPECT_ONLY_ERROR(R"([schedule]
tags = ["prod", "prdo"]

[[source]]
kind = "file"
paths = ["/a.raw"]
tags = ["prod"]
)",
                    2, 17, "no source has the tag 'prdo' (did you mean 'prod'?)");
}

TEST(ConfigTest, BadHooks) {
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = \"/usr/local/bin/x {{VM}}\"\n", 2, 14,
                    "write the command as an array");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = [\"freeze\", \"{{VM}}\"]\n", 2, 15,
                    "the program 'freeze' is not an absolute path");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = [\"{{VM}}\"]\n", 2, 15,
                    "the program may not contain {{variables}}");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = [\"/x\", \"{{vm}}\"]\n", 2, 21,
                    "unknown variable {{vm}} (did you mean {{VM}}?)");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = [\"/x\", \"{{Backup}}\"]\n", 2, 21,
                    "{{Backup}} is not available in pre-backup hooks");
  EXPECT_ONLY_ERROR("[hooks]\npost-schedule = [\"/x\", \"--vm={{VM}}\"]\n", 2, 24,
                    "{{VM}} is not available in post-schedule hooks");
  EXPECT_ONLY_ERROR("[hooks]\npre-snapshot = [\"/x\", \"{{VM\"]\n", 2, 23, "without a closing");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = []\n", 2, 14, "the command is empty");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = [[\"/x\"], []]\n", 2, 23, "a command is empty");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = [\"/x\", [\"/y\"]]\n", 2, 14, "expected one command");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = [[\"/x\", 5]]\n", 2, 22, "expected strings");
  EXPECT_ONLY_ERROR("[hooks]\npre-backup = 1\n", 2, 14, "expected an array, not an integer");
  EXPECT_ONLY_ERROR("[hooks]\npre-backups = [\"/x\"]\n", 2, 1, "did you mean 'pre-backup'?");
  // Every problem of one command, each at its argument.
  EXPECT_THAT(Errors("[hooks]\npost-restore = [\"rel\", \"{{a}}\", \"{{Target}}\", \"{{b}}\"]\n"),
              ElementsAre(HasSubstr("2:17: hooks.post-restore: the program 'rel'"),
                          HasSubstr("2:24: hooks.post-restore: unknown variable {{a}}"),
                          HasSubstr("2:47: hooks.post-restore: unknown variable {{b}}")));
}

TEST(ConfigTest, ReportsEveryProblemInFileOrder) {
  const std::string text = R"(repository = "relative"
period = "monthly"

[schedule]
window = "06:00-06:00"
concurency = 2

[tiers.warm]
interval = "1x"

[[source]]
kind = "domain"
name = "web["

[[source]]
kind = "file"
paths = ["/vm/a.qcow2"]
tier = "tepid"

[hooks]
post-backup = ["/x", "{{Nope}}"]

[log]
level = "loud"
)";
  EXPECT_THAT(
      Errors(text),
      ElementsAre(HasSubstr("1:14: repository:"), HasSubstr("2:10: period:"),
                  HasSubstr("5:10: schedule.window:"), HasSubstr("6:1: unknown key 'concurency'"),
                  HasSubstr("9:12: tiers.warm.interval:"), HasSubstr("13:8: source.name:"),
                  HasSubstr("18:8: source.tier:"), HasSubstr("21:22: hooks.post-backup:"),
                  HasSubstr("24:9: log.level:")));
  // ParseConfig joins them, one "source:line:column: message" per line.
  auto r = ParseConfig(text, "/etc/vmvault/config.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  std::istringstream lines(r.status().message());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.rfind("/etc/vmvault/config.toml:", 0), 0u) << line;
    ++n;
  }
  EXPECT_EQ(n, 9);
  EXPECT_THAT(r.status().message(), HasSubstr("/etc/vmvault/config.toml:9:12: "));
}

TEST(ConfigTest, ErrorsFormatWithTheirSource) {
  EXPECT_EQ((ConfigError{{3, 7}, "bad"}).ToString("c.toml"), "c.toml:3:7: bad");
  EXPECT_EQ((ConfigError{{}, "bad"}).ToString("c.toml"), "c.toml: bad");
}

TEST(ConfigTest, VirtualBoxAndFileDefaults) {
  const Config c = Parse(R"([[source]]
kind = "virtualbox"
path = "/root/.config/VirtualBox/VirtualBox.xml"
[[source]]
kind = "file"
paths = ["/vm/..odd name.v1.qcow2"]
[[source]]
kind = "domain"
name = "a"
)");
  EXPECT_THAT(c.sources[0].names, ElementsAre("*"));
  EXPECT_EQ(c.sources[0].method, "pause");
  EXPECT_EQ(c.sources[1].vm, "_.odd name.v1");  // sanitized, as ingest would
  EXPECT_EQ(c.sources[2].connect, "qemu:///system");
  EXPECT_EQ(c.sources[2].method, "backup");
  EXPECT_EQ(c.sources[2].tier, "warm");
}

// The example in vmvault.toml(5) is a valid configuration. The build extracts it
// (packaging/extract_example.cmake) into the file that is installed as
// share/doc/vmvault/config.toml.example.
TEST(ConfigTest, TheManPageExampleIsValid) {
  std::ifstream in(std::string(VV_BINARY_DIR) + "/config.toml.example");
  ASSERT_TRUE(in.good()) << "build the vmvault_packaging target";
  const std::string example((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NE(example.find("[[source]]"), std::string::npos) << example;
  ASSERT_EQ(example.find("\\-"), std::string::npos) << "roff escapes left:\n" << example;
  const ConfigCheck c = CheckConfig(example, "vmvault.toml.5");
  EXPECT_TRUE(c.ok()) << ::testing::PrintToString(Errors(example)) << "\n" << example;
  EXPECT_GE(c.config.sources.size(), 5u);
}

TEST(ConfigFileTest, ReadsRegularFilesOnly) {
  testing::TempDir tmp;
  const std::string good = tmp / "config.toml";
  std::ofstream(good) << "repository = \"/srv/vmvault\"\n";
  auto c = LoadConfig(good);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->repository, "/srv/vmvault");

  EXPECT_EQ(ReadConfigFile(tmp / "absent.toml").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(LoadConfig(tmp / "absent.toml").status().code(), StatusCode::kNotFound);
  auto dir = ReadConfigFile(tmp.path());
  EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(dir.status().message(), HasSubstr("is a directory"));
  // A FIFO is refused without waiting for a writer.
  const std::string fifo = tmp / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(ReadConfigFile(fifo).status().message(), HasSubstr("not a regular file"));
  const std::string big = tmp / "big.toml";
  std::ofstream(big) << std::string(kMaxConfigBytes + 1, '#');
  EXPECT_THAT(ReadConfigFile(big).status().message(), HasSubstr("larger than"));
  // Problems name the file.
  const std::string bad = tmp / "bad.toml";
  std::ofstream(bad) << "\n\nnice = 99\n";
  auto b = LoadConfig(bad);
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(b.status().message(), HasSubstr(bad + ":3:8: nice: 99 is out of range"));
}

}  // namespace
}  // namespace vmvault::ingest
