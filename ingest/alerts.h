// Alerts: the email of [alerts] (vmvault.toml(5)) when something needs a person: a
// backup, restore or hook failed, a VM fell behind its schedule, or a job seems stuck.
// The scheduler decides what is due with DueAlerts (pure, over the catalog's state and
// a time) and hands each alert to SendAlert.
//
// Transport: with smtp_url, SMTP through libcurl (smtp:// upgrades with STARTTLS when
// the server offers it, smtps:// is TLS from the start; user:password@ in the URL
// logs in). Otherwise the sendmail program, run without a shell as
// `sendmail -oi [-f FROM] -- TO...` with the message on stdin. The message is RFC 5322:
// Date, From, To, Subject ("[vmvault] " + the alert's subject), Message-ID,
// Auto-Submitted, a UTF-8 text/plain body.
//
// alerts.cc is the only file that includes libcurl. Everything here is thread-safe;
// SendAlert blocks for at most about a minute.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "ingest/config.h"

namespace vmvault::ingest {

enum class AlertKind { kFailure, kBehind, kStuck, kTest };
// "failure", "behind", "stuck", "test".
std::string_view AlertKindName(AlertKind kind);

struct Alert {
  AlertKind kind = AlertKind::kFailure;
  // What the alert is about, so it is not repeated every run: "behind:web01". "" for
  // one-off alerts (failures, tests).
  std::string key;
  std::string subject;  // one line; control characters become spaces
  std::string body;     // text; lines end in '\n'
};

// Whether `config` sends alerts of this kind: alerts are enabled (there is a `to`) and
// the kind's on-... switch is on. kTest needs only the `to`.
bool AlertWanted(const AlertsConfig& config, AlertKind kind);

// --- What is due (pure) ---

// One VM the schedule backs up, as the catalog knows it.
struct VmBackupState {
  std::string vm;
  std::string tier;
  Seconds interval{0};                    // the tier's
  std::optional<int64_t> last_backup_us;  // the newest backup; unset: none yet
  // When the schedule started to back the VM up; a VM with no backup is measured from
  // here.
  int64_t scheduled_since_us = 0;
};

// A backup or restore that is running.
struct RunningJob {
  std::string what;  // "backup of web01"
  int64_t started_us = 0;
};

// An alert about the same key is not repeated for this long.
inline constexpr Seconds kAlertRepeatInterval{86400};

// The alerts due at `now_us`: kBehind for each VM whose newest backup (else its
// scheduled_since) is older than its interval plus behind_tolerance, and kStuck for
// each job running for longer than stuck_after, each unless its kind is off, and
// unless `last_sent` (key -> when an alert with that key was last sent) says one went
// out less than kAlertRepeatInterval ago. In the order of `vms`, then `jobs`.
std::vector<Alert> DueAlerts(const AlertsConfig& config, const std::vector<VmBackupState>& vms,
                             const std::vector<RunningJob>& jobs,
                             const std::map<std::string, int64_t>& last_sent, int64_t now_us);

// A kFailure alert: "<what> failed" and the error.
Alert FailureAlert(std::string_view what, const Status& error);

// --- Sending ---

// The sender: `from`, else "vmvault@" and this host's name.
std::string AlertSender(const AlertsConfig& config);

// The whole message, lines ending in CRLF. `now_us` gives the Date (UTC) and, with a
// random part, the Message-ID. Without `from`, `include_from` false leaves out the From
// header so sendmail fills it in.
std::string FormatAlertMessage(const AlertsConfig& config, const Alert& alert, int64_t now_us,
                               bool include_from = true);

// Where SendAlert hands mail: the SMTP URL without its password, or the sendmail path.
std::string AlertTransport(const AlertsConfig& config);

// Sends `alert` to config.to. OK without sending when !AlertWanted(config, alert.kind).
// External when the server or sendmail refuses it, with what it said.
Status SendAlert(const AlertsConfig& config, const Alert& alert,
                 const Clock& clock = SystemClock::Default());

}  // namespace vmvault::ingest
