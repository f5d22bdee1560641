#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo (scripts/demo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh release
./scripts/demo.sh
