#include "store/vm_state.h"

#include <signal.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "store/record_json.h"

namespace vmvault::store {
namespace {

using nlohmann::json;

constexpr std::string_view kStatePrefix = "st/";
constexpr std::string_view kAlertPrefix = "al/";

std::string StateKey(std::string_view vm) { return std::string(kStatePrefix) + std::string(vm); }

constexpr std::pair<VmState, std::string_view> kNames[] = {
    {VmState::kNew, "NEW"},
    {VmState::kBackupNecessary, "BACKUP_NECESSARY"},
    {VmState::kBackupInProgress, "BACKUP_IN_PROGRESS"},
    {VmState::kClean, "CLEAN"},
    {VmState::kRunning, "RUNNING"},
    {VmState::kArchived, "ARCHIVED"},
};

}  // namespace

std::string_view VmStateName(VmState s) {
  for (const auto& [state, name] : kNames) {
    if (state == s) return name;
  }
  return "?";
}

std::optional<VmState> ParseVmState(std::string_view text) {
  for (const auto& [state, name] : kNames) {
    if (name == text) return state;
  }
  return std::nullopt;
}

std::string EncodeVmStateRecord(const VmStateRecord& rec) {
  return json{{"v", kVmStateRecordVersion},
              {"state", VmStateName(rec.state)},
              {"since_us", rec.since_us},
              {"pid", rec.pid},
              {"pid_start", rec.pid_start},
              {"host", rec.host},
              {"note", rec.note},
              {"seen_us", rec.seen_us}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<VmStateRecord> DecodeVmStateRecord(std::string_view text) {
  try {
    const json j = json::parse(text);
    if (JsonInt<int>(j.at("v")) != kVmStateRecordVersion) {
      return Status::Corruption(fmt::format("VM state record has version {}", j.at("v").dump()));
    }
    VmStateRecord rec;
    const auto state = ParseVmState(j.at("state").get<std::string>());
    if (!state) return Status::Corruption("VM state record has an unknown state");
    rec.state = *state;
    rec.since_us = JsonInt<int64_t>(j.at("since_us"));
    rec.pid = JsonInt(j, "pid", int64_t{0});
    rec.pid_start = JsonInt(j, "pid_start", uint64_t{0});
    rec.host = j.value("host", std::string());
    rec.note = j.value("note", std::string());
    rec.seen_us = JsonInt(j, "seen_us", int64_t{0});
    return rec;
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format("VM state record does not decode: {}", e.what()));
  }
}

Result<std::optional<VmStateRecord>> GetVmState(const KvEngine& kv, std::string_view vm) {
  std::string value;
  Status s = kv.Get(KvSpace::kCatalog, StateKey(vm), &value);
  if (s.IsNotFound()) return std::optional<VmStateRecord>();
  VV_RETURN_IF_ERROR(s);
  VV_ASSIGN_OR_RETURN(VmStateRecord rec,
                      DecodeVmStateRecord(value));
  return std::optional<VmStateRecord>(std::move(rec));
}

Result<std::map<std::string, VmStateRecord, std::less<>>> ListVmStates(const KvEngine& kv) {
  std::map<std::string, VmStateRecord, std::less<>> out;
  Status inner;
  VV_RETURN_IF_ERROR(kv.Scan(KvSpace::kCatalog, kStatePrefix,
                             [&](std::string_view k, std::string_view v) {
                               auto rec = DecodeVmStateRecord(v);
                               if (!rec.ok()) {
                                 inner = rec.status().WithContext(
                                     fmt::format("VM {}", k.substr(kStatePrefix.size())));
                                 return false;
                               }
                               out.emplace(std::string(k.substr(kStatePrefix.size())),
                                           std::move(rec).value());
                               return true;
                             }));
  VV_RETURN_IF_ERROR(inner);
  return out;
}

Status PutVmStates(KvEngine& kv,
                   const std::map<std::string, VmStateRecord, std::less<>>& records) {
  if (records.empty()) return Status::OK();
  KvBatch batch;
  for (const auto& [vm, rec] : records) {
    batch.Put(KvSpace::kCatalog, StateKey(vm), EncodeVmStateRecord(rec));
  }
  return kv.Write(batch, /*sync=*/true);
}

std::optional<uint64_t> ProcessStartTime(int64_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields resume after
  // the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close + 1));
  std::string field;
  // Field 3 is the state; the start time is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return std::nullopt;
  }
  try {
    return std::stoull(field);
  } catch (...) {
    return std::nullopt;
  }
}

bool ProcessAlive(int64_t pid, uint64_t start) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
  if (start == 0) return true;
  const std::optional<uint64_t> now = ProcessStartTime(pid);
  return now && *now == start;
}

std::string InterruptedNote(const VmStateRecord& rec) {
  return fmt::format("interrupted backup (pid {}{} gone)", rec.pid,
                     rec.host.empty() ? "" : " on " + rec.host);
}

Result<std::vector<std::string>> RecoverInterrupted(
    KvEngine& kv, bool lock_held, int64_t now_us,
    const std::function<bool(int64_t pid, uint64_t start)>& alive) {
  VV_ASSIGN_OR_RETURN(auto states, ListVmStates(kv));
  std::map<std::string, VmStateRecord, std::less<>> changed;
  std::vector<std::string> names;
  for (const auto& [vm, rec] : states) {
    if (rec.state != VmState::kBackupInProgress) continue;
    if (!lock_held && alive(rec.pid, rec.pid_start)) continue;
    VmStateRecord r;
    r.state = VmState::kBackupNecessary;
    r.since_us = now_us;
    r.host = rec.host;
    r.note = InterruptedNote(rec);
    r.seen_us = rec.seen_us;
    changed.emplace(vm, std::move(r));
    names.push_back(vm);
  }
  VV_RETURN_IF_ERROR(PutVmStates(kv, changed));
  return names;
}

std::string EncodeAlertRecord(const AlertRecord& rec) {
  return json{{"v", kAlertRecordVersion},
              {"last_sent_us", rec.last_sent_us},
              {"subject", rec.subject}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<AlertRecord> DecodeAlertRecord(std::string_view text) {
  try {
    const json j = json::parse(text);
    if (JsonInt<int>(j.at("v")) != kAlertRecordVersion) {
      return Status::Corruption(fmt::format("alert record has version {}", j.at("v").dump()));
    }
    AlertRecord rec;
    rec.last_sent_us = JsonInt<int64_t>(j.at("last_sent_us"));
    rec.subject = j.value("subject", std::string());
    return rec;
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format("alert record does not decode: {}", e.what()));
  }
}

Result<std::map<std::string, int64_t>> ListAlertsSent(const KvEngine& kv) {
  std::map<std::string, int64_t> out;
  Status inner;
  VV_RETURN_IF_ERROR(kv.Scan(KvSpace::kCatalog, kAlertPrefix,
                             [&](std::string_view k, std::string_view v) {
                               auto rec = DecodeAlertRecord(v);
                               if (!rec.ok()) {
                                 inner = rec.status().WithContext(fmt::format(
                                     "alert {}", k.substr(kAlertPrefix.size())));
                                 return false;
                               }
                               out.emplace(std::string(k.substr(kAlertPrefix.size())),
                                           rec->last_sent_us);
                               return true;
                             }));
  VV_RETURN_IF_ERROR(inner);
  return out;
}

Status PutAlertSent(KvEngine& kv, std::string_view key, const AlertRecord& rec) {
  if (key.empty()) return Status::InvalidArgument("an alert record needs a key");
  KvBatch batch;
  batch.Put(KvSpace::kCatalog, std::string(kAlertPrefix) + std::string(key),
            EncodeAlertRecord(rec));
  return kv.Write(batch, /*sync=*/true);
}

}  // namespace vmvault::store
