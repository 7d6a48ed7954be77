#!/usr/bin/env bash
# The README's main job: set up and build, then train every built stage with the same flags and compare them.
# Arguments go to scripts/ladder.py, which passes the ones it does not know to every stage, e.g.
#   bash scripts/run_ladder.sh --steps 200            bash scripts/run_ladder.sh --stages 01,03 --model tiny
# Results in runs/: ladder.md and ladder.json (the comparison), loss.png, memory.png, throughput.png (the charts),
# and each stage's <stage>.log, <stage>.jsonl and <stage>.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# The charts need matplotlib. setup.sh installs Debian's python3-matplotlib, which serves /usr/bin/python3; the
# python3 first on PATH (pyenv, a virtual environment) may lack it, so take the first interpreter that has it.
python=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "import matplotlib" 2>/dev/null; then
    python="$candidate"
    break
  fi
done
if [ -z "$python" ]; then
  echo "run_ladder: no python3 can import matplotlib (apt-get install python3-matplotlib, or pip install matplotlib)" >&2
  exit 1
fi
exec "$python" scripts/ladder.py "$@"
