// VBoxManage state and control (ingest/vbox_manage.h) through FakeCommandRunner, with
// output shaped like VBoxManage 7's. VBoxManage is not installed where these tests run.
#include "ingest/vbox_manage.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ingest/fake_command_runner.h"

namespace vmvault::ingest {
namespace {

const char kWebUuid[] = "1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";

std::vector<std::string> ShowArgv(const std::string& uuid) {
  return {"VBoxManage", "showvminfo", uuid, "--machinereadable"};
}

TEST(VboxManageTest, States) {
  FakeCommandRunner runner;
  const std::string info = R"txt(name="web01"
groups="/"
ostype="Debian (64-bit)"
UUID="1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
"GuestProperty/Net/0/V4/IP"="10.0.2.15"
VMState="{}"
VMStateChangeTime="2024-05-02T10:11:12.000000000"
)txt";
  for (const auto& [state, online] :
       std::vector<std::pair<std::string, bool>>{{"running", true},
                                                 {"paused", true},
                                                 {"livesnapshotting", true},
                                                 {"somethingnew", true},
                                                 {"poweroff", false},
                                                 {"saved", false},
                                                 {"aborted", false},
                                                 {"aborted-saved", false}}) {
    runner.Expect(ShowArgv(kWebUuid), 0, fmt::format(fmt::runtime(info), state));
    auto s = GetVboxState(runner, "{1B0D2C3E-4F5A-4B6C-8D7E-9F0A1B2C3D4E}");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->vm_state, state);
    EXPECT_EQ(s->online, online) << state;
    EXPECT_EQ(s->paused(), state == "paused");
    auto running = IsVboxRunning(runner, kWebUuid);
    ASSERT_TRUE(running.ok());
    EXPECT_EQ(*running, online);
  }
  const auto kv = ParseVboxMachineReadable(fmt::format(fmt::runtime(info), "running"));
  EXPECT_EQ(kv.at("GuestProperty/Net/0/V4/IP"), "10.0.2.15");
  EXPECT_EQ(kv.at("name"), "web01");
}

TEST(VboxManageTest, NotInstalledIsNotFound) {
  FakeCommandRunner runner;  // knows no command, like a host without VBoxManage
  auto s = GetVboxState(runner, kWebUuid);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("VBoxManage is not installed"), std::string::npos);
  EXPECT_EQ(PauseVbox(runner, kWebUuid).code(), StatusCode::kNotFound);
}

TEST(VboxManageTest, Failures) {
  FakeCommandRunner runner;
  runner.Expect(ShowArgv(kWebUuid), 1, "",
                "VBoxManage: error: Could not find a registered machine named "
                "'1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e'\nVBoxManage: error: Details: code "
                "VBOX_E_OBJECT_NOT_FOUND (0x80bb0001)\n");
  EXPECT_EQ(GetVboxState(runner, kWebUuid).status().code(), StatusCode::kNotFound);
  runner.Expect(ShowArgv(kWebUuid), 0, "name=\"web01\"\n");
  EXPECT_EQ(GetVboxState(runner, kWebUuid).status().code(), StatusCode::kExternal);
  runner.Expect({"VBoxManage", "controlvm", kWebUuid, "pause"}, 1, "",
                "VBoxManage: error: Machine 'web01' is not currently running\n");
  const Status s = PauseVbox(runner, kWebUuid);
  EXPECT_EQ(s.code(), StatusCode::kExternal);
  EXPECT_NE(s.message().find("Machine 'web01' is not currently running"), std::string::npos)
      << s.ToString();
  // Not a uuid: nothing runs.
  const size_t calls = runner.calls().size();
  EXPECT_EQ(ResumeVbox(runner, "--help").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(runner.calls().size(), calls);
}

TEST(VboxManageTest, PauseAndResume) {
  FakeCommandRunner runner;
  runner.Expect({"VBoxManage", "controlvm", kWebUuid, "pause"}, 0, "");
  runner.Expect({"VBoxManage", "controlvm", kWebUuid, "resume"}, 0, "");
  EXPECT_TRUE(PauseVbox(runner, kWebUuid).ok());
  EXPECT_TRUE(ResumeVbox(runner, "{1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e}").ok());
  const std::vector<std::vector<std::string>> want = {
      {"VBoxManage", "controlvm", kWebUuid, "pause"},
      {"VBoxManage", "controlvm", kWebUuid, "resume"}};
  EXPECT_EQ(runner.calls(), want);
}

}  // namespace
}  // namespace vmvault::ingest
