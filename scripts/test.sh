#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit and integration), then
# the fuzz targets for 20 seconds each under ASan and UBSan (scripts/fuzz.sh).
# Integration tests mount FUSE filesystems and loop devices, so they need root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh release
ctest --preset release -j2 --timeout 600
./scripts/fuzz.sh
