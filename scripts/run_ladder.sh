#!/usr/bin/env bash
# The README's main job: set up and build, then train every built stage on the same config and data.
# Extra arguments are passed to each stage (e.g. --steps 100, --data text:book.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
for stage in 01_fp32_baseline; do
  echo "=== $stage"
  "./build/$stage/$stage" --metrics "runs/$stage.jsonl" --save "runs/$stage.safetensors" "$@"
done
echo "metrics and checkpoints are in runs/"
