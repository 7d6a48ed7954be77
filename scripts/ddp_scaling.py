#!/usr/bin/env python3
"""Measures stage 06 with N = 1, 2, 4 ranks on this machine: step time, tokens/s and bytes communicated.

Each run trains the same per-rank batch for a few steps under mpiexec (oversubscribed where there are fewer
cores than ranks: then the ranks share cores and the step time shows it). Extra arguments go to 06_ddp.
  python3 scripts/ddp_scaling.py --build build --steps 20
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def run(build, ranks, steps, extra):
    stage = os.path.join(build, "06_ddp", "06_ddp")
    if not os.access(stage, os.X_OK):
        sys.exit(f"ddp_scaling: {stage} not found: build first (bash scripts/setup.sh)")
    with tempfile.TemporaryDirectory() as folder:
        metrics = os.path.join(folder, "metrics.jsonl")
        command = ["mpiexec", "-n", str(ranks), stage, "--steps", str(steps), "--eval-every", "0",
                   "--eval-problems", "0", "--samples", "0", "--metrics", metrics] + extra
        environment = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                           OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            sys.exit(f"ddp_scaling: {' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        records = [json.loads(line) for line in open(metrics)]
    steps_records = [r for r in records if r["type"] == "step"][1:]  # the first step warms caches up
    seconds = sorted(r["step_seconds"] for r in steps_records)[len(steps_records) // 2]
    return {"ranks": ranks, "median_step_seconds": seconds, "tokens_per_second": steps_records[-1]["tokens"] / seconds,
            "comm_bytes_per_step": steps_records[-1].get("comm_bytes", 0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ranks", default="1,2,4", help="comma-separated rank counts")
    args, extra = parser.parse_known_args()
    rows = [run(args.build, int(n), args.steps, extra) for n in args.ranks.split(",")]
    print("| ranks | median step | tokens/s (all ranks) | all-reduce bytes/step |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['ranks']} | {row['median_step_seconds'] * 1e3:.1f} ms | {row['tokens_per_second']:,.0f} | "
              f"{row['comm_bytes_per_step']:,.0f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
