// vmvault prune: remove the backups a retention policy does not keep. The rules are in
// store/retention.h; the policy comes from the command line, else from the
// configuration file's [retention] (vmvault.toml(5)). Chunks stay until gc.
#include <algorithm>
#include <tuple>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/names.h"
#include "base/progress.h"
#include "base/time_format.h"
#include "ingest/config.h"
#include "store/repository.h"
#include "store/retention.h"
#include "tools/cli.h"

namespace vmvault::tools {
namespace {

using nlohmann::json;

struct PruneArgs {
  std::vector<std::string> vms;
  bool dry_run = false;
  bool force = false;
  bool json = false;
  std::string config;
  store::RetentionPolicy policy;  // from the options below
  std::vector<CLI::Option*> policy_options;

  bool PolicyGiven() const {
    return std::any_of(policy_options.begin(), policy_options.end(),
                       [](const CLI::Option* o) { return o->count() > 0; });
  }
};

// Where each VM's policy comes from: the command line, or the configuration file.
struct PolicySource {
  std::optional<store::RetentionPolicy> command_line;
  ingest::Config config;
  std::string config_path;

  // The VM's policy, and where it was set: "command line", "PATH:LINE", or "built-in
  // default" (keep everything).
  std::pair<store::RetentionPolicy, std::string> For(const store::VmRecord& vm) const {
    if (command_line) return {*command_line, "command line"};
    const ingest::RetentionPolicy& p = config.retention.For(vm.name, vm.tier);
    if (p.where.line == 0) return {p, "built-in default"};
    return {p, fmt::format("{}:{}", config_path, p.where.line)};
  }
};

bool SetsAnyRule(const ingest::RetentionConfig& r) {
  auto removes = [](const auto& entry) { return !entry.second.KeepsEverything(); };
  return !r.defaults.KeepsEverything() || std::any_of(r.tier.begin(), r.tier.end(), removes) ||
         std::any_of(r.vm.begin(), r.vm.end(), removes);
}

// The policy of the command line, else the configuration file. InvalidArgument when
// neither sets a rule: prune never runs without a policy someone wrote down.
Result<PolicySource> ResolvePolicy(const PruneArgs& a) {
  PolicySource source;
  if (a.PolicyGiven()) {
    source.command_line = a.policy;
    return source;
  }
  const ingest::ConfigPath where = ingest::ResolveConfigPath(a.config);
  source.config_path = where.path;
  constexpr std::string_view kHow =
      "give a policy (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, "
      "--keep-yearly, --max-age, --max-count) or set one in the configuration file's [retention] "
      "(man 5 vmvault.toml)";
  Result<ingest::Config> config = ingest::LoadConfig(where.path);
  if (!config.ok()) {
    if (!config.status().IsNotFound()) return config.status();
    return Status::InvalidArgument(
        fmt::format("no retention policy: there is no configuration file at {}; {}",
                    Printable(where.path), kHow));
  }
  source.config = std::move(config).value();
  if (!SetsAnyRule(source.config.retention)) {
    return Status::InvalidArgument(fmt::format(
        "no retention policy: {} has none that removes anything; {}", Printable(where.path), kHow));
  }
  return source;
}

// One VM: its backups (oldest first), the verdict on each, and what happens.
struct VmPlan {
  store::VmRecord vm;
  store::RetentionPolicy policy;
  std::string policy_from;
  std::vector<store::BackupRecord> backups;
  std::vector<store::RetentionVerdict> verdicts;  // one per backup, same order
  size_t removed = 0;
  bool refused = false;  // it would remove more than half, and there is no --force

  std::string Refusal() const {
    return fmt::format(
        "VM {}: the policy ({}) would remove {} of its {} backups, more than "
        "half; nothing was removed (check the policy, or give --force)",
        Printable(vm.name), DescribePolicy(policy), removed, backups.size());
  }
};

VmPlan Plan(const store::VmRecord& vm, std::vector<store::BackupRecord> backups,
            const PolicySource& source, int64_t now_us, bool force) {
  VmPlan plan;
  plan.vm = vm;
  std::tie(plan.policy, plan.policy_from) = source.For(vm);
  plan.backups = std::move(backups);
  std::vector<store::BackupTime> times;
  for (const store::BackupRecord& b : plan.backups) times.push_back({b.id, b.time_us});
  plan.verdicts = store::ApplyRetention(times, plan.policy, now_us);
  plan.removed =
      static_cast<size_t>(std::count_if(plan.verdicts.begin(), plan.verdicts.end(),
                                        [](const store::RetentionVerdict& v) { return !v.keep; }));
  plan.refused = !force && plan.removed * 2 > plan.backups.size();
  return plan;
}

// Why a backup stays or goes, for people.
std::string Reason(const store::RetentionVerdict& v, const store::RetentionPolicy& p) {
  switch (v.limit) {
    case store::RetentionLimit::kNone: return v.keep ? v.rule : "no rule keeps it";
    case store::RetentionLimit::kMaxAge:
      if (v.keep) return v.rule + "; the newest backup, which max-age never removes";
      return fmt::format("older than max-age {} (selected by {})",
                         ingest::FormatDuration(*p.max_age), v.rule);
    case store::RetentionLimit::kMaxCount:
      return fmt::format("beyond max-count {} (selected by {})", *p.max_count, v.rule);
  }
  return v.rule;
}

json LimitJson(store::RetentionLimit l) {
  switch (l) {
    case store::RetentionLimit::kNone: return nullptr;
    case store::RetentionLimit::kMaxAge: return "max-age";
    case store::RetentionLimit::kMaxCount: return "max-count";
  }
  return nullptr;
}

json PlanJson(const VmPlan& plan) {
  json kept = json::array(), removed = json::array();
  for (size_t i = 0; i < plan.backups.size(); ++i) {
    const store::BackupRecord& b = plan.backups[i];
    const store::RetentionVerdict& v = plan.verdicts[i];
    json entry{
        {"id", b.id},
        {"name", b.name()},
        {"path", fmt::format("{}/{}/{}", b.vm, PeriodOf(b.time_us, plan.vm.period), b.name())},
        {"time", FormatIsoTime(b.time_us)},
        {"rule", v.rule.empty() ? json(nullptr) : json(v.rule)},
        {"limit", LimitJson(v.limit)},
        {"reason", Reason(v, plan.policy)}};
    (v.keep ? kept : removed).push_back(std::move(entry));
  }
  return {{"name", plan.vm.name},
          {"tier", plan.vm.tier},
          {"policy", DescribePolicy(plan.policy)},
          {"policy_from", plan.policy_from},
          {"backups", plan.backups.size()},
          {"refused", plan.refused},
          {"kept", std::move(kept)},
          {"removed", std::move(removed)}};
}

std::string PlanText(const VmPlan& plan, bool dry_run) {
  const size_t kept = plan.backups.size() - plan.removed;
  std::string out = fmt::format("{}: {} backup{}, policy {} ({})\n", Printable(plan.vm.name),
                                plan.backups.size(), plan.backups.size() == 1 ? "" : "s",
                                DescribePolicy(plan.policy), plan.policy_from);
  const char* remove = plan.refused || dry_run ? "would remove" : "removed";
  for (size_t i = 0; i < plan.backups.size(); ++i) {
    const store::RetentionVerdict& v = plan.verdicts[i];
    out += fmt::format("  {:<12}  {}  {}\n", v.keep ? "keep" : remove, plan.backups[i].name(),
                       Reason(v, plan.policy));
  }
  if (plan.refused) {
    out += fmt::format(
        "  refused: {} of {} would go, more than half; none removed (--force allows it)\n",
        plan.removed, plan.backups.size());
  } else {
    out += fmt::format("  kept {}, {} {}\n", kept, remove, plan.removed);
  }
  return out;
}

void Report(const std::vector<VmPlan>& plans, const PruneArgs& a, const GlobalOptions& global) {
  size_t kept = 0, removed = 0;
  for (const VmPlan& p : plans) {
    const size_t gone = p.refused ? 0 : p.removed;
    removed += gone;
    kept += p.backups.size() - gone;
  }
  if (a.json) {
    json vms = json::array();
    for (const VmPlan& p : plans) vms.push_back(PlanJson(p));
    fmt::print(
        "{}\n",
        json{{"dry_run", a.dry_run}, {"vms", std::move(vms)}, {"kept", kept}, {"removed", removed}}
            .dump(2, ' ', false, json::error_handler_t::replace));
    return;
  }
  // A dry run is asked for its listing; a real run lists only on a terminal, so cron
  // stays quiet.
  if (global.quiet || (!a.dry_run && !Progress::StderrIsTerminal())) return;
  for (const VmPlan& p : plans) fmt::print("{}", PlanText(p, a.dry_run));
  fmt::print("{}: kept {}, {} {} backup{} of {} VM{}\n", a.dry_run ? "dry run" : "total", kept,
             a.dry_run ? "would remove" : "removed", removed, removed == 1 ? "" : "s", plans.size(),
             plans.size() == 1 ? "" : "s");
}

Result<std::vector<store::VmRecord>> SelectVms(const store::Catalog& catalog,
                                               const std::vector<std::string>& names) {
  VV_ASSIGN_OR_RETURN(std::vector<store::VmRecord> vms, catalog.ListVms());
  if (names.empty()) return vms;
  for (const std::string& name : names) {
    if (std::none_of(vms.begin(), vms.end(), [&](const auto& v) { return v.name == name; })) {
      return Status::NotFound(fmt::format("no VM named '{}'", Printable(name)));
    }
  }
  std::erase_if(vms, [&](const store::VmRecord& v) {
    return std::find(names.begin(), names.end(), v.name) == names.end();
  });
  return vms;
}

Status RunPrune(const GlobalOptions& global, const PruneArgs& a) {
  VV_ASSIGN_OR_RETURN(const PolicySource source, ResolvePolicy(a));
  // A dry run changes nothing, so it takes no lock and may run beside an ingest.
  VV_ASSIGN_OR_RETURN(auto repo, OpenRepo(global, a.dry_run ? store::RepoMode::kReadOnly
                                                            : store::RepoMode::kWrite));
  VV_ASSIGN_OR_RETURN(const std::vector<store::VmRecord> vms, SelectVms(repo->catalog(), a.vms));
  const int64_t now = SystemClock::Default().NowMicros();
  std::vector<VmPlan> plans;
  std::vector<uint64_t> doomed;
  for (const store::VmRecord& vm : vms) {
    VV_ASSIGN_OR_RETURN(std::vector<store::BackupRecord> backups,
                        repo->catalog().ListBackups(vm.name));
    plans.push_back(Plan(vm, std::move(backups), source, now, a.force));
    const VmPlan& p = plans.back();
    if (p.refused) continue;
    for (const store::RetentionVerdict& v : p.verdicts) {
      if (!v.keep) doomed.push_back(v.id);
    }
  }
  if (!a.dry_run && !doomed.empty()) {
    VV_RETURN_IF_ERROR(repo->catalog().DeleteBackups(doomed).WithContext("remove backups"));
  }
  Report(plans, a, global);

  std::vector<std::string> refusals;
  for (const VmPlan& p : plans) {
    if (p.refused) refusals.push_back(p.Refusal());
  }
  if (!refusals.empty())
    return Status::InvalidArgument(fmt::format("{}", fmt::join(refusals, "; ")));
  return Status::OK();
}

// --max-age: a duration of at least store::kMinMaxAge, as in the configuration file.
CLI::Validator MaxAgeValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        Result<ingest::Seconds> d = ingest::ParseDuration(text);
        if (!d.ok()) return d.status().message();
        if (*d < store::kMinMaxAge) {
          return fmt::format("'{}' is too short (at least {})", text,
                             ingest::FormatDuration(store::kMinMaxAge));
        }
        return "";
      },
      "");
}

}  // namespace

Command PruneCommand() {
  return {"prune",
          "Remove the backups a retention policy does not keep (their chunks stay until gc)",
          [](CLI::App& app, GlobalOptions& global) {
            auto a = std::make_shared<PruneArgs>();
            app.add_option("--vm", a->vms, "Only this VM; repeat for several (default: every VM)");
            app.add_flag("--dry-run,-n", a->dry_run,
                         "Only say what would be removed and why each backup stays");
            app.add_flag("--force", a->force,
                         "Allow removing more than half of a VM's backups (refused otherwise)");
            app.add_flag("--json", a->json, "Print the report as JSON");
            CLI::Option* config =
                AddConfigOption(app, &a->config, "When no policy option is given, take [retention] from");
            struct Keep {
              const char* name;
              int* field;
              const char* help;
            };
            store::RetentionPolicy& p = a->policy;
            for (const Keep& k :
                 {Keep{"--keep-last", &p.keep_last, "Keep the N newest backups"},
                  Keep{"--keep-hourly", &p.keep_hourly,
                       "Keep the newest backup of each of the last N hours that have one"},
                  Keep{"--keep-daily", &p.keep_daily, "... of the last N days (UTC)"},
                  Keep{"--keep-weekly", &p.keep_weekly, "... of the last N ISO weeks"},
                  Keep{"--keep-monthly", &p.keep_monthly, "... of the last N months"},
                  Keep{"--keep-yearly", &p.keep_yearly, "... of the last N years"}}) {
              a->policy_options.push_back(app.add_option(k.name, *k.field, k.help)
                                              ->type_name("N")
                                              ->check(CLI::Range(0, store::kMaxKeep)));
            }
            a->policy_options.push_back(
                app.add_option_function<std::string>(
                       "--max-age",
                       [a](const std::string& text) {
                         a->policy.max_age = *ingest::ParseDuration(text);
                       },
                       "Then remove the kept backups older than this (at least 1h), but never the "
                       "newest")
                    ->type_name("DURATION")
                    ->check(MaxAgeValidator()));
            a->policy_options.push_back(
                app.add_option_function<int>(
                       "--max-count", [a](const int& n) { a->policy.max_count = n; },
                       "Then keep at most N of them, removing the oldest first")
                    ->type_name("N")
                    ->check(CLI::Range(1, store::kMaxKeep)));
            for (CLI::Option* o : a->policy_options) config->excludes(o);
            return [&global, a]() -> Status { return RunPrune(global, *a); };
          }};
}

}  // namespace vmvault::tools
