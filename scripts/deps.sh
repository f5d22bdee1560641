#!/usr/bin/env bash
# Installs the Debian 12 packages vmvault needs to build, test and run, if missing.
set -euo pipefail

packages=(
  # build
  cmake ninja-build pkg-config g++ ccache libgtest-dev libgmock-dev libbenchmark-dev
  # the fuzz targets: clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # libraries
  libfuse3-dev librocksdb-dev libzstd-dev libxxhash-dev libvirt-dev libboost-dev
  libboost-filesystem-dev libnbd-dev libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libpugixml-dev
  libtomlplusplus-dev libcurl4-openssl-dev libyaml-cpp-dev
  # programs vmvault runs, and the tests use
  fuse3 qemu-utils e2fsprogs fdisk util-linux
  # the status tests look at the repository days later
  faketime
  # the completion tests drive zsh's completion for real
  zsh
  # the alert tests run an SMTP sink (Python's smtpd module)
  python3
  # the integration tests boot a VM from a backup (TCG; SeaBIOS comes as a dependency)
  qemu-system-x86
  # libvirt domains: the integration tests run a real libvirtd with a TCG domain
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
  # --lvm snapshots (the tests need only the programs; this kernel has no device-mapper)
  lvm2
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
