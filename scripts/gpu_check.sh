#!/usr/bin/env bash
# The one command for a GPU machine: build with CUDA, run the GPU tests, time ladder's GPT-2 124M step on the
# GPU beside PyTorch's (bench/pytorch_reference.py), run the rest of the test suite, and print the comparison
# table (scripts/gpu_table.py).
#
#   scripts/gpu_check.sh OUTDIR [STEP...]
#
# STEPs, in this order by default: configure build gpu_tests bench pytorch parallel lora suite. "parallel"
# trains stages 06-09 on the GPU(s): with NCCL at N = the visible GPUs (parallel_nccl), and at 2 ranks sharing
# one GPU through the MPI backend (parallel_mpi); "lora" trains stage 10 on the GPU. "bench" and "pytorch" are
# also there per stage and mode (bench_stage01, pytorch_amp-bf16, ...); by default the fp32 pair comes first,
# then bf16, then fp16, so that the comparison that matters most is made even when time runs short.
# Every step logs to OUTDIR/<step>.log and is recorded in OUTDIR/steps.tsv; a step that fails is reported and
# the others go on (those that need the build are skipped without one). The table comes last, always, also
# into OUTDIR/gpu_table.md. The exit status is 1 when any step failed or was skipped.
#
# Time: one command on the lent GPU machine may run 10 minutes, so the whole check aims to end within
# LADDER_GPU_CHECK_SECONDS (default 480); each step gets at most what is left, and one with too little left is
# skipped as out of time. Run it again with the steps that were skipped: the build folder is reused.
#
# What the machine lacks travels with the tree: CLI11 and nlohmann/json in .deps/ (scripts/fetch_header_deps.sh,
# run where apt works; name .deps in the device tool's carry). OUTDIR holds about 20 files: pack it
# (tar czf $OUT/gpu_check.tgz -C OUTDIR .) where only a few files come back.
#
# Environment: LADDER_GPU_BUILD_DIR (default build-gpu), LADDER_GPU_CHECK_SECONDS, LADDER_GPU_BENCH_MIN_TIME
# (seconds of timed steps per stage, default 3), PYTHON (default python3: the one with torch).
set -u

if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: scripts/gpu_check.sh OUTDIR [configure|build|gpu_tests|bench|pytorch|suite|bench_stageNN|pytorch_MODE ...]" >&2
  exit 2
fi
repository="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)" || { echo "gpu_check.sh: cannot make $1" >&2; exit 2; }
shift
build="${LADDER_GPU_BUILD_DIR:-$repository/build-gpu}"
budget="${LADDER_GPU_CHECK_SECONDS:-480}"
min_time="${LADDER_GPU_BENCH_MIN_TIME:-3}"
python="${PYTHON:-python3}"
jobs="$(nproc)"
table_reserve=20  # seconds kept for the table at the end
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PYTHONUNBUFFERED=1
# nvcc lives in the toolkit's bin/, which need not be on PATH: put it there for CMake's CUDA detection.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH="/usr/local/cuda/bin:$PATH"; fi

# The GPU tests: gtest names of the *_cuda_test executables (label gpu) and the NCCL tests.
gpu_test_names='[Cc]uda|[Gg]pu|[Nn]ccl'
stages=(stage01 stage05 stage04 stage03 stage02)  # each beside its PyTorch mode, fp32 first
declare -A pytorch_after=([stage01]=fp32 [stage05]=amp-bf16 [stage02]=amp-fp16)

if [[ $# -gt 0 ]]; then requested=" $* "; else requested=" configure build gpu_tests bench pytorch parallel lora suite "; fi
wanted() {  # a step runs if it was asked for by name or by its group (bench_stage01 by "bench")
  [[ "$requested" == *" $1 "* || "$requested" == *" ${1%%_*} "* ]]
}

: >"$out/steps.tsv"
failures=0
build_ok=1
record() {  # step, result, seconds
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$1.log" >>"$out/steps.tsv"
  printf '== %-22s %s (%ss)\n' "$1" "$2" "$3"
  [[ "$2" == ok ]] || failures=$((failures + 1))
}

# run_step NAME CAP_SECONDS COMMAND...: runs COMMAND with its output in OUTDIR/NAME.log, for at most CAP seconds
# and never past the deadline; prints the end of the log when it fails.
run_step() {
  local name=$1 cap=$2
  shift 2
  local left=$((budget - SECONDS - table_reserve))
  if ((left < 15)); then
    record "$name" "skipped: out of time" 0
    return 1
  fi
  ((cap > left)) && cap=$left
  local start=$SECONDS status result
  echo "-- $name (at most ${cap}s): $*" >"$out/$name.log"
  timeout --kill-after=15 "$cap" "$@" >>"$out/$name.log" 2>&1
  status=$?
  case $status in
    0) result=ok ;;
    124 | 137) result="timed out after ${cap}s" ;;
    *) result="failed (exit $status)" ;;
  esac
  record "$name" "$result" $((SECONDS - start))
  if [[ $result != ok ]]; then tail -n 15 "$out/$name.log" | sed 's/^/   | /'; fi
  [[ $result == ok ]]
}

needs_build() {  # NAME: false, with the step recorded as skipped, when there is no build to run
  if ((build_ok)) && [[ -x "$build/bench/ladder_bench" ]]; then return 0; fi
  record "$1" "skipped: no build" 0
  return 1
}

echo "ladder GPU check: $repository -> $out (build $build, at most ${budget}s)"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi >"$out/nvidia_smi.log" 2>&1 || echo "nvidia-smi failed (exit $?)" >>"$out/nvidia_smi.log"
else
  echo "no nvidia-smi on PATH: is this the GPU machine?" >"$out/nvidia_smi.log"
fi
cat "$out/nvidia_smi.log"

if wanted configure; then
  [[ -d "$repository/.deps/usr" ]] || echo "note: no .deps/ (scripts/fetch_header_deps.sh): CLI11 and nlohmann/json must be installed"
  run_step configure 180 cmake -S "$repository" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLADDER_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_PREFIX_PATH="$repository/.deps/usr" -DLADDER_DOCS=OFF || build_ok=0
fi
if wanted build; then
  if ((build_ok)); then
    run_step build 420 cmake --build "$build" -j "$jobs" || build_ok=0
  else
    record build "skipped: configure failed" 0
  fi
fi

if wanted gpu_tests && needs_build gpu_tests; then
  # Two runs, since ctest cannot OR a label with a name: the label gpu, then GPU names outside it (NCCL).
  run_step gpu_tests 300 bash -c "ctest --test-dir '$build' -L gpu --output-on-failure --timeout 300; a=\$?;
    ctest --test-dir '$build' -LE gpu -R '$gpu_test_names' --output-on-failure --timeout 300; b=\$?;
    exit \$((a || b))"
fi

listed=""  # the benchmarks ladder_bench has: a stage that is not built has none
if ((build_ok)) && [[ -x "$build/bench/ladder_bench" ]]; then listed="$("$build/bench/ladder_bench" --benchmark_list_tests 2>&1)"; fi
for stage in "${stages[@]}"; do
  if wanted "bench_$stage" && needs_build "bench_$stage"; then
    if grep -q "^$stage/gpt2-124m-cuda/" <<<"$listed"; then
      # ladder_bench exits 0 after a benchmark's error (no GPU, out of memory, an op without a CUDA path):
      # the step fails on the error row in its JSON, which the table shows with the message.
      run_step "bench_$stage" 150 bash -c '"$@" || exit; if grep -q "\"error_occurred\": true" "$0"; then
        echo "ladder_bench reported an error (error_message in $0)"; exit 1; fi' "$out/ladder_gpu_$stage.json" \
        "$build/bench/ladder_bench" --benchmark_filter="^$stage/gpt2-124m-cuda/" --benchmark_min_time="$min_time" \
        --benchmark_out="$out/ladder_gpu_$stage.json" --benchmark_out_format=json
    else
      record "bench_$stage" "skipped: $stage is not built" 0
    fi
  fi
  mode="${pytorch_after[$stage]:-}"
  if [[ -n "$mode" ]] && wanted "pytorch_$mode"; then
    run_step "pytorch_$mode" 150 "$python" "$repository/bench/pytorch_reference.py" --mode "$mode" --device cuda \
      --model gpt2-124m --batch-size 16 --seq-len 1024 --steps 20 --warmup 5 --json "$out/pytorch_$mode.json"
  fi
done

# The data-parallel stages on the GPU, a short run each on the small model: every rank on a GPU of its own with
# NCCL, then two ranks sharing GPU 0 through MPI (NCCL refuses that); each run must end well and say its backend.
gpus=0
if command -v nvidia-smi >/dev/null; then gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')"; fi
parallel_run() {  # RANKS COMM: stages 06-09, one after the other, on the GPU
  local ranks=$1 comm=$2 stage status=0
  for stage in 06_ddp 07_zero1 08_zero2 09_fsdp; do
    [[ -x "$build/$stage/$stage" ]] || { echo "$stage is not built"; status=1; continue; }
    echo "== $stage at $ranks rank(s), --comm $comm"
    OMPI_MCA_rmaps_base_oversubscribe=1 mpiexec -n "$ranks" "$build/$stage/$stage" --device cuda --comm "$comm" --steps 20 \
      --log-every 10 --eval-problems 16 --samples 0 || status=1
  done
  return $status
}
export -f parallel_run
export build
if wanted parallel_nccl && needs_build parallel_nccl; then
  if ((gpus > 0)); then
    run_step parallel_nccl 150 bash -c "parallel_run $gpus nccl"
  else
    record parallel_nccl "skipped: no GPU listed by nvidia-smi" 0
  fi
fi
if wanted parallel_mpi && needs_build parallel_mpi; then
  run_step parallel_mpi 180 bash -c "CUDA_VISIBLE_DEVICES=0 parallel_run 2 mpi"
fi
if wanted lora_gpu && needs_build lora_gpu; then
  if [[ -x "$build/10_lora/10_lora" ]]; then
    run_step lora_gpu 150 "$build/10_lora/10_lora" --device cuda --steps 100 --log-every 25
  else
    record lora_gpu "skipped: 10_lora is not built" 0
  fi
fi

if wanted suite && needs_build suite; then
  run_step suite 900 ctest --test-dir "$build" -LE gpu -E "$gpu_test_names" -j "$jobs" --output-on-failure --timeout 600
fi

echo
"$python" "$repository/scripts/gpu_table.py" "$out" || { echo "gpu_table.py failed"; failures=$((failures + 1)); }
if ((failures > 0)); then
  echo "gpu_check.sh: $failures step(s) failed or were skipped; see $out/steps.tsv and the logs beside it"
  exit 1
fi
