#!/usr/bin/env python3
"""Stages 06-09 side by side at N ranks on this machine: time, memory per rank (the accountant's and the
operating system's), and bytes on the wire.

Each run is a stage binary under `mpiexec -n N`, every rank wrapped in /usr/bin/time so that each rank's peak
resident memory (what the operating system saw) can stand beside the peak the memory accountant reports. Two
workloads, both with the same rows per rank at every N (so the global batch grows with N):
  small      the CPU default model on addition, 16 rows of 10 tokens per rank
  gpt2-124m  the GPT-2 124M shape (vocabulary 50257, padded 50304) on one row of 64 random token ids
             (--data random:50257) per rank: the optimizer state dominates, so sharding shows in real megabytes
On a machine with fewer cores than ranks the ranks share cores: step times then show the sharing as much as the
technique. Compare rows of one run only.

  python3 scripts/sharded_bench.py --build build --out runs/sharded
  python3 scripts/sharded_bench.py --workloads small --ranks 1,2 --stages 07_zero1,09_fsdp
Writes OUT/sharded_bench.md and OUT/sharded_bench.json, and for each rank count N OUT/benchmark_npN.json in
Google Benchmark's schema, which `scripts/report.py --baseline OLD/benchmark_np2.json NEW/benchmark_np2.json`
compares (the regression gate: time past a threshold, any memory category grown by a byte).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ladder_metrics import CATEGORIES, MODEL_STATE as STATE, read_metrics  # the accountant's categories

# (label, stage binary, extra flags): 09 twice, to show what prefetching is worth.
VARIANTS = [
    ("06_ddp", "06_ddp", []),
    ("07_zero1", "07_zero1", []),
    ("08_zero2", "08_zero2", []),
    ("09_fsdp", "09_fsdp", []),
    ("09_fsdp (no prefetch)", "09_fsdp", ["--prefetch", "false"]),
]
MIB = 1024.0 * 1024.0


def workload_flags(name):
    if name == "tiny":  # seconds: for the tests
        return ["--model", "tiny", "--batch-size", "2"], 4
    if name == "small":
        return ["--model", "small", "--batch-size", "16"], 20
    if name == "gpt2-124m":
        return ["--model", "gpt2-124m", "--data", "random:50257", "--batch-size", "1", "--seq-len", "64",
                "--eval-batches", "1"], 4
    sys.exit(f"sharded_bench: unknown workload '{name}' (tiny, small, gpt2-124m)")


def run(build, label, binary, extra, ranks, workload, folder):
    stage = os.path.join(build, binary, binary)
    if not os.access(stage, os.X_OK):
        sys.exit(f"sharded_bench: {stage} not found: build first (bash scripts/setup.sh)")
    flags, steps = workload_flags(workload)
    metrics = os.path.join(folder, f"{binary}_{ranks}.jsonl")
    # Each rank's /usr/bin/time appends its line to a file: written to stderr, the lines of ranks that finish
    # last were often lost, mpiexec closing its forwarding of their output as the stages themselves exited.
    peak_rss_file = os.path.join(folder, f"{binary}_{ranks}_peak_rss.txt")
    if os.path.exists(peak_rss_file):
        os.remove(peak_rss_file)
    command = (["mpiexec", "-n", str(ranks), "/usr/bin/time", "-a", "-o", peak_rss_file,
                "-f", "ladder-rank-peak-rss-kib %M", stage]
               + flags + ["--steps", str(steps), "--eval-every", "0", "--eval-problems", "0", "--samples", "0",
                          "--log-every", "1000", "--metrics", metrics] + extra)
    environment = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                       OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
    print(f"sharded_bench: {workload} {label} at {ranks} rank{'s' if ranks > 1 else ''} ...", file=sys.stderr, flush=True)
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        sys.exit(f"sharded_bench: {' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    with open(peak_rss_file) as lines:
        rss = [int(kib) * 1024 for kib in re.findall(r"ladder-rank-peak-rss-kib (\d+)", lines.read())]
    if len(rss) != ranks:
        sys.exit(f"sharded_bench: {peak_rss_file} holds {len(rss)} peak RSS lines for {ranks} ranks")
    records = read_metrics(Path(metrics))
    steps_records = [r for r in records if r["type"] == "step"][1:]  # the first step warms caches and allocators
    memory = next(r for r in records if r["type"] == "memory")
    seconds = sorted(r["step_seconds"] for r in steps_records)[len(steps_records) // 2]
    parameters = memory["parameter_count"]
    peaks = {name: memory["categories"][name]["peak"] for name in CATEGORIES}
    last = steps_records[-1]
    return {
        "workload": workload, "stage": label, "ranks": ranks, "parameters": parameters,
        "median_step_seconds": seconds, "tokens_per_second": last["tokens"] / seconds,
        "step_seconds": [r["step_seconds"] for r in steps_records], "tokens_per_step": last["tokens"],
        "peak_bytes": peaks, "state_bytes_per_parameter": sum(peaks[c] for c in STATE) / parameters,
        "accountant_peak_total": memory["peak_total"], "os_peak_rss_per_rank": rss,
        "comm_logical_bytes": last.get("comm_bytes", 0), "comm_ring_bytes": last.get("comm_ring_bytes", 0),
        "ring_bytes": {key[len("ring_bytes_"):]: value for key, value in last.items() if key.startswith("ring_bytes_")},
    }


def benchmark_name(row):
    """'07_zero1/small', '09_fsdp/no-prefetch/gpt2-124m': one name per stage variant and workload."""
    variant = row["stage"].replace(" (no prefetch)", "/no-prefetch")
    return f"{variant}/{row['workload']}"


def google_benchmark_json(rows, ranks):
    """The runs at `ranks` ranks in Google Benchmark's JSON schema, one entry per timed step (as repetitions), so
    that `scripts/report.py --baseline OLD NEW` compares two such files: time with its noise, and every memory
    category's peak per rank, to the byte."""
    entries = []
    for row in (r for r in rows if r["ranks"] == ranks):
        name = benchmark_name(row)
        counters = {f"peak_bytes_{category}": value for category, value in row["peak_bytes"].items()}
        counters["peak_bytes"] = row["accountant_peak_total"]
        for index, seconds in enumerate(row["step_seconds"]):
            entries.append({"name": name, "run_name": name, "run_type": "iteration",
                            "repetitions": len(row["step_seconds"]), "repetition_index": index, "iterations": 1,
                            "real_time": seconds, "cpu_time": seconds, "time_unit": "s", "step_seconds": seconds,
                            "tokens_per_second": row["tokens_per_step"] / seconds, "parameters": row["parameters"],
                            "ring_bytes_per_step": row["comm_ring_bytes"], **counters})
    return {"context": {"executable": "scripts/sharded_bench.py", "ranks": ranks}, "benchmarks": entries}


def markdown(rows):
    lines = []
    for workload in dict.fromkeys(row["workload"] for row in rows):
        chosen = [row for row in rows if row["workload"] == workload]
        lines += [f"### {workload} ({chosen[0]['parameters']:,} parameters)", "",
                  "| stage | ranks | step | tokens/s | state B/param | " + " | ".join(CATEGORIES) +
                  " | accountant peak | OS peak RSS (max rank) | OS - accountant | ring bytes/step |",
                  "|---|---:|---:|---:|---:|" + "---:|" * len(CATEGORIES) + "---:|---:|---:|---:|"]
        for row in chosen:
            rss = max(row["os_peak_rss_per_rank"]) if row["os_peak_rss_per_rank"] else float("nan")
            cells = [row["stage"], str(row["ranks"]), f"{row['median_step_seconds'] * 1e3:,.0f} ms",
                     f"{row['tokens_per_second']:,.0f}", f"{row['state_bytes_per_parameter']:.2f}"]
            cells += [f"{row['peak_bytes'][c] / MIB:,.1f}" for c in CATEGORIES]
            cells += [f"{row['accountant_peak_total'] / MIB:,.1f} MiB", f"{rss / MIB:,.1f} MiB",
                      f"{(rss - row['accountant_peak_total']) / MIB:,.1f} MiB", f"{row['comm_ring_bytes']:,.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Per-category columns: each rank's peak in MiB, from the accountant of rank 0 (all ranks hold "
                      "the same). OS peak RSS: the largest of the ranks' maximum resident set sizes (/usr/bin/time "
                      "%M); the difference is what no category counts: the program, its libraries, MPI, the "
                      "allocator.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--out", default="runs/sharded")
    parser.add_argument("--ranks", default="1,2,4", help="comma-separated rank counts")
    parser.add_argument("--workloads", default="small,gpt2-124m", help="small, gpt2-124m, or both (tiny: seconds)")
    parser.add_argument("--stages", default="", help="comma-separated stage labels (default: all five variants)")
    args = parser.parse_args()
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("sharded_bench: /usr/bin/time is missing, which measures each rank's peak memory "
                 "(apt-get install time; scripts/setup.sh installs it)")
    if shutil.which("mpiexec") is None:
        sys.exit("sharded_bench: mpiexec is missing (apt-get install mpich; scripts/setup.sh installs it)")
    wanted = [s for s in args.stages.split(",") if s]
    variants = [v for v in VARIANTS if not wanted or v[0] in wanted or v[1] in wanted]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workload in args.workloads.split(","):
            for label, binary, extra in variants:
                for ranks in (int(n) for n in args.ranks.split(",")):
                    rows.append(run(args.build, label, binary, extra, ranks, workload, folder))
    (out / "sharded_bench.json").write_text(json.dumps(rows, indent=1))
    for ranks in dict.fromkeys(row["ranks"] for row in rows):
        (out / f"benchmark_np{ranks}.json").write_text(json.dumps(google_benchmark_json(rows, ranks), indent=1))
    text = markdown(rows)
    (out / "sharded_bench.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
