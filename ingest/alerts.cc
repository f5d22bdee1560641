// The only file that includes libcurl.
#include "ingest/alerts.h"

#include <time.h>

#include <algorithm>
#include <mutex>
#include <random>

#include <curl/curl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "base/time_format.h"
#include "ingest/subprocess.h"

namespace vmvault::ingest {
namespace {

constexpr int64_t kMicros = 1000000;

// "Tue, 05 Mar 2024 10:00:00 +0000" (RFC 5322 section 3.3), in UTC and without the
// locale's names.
std::string MailDate(int64_t now_us) {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t t = static_cast<time_t>(now_us / kMicros);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday],
                     tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

std::string Base64(std::string_view in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// The subject as one header line: control characters become spaces, and text that is
// not ASCII is an RFC 2047 encoded word.
std::string SubjectHeader(std::string_view subject) {
  std::string s = "[vmvault] ";
  for (char c : subject) {
    const auto u = static_cast<unsigned char>(c);
    s += u < 0x20 || u == 0x7f ? ' ' : c;
  }
  const bool ascii = std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x80;
  });
  return ascii ? s : "=?UTF-8?B?" + Base64(s) + "?=";
}

// `body` with every line ending in CRLF, and a last line ending too.
std::string CrlfBody(std::string_view body) {
  std::string out;
  for (char c : body) {
    if (c == '\r') continue;
    if (c == '\n') out += '\r';
    out += c;
  }
  if (!out.empty() && out.back() != '\n') out += "\r\n";
  return out;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// The newest-first age of something, "2d3h" (whole seconds).
std::string Age(int64_t since_us, int64_t now_us) {
  return FormatDuration(Seconds(std::max<int64_t>(0, (now_us - since_us) / kMicros)));
}

bool RecentlySent(const std::map<std::string, int64_t>& last_sent, const std::string& key,
                  int64_t now_us) {
  const auto it = last_sent.find(key);
  return it != last_sent.end() &&
         now_us - it->second < int64_t{kAlertRepeatInterval.count()} * kMicros;
}

Status SendWithSendmail(const AlertsConfig& config, const std::string& message) {
  std::vector<std::string> argv = {config.sendmail, "-oi"};
  if (!config.from.empty()) {
    argv.push_back("-f");
    argv.push_back(config.from);
  }
  argv.emplace_back("--");
  argv.insert(argv.end(), config.to.begin(), config.to.end());
  std::string local;  // sendmail reads the local line convention
  local.reserve(message.size());
  for (char c : message) {
    if (c != '\r') local += c;
  }
  ProcessOptions options;
  options.timeout = std::chrono::seconds(60);
  options.stdin_text = std::move(local);
  VV_ASSIGN_OR_RETURN(const CommandOutput out, RunProcess(argv, options));
  if (out.timed_out) {
    return Status::External(fmt::format("{} did not finish within a minute", config.sendmail));
  }
  if (out.exit_code != 0) {
    std::string said = out.stderr_text.empty() ? out.stdout_text : out.stderr_text;
    while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
    return Status::External(fmt::format("{} failed with exit status {}{}{}", config.sendmail,
                                        out.exit_code, said.empty() ? "" : ": ", Printable(said)));
  }
  return Status::OK();
}

struct Upload {
  std::string_view data;
  size_t pos = 0;
};

size_t ReadUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* u = static_cast<Upload*>(user);
  const size_t n = std::min(size * count, u->data.size() - u->pos);
  std::copy_n(u->data.data() + u->pos, n, buffer);
  u->pos += n;
  return n;
}

Status SendWithSmtp(const AlertsConfig& config, const std::string& message) {
  static std::once_flag init;
  std::call_once(init, [] { ::curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = ::curl_easy_init();
  if (curl == nullptr) return Status::External("libcurl could not start a transfer");
  curl_slist* recipients = nullptr;
  for (const std::string& to : config.to) {
    recipients = ::curl_slist_append(recipients, ("<" + to + ">").c_str());
  }
  const std::string from = "<" + AlertSender(config) + ">";
  Upload upload{message};
  char error[CURL_ERROR_SIZE] = {};
  ::curl_easy_setopt(curl, CURLOPT_URL, config.smtp_url.c_str());
  ::curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from.c_str());
  ::curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients);
  ::curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadUpload);
  ::curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
  ::curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  // smtp://: STARTTLS when the server offers it; smtps:// is TLS anyway.
  ::curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  ::curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  ::curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  ::curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  ::curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = ::curl_easy_perform(curl);
  long response = 0;
  ::curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response);
  ::curl_slist_free_all(recipients);
  ::curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Status::External(fmt::format("sending mail through {} failed: {}{}",
                                        AlertTransport(config),
                                        error[0] != '\0' ? error : ::curl_easy_strerror(rc),
                                        response != 0 ? fmt::format(" (SMTP {})", response) : ""));
  }
  return Status::OK();
}

}  // namespace

std::string_view AlertKindName(AlertKind kind) {
  switch (kind) {
    case AlertKind::kFailure:
      return "failure";
    case AlertKind::kBehind:
      return "behind";
    case AlertKind::kStuck:
      return "stuck";
    case AlertKind::kTest:
      return "test";
  }
  return "?";
}

bool AlertWanted(const AlertsConfig& config, AlertKind kind) {
  if (!config.enabled()) return false;
  switch (kind) {
    case AlertKind::kFailure:
      return config.on_failure;
    case AlertKind::kBehind:
      return config.on_behind;
    case AlertKind::kStuck:
      return config.on_stuck;
    case AlertKind::kTest:
      return true;
  }
  return false;
}

std::vector<Alert> DueAlerts(const AlertsConfig& config, const std::vector<VmBackupState>& vms,
                             const std::vector<RunningJob>& jobs,
                             const std::map<std::string, int64_t>& last_sent, int64_t now_us) {
  std::vector<Alert> due;
  if (AlertWanted(config, AlertKind::kBehind)) {
    for (const VmBackupState& vm : vms) {
      const int64_t since = vm.last_backup_us.value_or(vm.scheduled_since_us);
      const int64_t limit = (vm.interval + config.behind_tolerance).count() * kMicros;
      if (now_us - since <= limit) continue;
      Alert a{AlertKind::kBehind, "behind:" + vm.vm, fmt::format("{} is behind schedule", vm.vm),
              ""};
      if (RecentlySent(last_sent, a.key, now_us)) continue;
      if (vm.last_backup_us) {
        a.body = fmt::format("The newest backup of {} was made at {}, {} ago.\n", vm.vm,
                             FormatIsoTime(*vm.last_backup_us), Age(*vm.last_backup_us, now_us));
      } else {
        a.body = fmt::format("{} has no backup yet; it has been scheduled since {}, {} ago.\n",
                             vm.vm, FormatIsoTime(vm.scheduled_since_us),
                             Age(vm.scheduled_since_us, now_us));
      }
      a.body += fmt::format(
          "Its tier, {}, backs it up every {}; an alert is sent when that is exceeded by "
          "more than {} (alerts.behind-tolerance).\n",
          vm.tier, FormatDuration(vm.interval), FormatDuration(config.behind_tolerance));
      due.push_back(std::move(a));
    }
  }
  if (AlertWanted(config, AlertKind::kStuck)) {
    for (const RunningJob& job : jobs) {
      if (now_us - job.started_us <= config.stuck_after.count() * kMicros) continue;
      Alert a{AlertKind::kStuck, "stuck:" + job.what, fmt::format("{} seems stuck", job.what),
              fmt::format("The {} started at {} and is still running after {} (more than "
                          "alerts.stuck-after, {}).\n",
                          job.what, FormatIsoTime(job.started_us), Age(job.started_us, now_us),
                          FormatDuration(config.stuck_after))};
      if (RecentlySent(last_sent, a.key, now_us)) continue;
      due.push_back(std::move(a));
    }
  }
  return due;
}

Alert FailureAlert(std::string_view what, const Status& error) {
  return {AlertKind::kFailure, "", fmt::format("{} failed", what),
          fmt::format("The {} failed:\n\n{}\n", what, error.ToString())};
}

std::string AlertSender(const AlertsConfig& config) {
  if (!config.from.empty()) return config.from;
  const std::string host = HostName();
  return "vmvault@" + (host.empty() ? std::string("localhost") : host);
}

std::string FormatAlertMessage(const AlertsConfig& config, const Alert& alert, int64_t now_us,
                               bool include_from) {
  static std::mutex mu;
  static std::mt19937_64 random(std::random_device{}());
  uint64_t nonce;
  {
    std::lock_guard<std::mutex> lock(mu);
    nonce = random();
  }
  const std::string sender = AlertSender(config);
  std::string m;
  m += "Date: " + MailDate(now_us) + "\r\n";
  if (include_from || !config.from.empty()) m += "From: " + sender + "\r\n";
  m += "To: " + Join(config.to) + "\r\n";
  m += "Subject: " + SubjectHeader(alert.subject) + "\r\n";
  m += fmt::format("Message-ID: <{}.{:016x}@{}>\r\n", now_us, nonce,
                   sender.substr(sender.find('@') + 1));
  m += "Auto-Submitted: auto-generated\r\n";
  m += fmt::format("X-Vmvault-Alert: {}\r\n", AlertKindName(alert.kind));
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: 8bit\r\n";
  m += "\r\n";
  m += CrlfBody(alert.body);
  return m;
}

std::string AlertTransport(const AlertsConfig& config) {
  if (config.smtp_url.empty()) return config.sendmail;
  // smtp://user:password@host -> smtp://user@host
  std::string url = config.smtp_url;
  const size_t scheme = url.find("://");
  const size_t at = url.rfind('@');
  if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
    const size_t colon = url.find(':', scheme + 3);
    if (colon < at) url.erase(colon, at - colon);
  }
  return url;
}

Status SendAlert(const AlertsConfig& config, const Alert& alert, const Clock& clock) {
  if (!AlertWanted(config, alert.kind)) return Status::OK();
  const bool smtp = !config.smtp_url.empty();
  const std::string message = FormatAlertMessage(config, alert, clock.NowMicros(), smtp);
  const Status s = smtp ? SendWithSmtp(config, message) : SendWithSendmail(config, message);
  if (s.ok()) {
    spdlog::info("sent {} alert '{}' to {} through {}", AlertKindName(alert.kind), alert.subject,
                 Join(config.to), AlertTransport(config));
  } else {
    spdlog::error("could not send {} alert '{}': {}", AlertKindName(alert.kind), alert.subject,
                  s.message());
  }
  return s;
}

}  // namespace vmvault::ingest
