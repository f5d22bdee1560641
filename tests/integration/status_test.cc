// vmvault status, show-backups and list with sizes, end to end: sizes of two backups
// that share chunks, YAML equal to JSON, status's exit codes when a VM is behind
// (looked at days later through faketime) and when verify found damage, and where the
// log lines go (a file, syslog through a /dev/log socket in a private mount namespace,
// and nothing on stderr under cron).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace vmvault::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr int kExitRepo = 3, kExitBadInput = 5, kExitBehind = 9;
constexpr uint64_t kChunk = 64 << 10;

// Whether a YAML document holds the same tree as a JSON one.
void ExpectSame(const nlohmann::json& j, const YAML::Node& y, const std::string& where) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      ASSERT_TRUE(y.IsMap()) << where;
      EXPECT_EQ(y.size(), j.size()) << where;
      for (const auto& [k, v] : j.items()) ExpectSame(v, y[k], where + "." + k);
      break;
    case nlohmann::json::value_t::array:
      ASSERT_TRUE(y.IsSequence()) << where;
      ASSERT_EQ(y.size(), j.size()) << where;
      for (size_t i = 0; i < j.size(); ++i)
        ExpectSame(j[i], y[i], where + "[" + std::to_string(i) + "]");
      break;
    case nlohmann::json::value_t::string:
      EXPECT_EQ(y.as<std::string>(), j.get<std::string>()) << where;
      break;
    case nlohmann::json::value_t::boolean:
      EXPECT_EQ(y.as<bool>(), j.get<bool>()) << where;
      break;
    case nlohmann::json::value_t::number_unsigned:
      EXPECT_EQ(y.as<uint64_t>(), j.get<uint64_t>()) << where;
      break;
    case nlohmann::json::value_t::number_integer:
      EXPECT_EQ(y.as<int64_t>(), j.get<int64_t>()) << where;
      break;
    case nlohmann::json::value_t::number_float:
      EXPECT_DOUBLE_EQ(y.as<double>(), j.get<double>()) << where;
      break;
    default:
      EXPECT_TRUE(y.IsNull()) << where << ": " << YAML::Dump(y);
      break;
  }
}

class StatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_ / "repo";
    ASSERT_EQ(RunCmd({VmvaultPath(), "init", "--repo", repo_, "--chunk-size", "64K"}).exit_code, 0);
    image_ = tmp_ / "web.raw";
    // 4 MiB of random data (64 chunks) in a 16 MiB disk.
    ASSERT_EQ(Sh("truncate -s 16M " + image_ + " && head -c 4M /dev/urandom | dd of=" + image_ +
                 " bs=1M seek=2 conv=notrunc status=none"),
              0);
  }

  void Ingest() {
    RunResult r =
        RunCmd({VmvaultPath(), "ingest", "--repo", repo_, "--file", image_, "--vm", "web"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // As under cron (no terminal, stdin /dev/null): nothing at all on success.
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "");
  }

  RunResult Vmvault(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), VmvaultPath());
    args.insert(args.begin() + 2, {"--repo", repo_});
    return RunCmd(args, env);
  }

  nlohmann::json Json(const std::vector<std::string>& args) {
    RunResult r = Vmvault(args);
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == kExitBehind || r.exit_code == kExitRepo)
        << r.err;
    return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  TempDir tmp_;
  std::string repo_;
  std::string image_;
};

TEST_F(StatusTest, UniqueSizesAreWhatTwoBackupsDoNotShare) {
  ASSERT_NO_FATAL_FAILURE(Ingest());
  // Overwrite the first MiB of the random data: 16 chunks differ, 48 are shared.
  ASSERT_EQ(
      Sh("head -c 1M /dev/urandom | dd of=" + image_ + " bs=1M seek=2 conv=notrunc status=none"),
      0);
  ASSERT_NO_FATAL_FAILURE(Ingest());

  const nlohmann::json vm = Json({"show-backups", "web", "--json"});
  ASSERT_TRUE(vm.is_object()) << vm.dump();
  ASSERT_EQ(vm["backups"].size(), 2u);
  const nlohmann::json& b1 = vm["backups"][0];
  const nlohmann::json& b2 = vm["backups"][1];
  for (const auto* b : {&b1, &b2}) {
    EXPECT_EQ((*b)["logical_bytes"], 16u << 20);
    // 64 random chunks: stored about as they are, plus a small header each.
    EXPECT_GE((*b)["stored_bytes"].get<uint64_t>(), 64 * kChunk);
    EXPECT_LE((*b)["stored_bytes"].get<uint64_t>(), 64 * kChunk + 64 * 256);
  }
  const uint64_t u1 = b1["unique_bytes"], u2 = b2["unique_bytes"];
  EXPECT_GE(u1, 16 * kChunk);
  EXPECT_LE(u1, 16 * kChunk + 16 * 256);
  EXPECT_GE(u2, 16 * kChunk);
  EXPECT_LE(u2, 16 * kChunk + 16 * 256);
  // The VM: 80 distinct chunks, all its own; the shared 48 count once.
  const uint64_t s1 = b1["stored_bytes"], s2 = b2["stored_bytes"];
  EXPECT_EQ(vm["stored_bytes"].get<uint64_t>(), s1 + u2);
  EXPECT_EQ(vm["stored_bytes"].get<uint64_t>(), s2 + u1);
  EXPECT_EQ(vm["unique_bytes"], vm["stored_bytes"]);
  EXPECT_EQ(vm["logical_bytes"], 16u << 20);

  // list --json keeps its fields and has the same sizes.
  const nlohmann::json list = ListJson(repo_);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["backups"][0]["unique_bytes"], u1);
  EXPECT_TRUE(list[0]["backups"][1].contains("new_stored_bytes"));
  EXPECT_EQ(list[0]["stored_bytes"], vm["stored_bytes"]);

  // Pruning the first backup leaves exactly its unique bytes for gc.
  ASSERT_EQ(Vmvault({"prune", "--keep-last", "1"}).exit_code, 0);
  const nlohmann::json status = Json({"status", "--json"});
  EXPECT_EQ(status["repository"]["unreferenced_bytes"], u1) << status.dump(2);
  const nlohmann::json gc = Json({"gc", "--dry-run", "--json"});
  EXPECT_EQ(gc["deleted_bytes"], u1) << gc.dump(2);

  // Text: exact byte counts by default, units with --human.
  RunResult text = Vmvault({"show-backups", "web"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr(" 16777216 "));
  EXPECT_THAT(text.out, HasSubstr("web/"));
  RunResult human = Vmvault({"show-backups", "web", "--human"});
  EXPECT_THAT(human.out, HasSubstr("16.0 MiB"));
  RunResult list_human = Vmvault({"list", "--human"});
  EXPECT_THAT(list_human.out, HasSubstr("16.0 MiB logical"));
}

TEST_F(StatusTest, YamlReadsBackAsTheJson) {
  ASSERT_NO_FATAL_FAILURE(Ingest());
  ASSERT_EQ(Vmvault({"verify"}).exit_code, 0);
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"list"}, {"show-backups", "web"}, {"status"}}) {
    std::vector<std::string> as_json = cmd, as_yaml = cmd;
    as_json.push_back("--json");
    as_yaml.push_back("--yaml");
    RunResult j = Vmvault(as_json), y = Vmvault(as_yaml);
    ASSERT_EQ(j.exit_code, 0) << j.err;
    ASSERT_EQ(y.exit_code, 0) << y.err;
    nlohmann::json doc = nlohmann::json::parse(j.out);
    if (cmd[0] == "status") {
      // Only the repository's size on disk and the ages in seconds (the second run may
      // start in a later second) may differ between the two runs.
      YAML::Node node = YAML::Load(y.out);
      doc["repository"]["disk_bytes"] = node["repository"]["disk_bytes"].as<uint64_t>();
      ASSERT_EQ(node["vms"].size(), doc["vms"].size());
      for (size_t i = 0; i < doc["vms"].size(); ++i) {
        if (doc["vms"][i]["age_s"].is_number()) {
          doc["vms"][i]["age_s"] = node["vms"][i]["age_s"].as<int64_t>();
        }
      }
      ExpectSame(doc, node, cmd[0]);
    } else {
      ExpectSame(doc, YAML::Load(y.out), cmd[0]);
    }
  }
  EXPECT_NE(Vmvault({"list", "--json", "--yaml"}).exit_code, 0);
}

TEST_F(StatusTest, ExitCodesSayWhenAVmIsBehindAndWhenVerifyFoundDamage) {
  ASSERT_NO_FATAL_FAILURE(Ingest());
  const std::string config = tmp_ / "config.toml";
  std::ofstream(config) << "[tiers.warm]\ninterval = \"1d\"\n[alerts]\nto = "
                           "[\"ops@example.com\"]\nbehind-tolerance = \"12h\"\n";

  RunResult now = Vmvault({"status", "--config", config});
  EXPECT_EQ(now.exit_code, 0) << now.out << now.err;
  EXPECT_THAT(now.out, HasSubstr("web"));
  EXPECT_THAT(now.out, HasSubstr("never"));  // not verified yet

  // Looked at 2 days later: behind the 1d interval + 12h.
  RunResult later = RunCmd({"faketime", "-f", "+2d", VmvaultPath(), "status", "--repo", repo_,
                            "--config", config, "--json"});
  EXPECT_EQ(later.exit_code, kExitBehind) << later.err;
  EXPECT_THAT(later.err, HasSubstr("behind"));
  const nlohmann::json doc = nlohmann::json::parse(later.out);
  EXPECT_TRUE(doc["vms"][0]["behind"].get<bool>()) << doc.dump(2);
  EXPECT_EQ(doc["vms"][0]["interval_s"], 86400);
  EXPECT_FALSE(doc["ok"].get<bool>());
  // An empty file: the warm tier's default (7d + 1d) applies.
  const std::string empty = tmp_ / "empty.toml";
  std::ofstream(empty) << "";
  EXPECT_EQ(
      RunCmd({"faketime", "-f", "+2d", VmvaultPath(), "status", "--repo", repo_, "--config", empty})
          .exit_code,
      0);
  EXPECT_EQ(RunCmd({"faketime", "-f", "+2d", VmvaultPath(), "status", "--repo", repo_},
                   {"VMVAULT_CONFIG=" + (tmp_ / "none.toml")})
                .exit_code,
            kExitBadInput)
      << "a named configuration file must exist";
  EXPECT_EQ(RunCmd({"faketime", "-f", "+2d", VmvaultPath(), "status", "--repo", repo_, "--config",
                    tmp_ / "missing.toml"})
                .exit_code,
            kExitBadInput);

  // Damage that verify found: exit 3, whatever the schedule says.
  std::string blob;
  for (const auto& e : std::filesystem::directory_iterator(repo_ + "/db")) {
    if (e.path().extension() == ".blob") blob = e.path();
  }
  ASSERT_FALSE(blob.empty());
  ASSERT_EQ(Sh("head -c 4096 /dev/urandom | dd of=" + blob + " bs=1 seek=" +
               std::to_string(std::filesystem::file_size(blob) / 2) + " conv=notrunc status=none"),
            0);
  EXPECT_EQ(Vmvault({"verify"}).exit_code, kExitRepo);
  RunResult damaged = Vmvault({"status", "--config", config, "--json"});
  EXPECT_EQ(damaged.exit_code, kExitRepo) << damaged.err;
  const nlohmann::json d = nlohmann::json::parse(damaged.out);
  EXPECT_EQ(d["vms"][0]["damaged_backups"].size(), 1u) << d.dump(2);
  EXPECT_FALSE(d["vms"][0]["verify_ok"].get<bool>());
  RunResult text = Vmvault({"status", "--config", config});
  EXPECT_THAT(text.out, HasSubstr("DAMAGED"));
}

TEST_F(StatusTest, UnknownVmIsAClearError) {
  ASSERT_NO_FATAL_FAILURE(Ingest());
  RunResult r = Vmvault({"show-backups", "nope"});
  EXPECT_EQ(r.exit_code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("no VM named 'nope'"));
  EXPECT_EQ(r.out, "");
}

TEST_F(StatusTest, LogLinesGoToTheFileWithTimeAndPid) {
  ASSERT_NO_FATAL_FAILURE(Ingest());
  const std::string log = tmp_ / "vmvault.log";
  std::ofstream(log) << "an earlier line\n";
  RunResult r = Vmvault({"verify", "--log-file", log});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "") << "stderr stays quiet without a terminal";
  const std::string text = Slurp(log);
  EXPECT_THAT(text, ::testing::StartsWith("an earlier line\n")) << "appended to";
  EXPECT_THAT(text,
              MatchesRegex("(.|\n)*\n[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9]{2}:[0-9]{2} "
                           "vmvault\\[[0-9]+\\] info: verified 1 backup(.|\n)*"));
  // --log-level warning leaves the information out.
  const std::string quiet = tmp_ / "quiet.log";
  ASSERT_EQ(Vmvault({"verify", "--log-file", quiet, "--log-level", "warning"}).exit_code, 0);
  EXPECT_EQ(Slurp(quiet), "");
  // A log file that cannot be opened is an error, and nothing runs.
  std::ofstream(tmp_ / "plain") << "a file, not a directory\n";
  RunResult bad = Vmvault({"verify", "--log-file", tmp_ / "plain/log"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("cannot open the log file"));
  EXPECT_NE(Vmvault({"verify", "--log-level", "loud"}).exit_code, 0);
  EXPECT_NE(Vmvault({"verify", "--syslog", "--log-file", log}).exit_code, 0);
}

TEST_F(StatusTest, ScheduleLogsWhereTheConfigurationSays) {
  const std::string log = tmp_ / "schedule.log";
  const std::string config = tmp_ / "config.toml";
  std::ofstream(config) << "repository = \"" << repo_ << "\"\n"
                        << "[[source]]\nkind = \"file\"\nvm = \"web\"\npaths = [\"" << image_
                        << "\"]\n[log]\ntarget = \"file:" << log << "\"\nlevel = \"debug\"\n";
  RunResult r = RunCmd({VmvaultPath(), "schedule", "--config", config});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(Slurp(log), MatchesRegex("(.|\n)*vmvault\\[[0-9]+\\] (info|debug): (.|\n)*"));
  EXPECT_EQ(ListJson(repo_).size(), 1u);
}

TEST_F(StatusTest, SyslogReceivesTheLines) {
  ASSERT_NO_FATAL_FAILURE(Ingest());
  // syslog(3) writes to /dev/log: a datagram socket bound there in a private mount
  // namespace (over a tmpfs /dev) receives what vmvault sends.
  const std::string script = tmp_ / "syslog.py";
  const std::string out = tmp_ / "syslog.out";
  std::ofstream(script) << "import socket, subprocess, sys\n"
                           "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
                           "s.bind('/dev/log')\n"
                           "rc = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL, "
                           "stderr=subprocess.DEVNULL)\n"
                           "s.setblocking(False)\n"
                           "with open(sys.argv[1], 'w') as f:\n"
                           "    f.write('rc=%d\\n' % rc)\n"
                           "    while True:\n"
                           "        try: f.write(s.recv(65536).decode(errors='replace') + '\\n')\n"
                           "        except BlockingIOError: break\n";
  ASSERT_EQ(Sh("unshare -m --propagation private sh -c 'mount -t tmpfs none /dev && "
               "mknod -m 666 /dev/null c 1 3 && mknod -m 444 /dev/urandom c 1 9 && python3 " +
               script + " " + out + " " + VmvaultPath() + " verify --repo " + repo_ + " --syslog'"),
            0);
  const std::string got = Slurp(out);
  EXPECT_THAT(got, HasSubstr("rc=0\n"));
  // <30> is daemon.info; the ident carries the pid.
  EXPECT_THAT(got, MatchesRegex("(.|\n)*<30>.*vmvault\\[[0-9]+\\]: verified 1 backup(.|\n)*"))
      << got;
}

}  // namespace
}  // namespace vmvault::testing
