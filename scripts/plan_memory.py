#!/usr/bin/env python3
"""What each rank of each stage would hold, for any model shape and any number of ranks, from the stages' own code.

Every stage runs one step on the meta device (--device meta): its buffers are accounted by the memory accountant
but hold no memory, its ops do no arithmetic, and stages 06-09 play rank 0 of --simulate-ranks N ranks whose
collectives are counted, not sent. So the table below is what the real code allocates, not a formula; the
formula beside it (the ZeRO paper's 16, 4 + 12/N, 2 + 14/N, 16/N bytes per parameter) is there to compare.

  python3 scripts/plan_memory.py --ranks 64 --layers 35 --heads 32 --channels 4096 --vocab 54600
  python3 scripts/plan_memory.py --model gpt2-124m --ranks 8 --json runs/plan.json

What it does not plan: workspace (the ops' scratch, which depends on the kernels), and activations follow the CPU
path's layout (attention keeps its T x T probabilities; the GPU's fused attention keeps one number per query).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ladder_metrics import CATEGORIES, MODEL_STATE as STATE, read_metrics  # the accountant's categories

SINGLE = ["01_fp32_baseline", "02_fp16_naive", "03_master_weights", "04_loss_scaling", "05_bf16"]
PARALLEL = ["06_ddp", "07_zero1", "08_zero2", "09_fsdp"]
# Model state per parameter per rank, as the ZeRO paper counts it (mixed precision, Adam): stage -> formula of N.
FORMULAS = {
    "01_fp32_baseline": lambda n: 16.0, "02_fp16_naive": lambda n: 8.0, "03_master_weights": lambda n: 16.0,
    "04_loss_scaling": lambda n: 16.0, "05_bf16": lambda n: 16.0, "06_ddp": lambda n: 16.0,
    "07_zero1": lambda n: 2 + 2 + 12 / n, "08_zero2": lambda n: 2 + (2 + 12) / n, "09_fsdp": lambda n: 16 / n,
}


def plan(build, stage, ranks, model_flags):
    """The memory record of one meta step of `stage` (rank 0 of `ranks` for 06-09)."""
    binary = os.path.join(build, stage, stage)
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"{binary} is not built")
    with tempfile.TemporaryDirectory() as folder:
        metrics = os.path.join(folder, "plan.jsonl")
        command = [binary, "--device", "meta", "--steps", "1", "--samples", "0", "--eval-every", "0",
                   "--metrics", metrics] + model_flags
        if stage in PARALLEL:
            command += ["--simulate-ranks", str(ranks)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
        records = read_metrics(Path(metrics))
    memory = next(r for r in records if r["type"] == "memory")
    steps = [r for r in records if r["type"] == "step"]
    return {"stage": stage, "ranks": ranks if stage in PARALLEL else 1, "parameters": memory["parameter_count"],
            "peak_bytes": {c: memory["categories"][c]["peak"] for c in CATEGORIES},
            "ring_bytes_per_step": steps[-1].get("comm_ring_bytes", 0) if steps else 0}


def model_flags(args):
    flags = ["--model", args.model, "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
             "--data", f"random:{args.vocab}"]
    for flag, value in (("--layers", args.layers), ("--heads", args.heads), ("--channels", args.channels),
                        ("--context", args.context)):
        if value:
            flags += [flag, str(value)]
    return flags


def gigabytes(value):
    return f"{value / 1e9:,.2f}" if value >= 1e8 else f"{value / 1e6:,.2f} MB"


def table(rows):
    lines = ["| stage | ranks | model state per rank (GB) | B/param | ZeRO formula | "
             + " | ".join(CATEGORIES) + " | ring bytes/step |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(CATEGORIES) + "---:|"]
    for row in rows:
        state = sum(row["peak_bytes"][c] for c in STATE)
        per_parameter = state / row["parameters"]
        formula = FORMULAS[row["stage"]](row["ranks"])
        cells = [row["stage"], str(row["ranks"]), gigabytes(state), f"{per_parameter:.3f}", f"{formula:.3f}"]
        cells += [gigabytes(row["peak_bytes"][c]) for c in CATEGORIES]
        cells.append(f"{row['ring_bytes_per_step']:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--ranks", type=int, default=8, help="N: the simulated world size of stages 06-09")
    parser.add_argument("--stages", default="", help="comma-separated stages (default: every built one)")
    parser.add_argument("--model", default="gpt2-124m", help="named config to start from")
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--heads", type=int, default=0)
    parser.add_argument("--channels", type=int, default=0)
    parser.add_argument("--context", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=50257, help="vocabulary (random token ids of it)")
    parser.add_argument("--batch-size", type=int, default=1, help="rows per rank (activations grow with it)")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--json", default="", help="also write the rows as JSON here")
    args = parser.parse_args()
    if args.ranks < 1:
        sys.exit(f"plan_memory: --ranks {args.ranks}: expected at least 1")
    stages = [s for s in args.stages.split(",") if s] or [
        s for s in SINGLE + PARALLEL if os.access(os.path.join(args.build, s, s), os.X_OK)]
    if not stages:
        sys.exit(f"plan_memory: no stage is built in {args.build} (bash scripts/setup.sh)")
    rows = []
    for stage in stages:
        if stage not in FORMULAS:
            sys.exit(f"plan_memory: unknown stage '{stage}' (expected one of {', '.join(FORMULAS)})")
        try:
            rows.append(plan(args.build, stage, args.ranks, model_flags(args)))
        except (FileNotFoundError, RuntimeError) as error:
            sys.exit(f"plan_memory: {error}")
    print(f"Ψ = {rows[0]['parameters']:,} parameters; {args.ranks} ranks for 06-09; batch {args.batch_size} x "
          f"{args.seq_len} tokens per rank; GB = 10^9 bytes\n")
    print(table(rows))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
