#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit and integration).
# Integration tests mount FUSE filesystems and loop devices, so they need root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh release
ctest --preset release -j2 --timeout 600
