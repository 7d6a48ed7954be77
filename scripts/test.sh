#!/usr/bin/env bash
# The README's test command: set up and build, build the docs (Doxygen warnings fail), run every test.
# GPU tests skip themselves on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --build build --target docs
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
