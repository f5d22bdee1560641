// A real libvirtd (and virtlogd) for the domain tests, started by the test process and
// stopped by PID when it ends, plus a TCG domain with no guest OS whose disk the tests
// write through QEMU's monitor. The recipe is ../shared/notes/real-components.md's.
//
// When a libvirtd already answers on qemu:///system (a developer's own), the tests use
// it and start nothing. Every domain a test defines is destroyed and undefined (with
// its checkpoint metadata) when the test ends, pass or fail.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace vmvault::testing {

inline bool LibvirtAnswers() { return RunCmd({"virsh", "-q", "-c", "qemu:///system", "version"}).exit_code == 0; }

// The daemons, for the whole test binary (a gtest Environment).
class LibvirtDaemons : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!IsRoot() || LibvirtAnswers()) return;
    dir_ = std::make_unique<TempDir>();
    // Without this, libvirt re-probes QEMU on every call.
    RunCmd({"chgrp", "kvm", "/dev/kvm"});
    RunCmd({"chmod", "0660", "/dev/kvm"});
    virtlogd_ = std::make_unique<Process>(
        std::vector<std::string>{"virtlogd", "-p", dir_->path() + "/virtlogd.pid"},
        dir_->path() + "/virtlogd.log");
    libvirtd_ = StartLibvirtd();
    for (int i = 0; i < 300 && !LibvirtAnswers(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  void TearDown() override {
    if (libvirtd_) StopGently(*libvirtd_);
    if (virtlogd_) StopGently(*virtlogd_);
  }

  // Kills libvirtd with SIGKILL (a dropped connection) and starts a new one.
  bool RestartHard() {
    if (!libvirtd_) return false;
    libvirtd_->Stop(std::chrono::milliseconds(0));
    libvirtd_ = StartLibvirtd();
    for (int i = 0; i < 300; ++i) {
      if (LibvirtAnswers()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  bool owns_daemon() const { return libvirtd_ != nullptr; }

 private:
  std::unique_ptr<Process> StartLibvirtd() {
    return std::make_unique<Process>(
        std::vector<std::string>{"libvirtd", "--pid-file=" + dir_->path() + "/libvirtd.pid"},
        dir_->path() + "/libvirtd.log");
  }
  static void StopGently(Process& p) {
    p.Signal(SIGTERM);
    p.Stop(std::chrono::seconds(10));
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Process> virtlogd_;
  std::unique_ptr<Process> libvirtd_;
};

// virsh on qemu:///system.
inline RunResult Virsh(std::vector<std::string> args) {
  args.insert(args.begin(), {"virsh", "-q", "-c", "qemu:///system"});
  return RunCmd(args);
}

// A defined, running TCG domain with one qcow2 disk `vda` of `size` bytes in `dir`.
class TestDomain {
 public:
  TestDomain(const std::string& name, const std::string& dir, uint64_t size)
      : name_(name), disk_(dir + "/" + name + ".qcow2") {
    ::chmod(dir.c_str(), 0755);  // libvirt-qemu must reach the disk
    RunCmd({"qemu-img", "create", "-q", "-f", "qcow2", disk_, std::to_string(size)});
    xml_ = dir + "/" + name + ".xml";
  }
  ~TestDomain() {
    Virsh({"destroy", name_});
    Virsh({"undefine", name_, "--checkpoints-metadata"});
  }

  // Before Define: a second disk `vdb`, read-only, on the raw image at `path`.
  void AddReadOnlyDisk(const std::string& path) {
    extra_disks_ += fmt::format(
        "    <disk type='file' device='disk'><driver name='qemu' type='raw'/>\n"
        "      <source file='{}'/><target dev='vdb' bus='virtio'/><readonly/></disk>\n",
        path);
  }
  bool Define() {
    std::ofstream(xml_) << fmt::format(R"(<domain type='qemu'>
  <name>{}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{}'/><target dev='vda' bus='virtio'/></disk>
{}    <memballoon model='none'/>
  </devices>
</domain>)",
                                       name_, disk_, extra_disks_);
    RunResult r = Virsh({"define", xml_});
    if (r.exit_code != 0) ADD_FAILURE() << "virsh define: " << r.err;
    return r.exit_code == 0;
  }

  // Writes `count` bytes of `pattern` at `offset` into the disk while the domain is off.
  bool WriteOffline(uint64_t offset, uint64_t count, int pattern) {
    return RunCmd({"qemu-io", "-f", "qcow2", "-c",
                   fmt::format("write -P {} {} {}", pattern, offset, count), disk_})
               .exit_code == 0;
  }
  // The same through the running QEMU's monitor (qemu-io in the monitor).
  bool WriteLive(uint64_t offset, uint64_t count, int pattern) {
    const std::string cmd = fmt::format(
        "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P {} {} {}\"",
        pattern, offset, count);
    RunResult r = Virsh({"qemu-monitor-command", name_, "--hmp", cmd});
    // virsh exits 0 even when qemu-io fails; qemu-io's complaints come back as output.
    return r.exit_code == 0 && r.out.find("rror") == std::string::npos;
  }
  bool Start() { return Virsh({"start", name_}).exit_code == 0; }
  bool Destroy() { return Virsh({"destroy", name_}).exit_code == 0; }
  std::string State() {
    RunResult r = Virsh({"domstate", name_});
    std::string s = r.out;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  std::vector<std::string> Checkpoints() {
    std::vector<std::string> out;
    std::string line;
    std::istringstream in(Virsh({"checkpoint-list", name_, "--name"}).out);
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }
  // The bitmaps in the qcow2 file, by name.
  std::vector<std::string> Bitmaps() {
    RunResult r = RunCmd({"qemu-img", "info", "-U", "--output=json", disk_});
    std::vector<std::string> out;
    try {
      auto j = nlohmann::json::parse(r.out);
      if (j.contains("format-specific") && j["format-specific"]["data"].contains("bitmaps")) {
        for (auto& b : j["format-specific"]["data"]["bitmaps"]) out.push_back(b["name"]);
      }
    } catch (...) {
    }
    return out;
  }
  bool JobActive() {
    if (State() == "shut off") return false;  // domjobinfo refuses inactive domains
    return Virsh({"domjobinfo", name_}).out.find("None") == std::string::npos;
  }
  // The disk's source path as libvirt has it now.
  std::string ActiveSource() {
    return Virsh({"domblklist", name_}).out;
  }

  const std::string& name() const { return name_; }
  const std::string& disk() const { return disk_; }

 private:
  std::string name_;
  std::string disk_;
  std::string xml_;
  std::string extra_disks_;
};

}  // namespace vmvault::testing
