#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan, UBSan; preset "fuzz") and runs each for
# SECONDS (default 20) over its seed corpus in fuzz/corpus/. A crash leaves its input
# as crash-* in build/fuzz and fails the run.
#
#   scripts/fuzz.sh            # what the test suite runs (20 s each, seed 1)
#   scripts/fuzz.sh 600 0      # ten minutes per target, a random seed
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
seed="${2:-1}"
cmake --preset fuzz -DVMVAULT_FUZZ_SECONDS="$seconds" -DVMVAULT_FUZZ_SEED="$seed" >/dev/null
cmake --build --preset fuzz
cd build/fuzz
ctest -j2 -L fuzz --timeout $((seconds * 3 + 120)) --output-on-failure
