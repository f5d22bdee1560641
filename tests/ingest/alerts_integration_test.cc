// Alerts sent for real: through SMTP (libcurl) to a sink the test starts (Python's
// smtpd module, stopped by PID when the test ends, also on failure), and through a
// fake sendmail script that writes its arguments and stdin to files.
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/file_util.h"
#include "ingest/alerts.h"
#include "ingest/subprocess.h"
#include "tests/smtp_sink.h"
#include "tests/temp_dir.h"

namespace vmvault::ingest {
namespace {

using testing::TempDir;


std::string Slurp(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? *text : "";
}

bool WaitFor(const std::string& path) {
  for (int i = 0; i < 1000; ++i) {
    if (::access(path.c_str(), F_OK) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class SmtpSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "sink.py") << vmvault::testing::kSmtpSink;
    auto sink = ChildProcess::Start(
        {"python3", dir_ / "sink.py", dir_ / "port", dir_ / "messages"}, dir_ / "sink.err");
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = std::move(*sink);  // stopped by PID in its destructor
    ASSERT_TRUE(WaitFor(dir_ / "port")) << Slurp(dir_ / "sink.err");
    port_ = std::stoi(Slurp(dir_ / "port"));
  }

  TempDir dir_;
  std::unique_ptr<ChildProcess> sink_;
  int port_ = 0;
};

TEST_F(SmtpSinkTest, AnAlertReachesTheServerWithItsRecipientsSubjectAndBody) {
  AlertsConfig c;
  c.to = {"ops@example.com", "oncall@example.org"};
  c.from = "vmvault@kvm1.example.com";
  c.smtp_url = "smtp://127.0.0.1:" + std::to_string(port_);
  const Alert alert{AlertKind::kBehind, "behind:web01", "web01 is behind schedule",
                    "The newest backup of web01 is 3d old.\n.\nA lone dot above.\n"};
  const Status s = SendAlert(c, alert);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(WaitFor(dir_ / "messages"));
  const auto lines = ReadFile(dir_ / "messages");
  ASSERT_TRUE(lines.ok());
  const auto m = nlohmann::json::parse(lines->substr(0, lines->find('\n')));
  EXPECT_EQ(m["from"], "vmvault@kvm1.example.com");
  EXPECT_EQ(m["to"], (std::vector<std::string>{"ops@example.com", "oncall@example.org"}));
  const std::string data = m["data"];  // smtpd gives lines joined with "\n"
  EXPECT_NE(data.find("Subject: [vmvault] web01 is behind schedule\n"), std::string::npos)
      << data;
  EXPECT_NE(data.find("To: ops@example.com, oncall@example.org\n"), std::string::npos);
  EXPECT_NE(data.find("From: vmvault@kvm1.example.com\n"), std::string::npos);
  EXPECT_NE(data.find("Message-ID: <"), std::string::npos);
  EXPECT_NE(data.find("Date: "), std::string::npos);
  const size_t body = data.find("\n\n");
  ASSERT_NE(body, std::string::npos);
  // The dot-stuffing is undone by the server: the body arrives as it was.
  EXPECT_EQ(data.substr(body + 2), "The newest backup of web01 is 3d old.\n.\nA lone dot above.");
}

TEST(AlertsIntegrationTest, AServerThatIsNotThereIsAnError) {
  // A port nobody listens on: bind one, then close it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  AlertsConfig c;
  c.to = {"ops@example.com"};
  c.smtp_url = "smtp://u:secret@127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  const Status s = SendAlert(c, {AlertKind::kTest, "", "t", "b"});
  EXPECT_EQ(s.code(), StatusCode::kExternal);
  EXPECT_NE(s.message().find("sending mail through smtp://u@127.0.0.1:"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(s.message().find("secret"), std::string::npos);
}

class SendmailTest : public ::testing::Test {
 protected:
  std::string FakeSendmail(const std::string& body) {
    const std::string path = dir_ / "sendmail";
    std::ofstream(path) << "#!/bin/sh\n" << body;
    ::chmod(path.c_str(), 0755);
    return path;
  }
  TempDir dir_;
};

TEST_F(SendmailTest, TheMessageGoesToSendmailsStdinWithTheRecipientsAsArguments) {
  AlertsConfig c;
  c.to = {"ops@example.com", "-oops@example.org"};
  c.from = "vmvault@kvm1.example.com";
  c.sendmail = FakeSendmail("printf '%s\\n' \"$@\" > " + (dir_ / "args") + "\ncat > " +
                            (dir_ / "message") + "\n");
  const Status s = SendAlert(c, FailureAlert("backup of db01", Status::External("hook failed")));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Slurp(dir_ / "args"),
            "-oi\n-f\nvmvault@kvm1.example.com\n--\nops@example.com\n-oops@example.org\n");
  const std::string m = Slurp(dir_ / "message");
  EXPECT_EQ(m.find('\r'), std::string::npos);  // local line endings for sendmail
  EXPECT_NE(m.find("From: vmvault@kvm1.example.com\n"), std::string::npos) << m;
  EXPECT_NE(m.find("Subject: [vmvault] backup of db01 failed\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\n\nThe backup of db01 failed:\n\nExternal program failed: hook failed\n"),
            std::string::npos)
      << m;
}

TEST_F(SendmailTest, WithoutFromSendmailChoosesTheSender) {
  AlertsConfig c;
  c.to = {"ops@example.com"};
  c.sendmail = FakeSendmail("printf '%s\\n' \"$@\" > " + (dir_ / "args") + "\ncat > " +
                            (dir_ / "message") + "\n");
  ASSERT_TRUE(SendAlert(c, {AlertKind::kTest, "", "test", "body"}).ok());
  EXPECT_EQ(Slurp(dir_ / "args"), "-oi\n--\nops@example.com\n");
  EXPECT_EQ(Slurp(dir_ / "message").find("From:"), std::string::npos);
}

TEST_F(SendmailTest, ARefusalIsAnErrorWithWhatSendmailSaid) {
  AlertsConfig c;
  c.to = {"ops@example.com"};
  c.sendmail = FakeSendmail("echo 'no route to mail.example.com' >&2\nexit 75\n");
  const Status s = SendAlert(c, {AlertKind::kTest, "", "test", "body"});
  EXPECT_EQ(s.code(), StatusCode::kExternal);
  EXPECT_EQ(s.message(),
            c.sendmail + " failed with exit status 75: no route to mail.example.com");
  c.sendmail = dir_ / "missing";
  EXPECT_EQ(SendAlert(c, {AlertKind::kTest, "", "test", "body"}).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace vmvault::ingest
