#include "ingest/hooks.h"

#include <string.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "ingest/command_runner.h"
#include "ingest/subprocess.h"

namespace vmvault::ingest {
namespace {

// "5m", or "0.5 s" for a timeout that is not whole seconds (tests use those).
std::string FormatTimeout(std::chrono::milliseconds t) {
  if (t.count() % 1000 == 0) return FormatDuration(std::chrono::duration_cast<Seconds>(t));
  return fmt::format("{} s", t.count() / 1000.0);
}

std::string HowItFailed(const CommandOutput& out, std::chrono::milliseconds timeout) {
  if (out.timed_out) return fmt::format("still running after {}, killed", FormatTimeout(timeout));
  if (out.signal != 0) {
    const char* name = ::sigdescr_np(out.signal);
    return fmt::format("killed by signal {} ({})", out.signal, name ? name : "unknown");
  }
  return fmt::format("exit status {}", out.exit_code);
}

std::string EnvironmentName(std::string_view variable) {
  std::string name = "VMVAULT_";
  for (char c : variable) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace

HookResult RunHook(const HookCommand& command, HookEvent event, const HookValues& values,
                   std::chrono::milliseconds timeout) {
  HookResult r;
  const std::string_view event_name = HookEventName(event);
  const std::string program = command.argv.empty() ? std::string() : command.argv.front();
  const std::string who = fmt::format("{} hook {}", event_name, Printable(program));
  if (command.argv.empty()) {
    r.status = Status::InvalidArgument(fmt::format("{}: the command is empty", who));
    return r;
  }
  for (std::string_view name : HookVariables(event)) {
    const bool used = std::any_of(command.argv.begin(), command.argv.end(), [&](const auto& a) {
      return a.find(fmt::format("{{{{{}}}}}", name)) != std::string::npos;
    });
    if (used && values.find(std::string(name)) == values.end()) {
      spdlog::warn("{}: no value for {{{{{}}}}}; it is empty", who, name);
    }
  }
  r.argv = ExpandHookArgv(command.argv, values);

  ProcessOptions options;
  options.timeout = timeout;
  options.own_process_group = true;
  options.env.emplace_back("VMVAULT_EVENT", std::string(event_name));
  for (const auto& [name, value] : values) options.env.emplace_back(EnvironmentName(name), value);
  const std::string prefix = fmt::format("hook {} {}", event_name, Printable(program));
  options.on_line = [&prefix](OutputStream stream, std::string_view line) {
    if (stream == OutputStream::kStdout) {
      spdlog::info("{}: {}", prefix, Printable(line));
    } else {
      spdlog::warn("{}: {}", prefix, Printable(line));
    }
  };

  spdlog::info("running {} hook {}", event_name, FormatCommand(r.argv));
  const auto start = std::chrono::steady_clock::now();
  auto out = RunProcess(r.argv, options);
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start);
  if (!out.ok()) {
    r.status = Status(out.status().code(),
                      fmt::format("{} could not be run: {}", who, out.status().message()));
    spdlog::error("{}", r.status.message());
    return r;
  }
  r.started = true;
  r.exit_code = out->exit_code;
  r.signal = out->signal;
  r.timed_out = out->timed_out;
  if (out->exit_code == 0 && !out->timed_out) {
    spdlog::info("{} finished in {:.1f} s", who, r.took.count() / 1000.0);
    r.status = Status::OK();
  } else {
    r.status = Status::External(fmt::format("{} failed: {}", who, HowItFailed(*out, timeout)));
    spdlog::error("{}", r.status.message());
  }
  return r;
}

Status RunHooks(const HooksConfig& hooks, HookEvent event, const HookValues& values) {
  const bool pre = HookEventName(event).substr(0, 4) == "pre-";
  Status first = Status::OK();
  for (const HookCommand& command : hooks.For(event)) {
    const HookResult r = RunHook(command, event, values, hooks.timeout);
    if (r.status.ok()) continue;
    if (first.ok()) first = r.status;
    if (pre) break;
  }
  return first;
}

HookValues VmHookValues(std::string_view repository, std::string_view vm, std::string_view tier) {
  return {{"Repository", std::string(repository)}, {"VM", std::string(vm)},
          {"Tier", std::string(tier)}};
}

Status RunBetweenHooks(const HooksConfig& hooks, HookEvent pre, HookEvent post,
                       HookValues values, std::string_view skipped,
                       const std::function<Status(HookValues* values)>& step,
                       Status* post_failure) {
  if (post_failure != nullptr) *post_failure = Status::OK();
  Status status = RunHooks(hooks, pre, values);
  status = status.ok() ? step(&values) : status.WithContext(skipped);
  values["Status"] = HookStatusValue(status.ok());
  const Status after = RunHooks(hooks, post, values);
  if (!status.ok()) return status;
  if (post_failure == nullptr) return after;
  *post_failure = after;
  return status;
}

Status CaptureBetweenHooks(const IngestHooks& hooks, std::string_view vm,
                           std::string_view tier, std::string_view method,
                           const std::function<Status()>& capture, Status* post_failure) {
  *post_failure = Status::OK();
  if (hooks.hooks == nullptr) return capture();
  HookValues values = VmHookValues(hooks.repository, vm, tier);
  values["Method"] = method;
  return RunBetweenHooks(*hooks.hooks, HookEvent::kPreSnapshot, HookEvent::kPostSnapshot,
                         std::move(values), "the VM was not touched",
                         [&capture](HookValues*) { return capture(); }, post_failure);
}

}  // namespace vmvault::ingest
