#!/usr/bin/env python3
"""Stage 10's sweep: which weights and which rank, the LoRA paper's two tables reproduced on this model.

A base is trained on addition with stage 05's recipe (or --base is used), then adapted to subtraction:
  - by 10_lora for every rank in --ranks and every target set in --targets (default: r = 1, 2, 4, 8, 16 on
    {q}, {q,v}, {q,k,v,o}, {q,k,v,o,fc,proj}),
  - and by full fine-tuning: stage 05 from the same base, every weight trained,
all with the same seed, steps and batches. Written under --out (default runs/lora_sweep/):
  lora_sweep.md, lora_sweep.json   held-out accuracy, trainable parameters, optimizer-state bytes, tokens/s
  lora_sweep.png                   accuracy against the rank, and against the trainable parameters
  runs/<name>.log, .jsonl          every run's output and metrics
Flags this script does not know go to every run (e.g. --model tiny --steps 20 for a quick look). Finished runs
are kept and not run again: add seeds with --seeds, or delete runs/ to start afresh.
Needs only the standard library, and matplotlib for the chart.
"""
import argparse
import concurrent.futures
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

from ladder_metrics import format_bytes, format_rate, read_metrics
from report import markdown_table

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = "q;q,v;q,k,v,o;q,k,v,o,fc,proj"
# The paper's "which weight matrices" table holds the trainable parameters fixed: r·(number of C×C targets) = 8.
SAME_BUDGET = [("q", 8), ("q,v", 4), ("q,k,v,o", 2)]


def run(command, name, out_dir):
    """Runs one stage to completion; returns its metrics records. Exits with the log's tail if it fails. A run whose
    metrics file is complete (it ends with the memory record) is not run again, so a sweep can be resumed or given
    more seeds; delete runs/ to start afresh."""
    log, metrics = out_dir / "runs" / f"{name}.log", out_dir / "runs" / f"{name}.jsonl"
    finished = read_metrics(metrics)
    if finished and finished[-1].get("type") == "memory":
        print(f"  {name}: done before, kept", flush=True)
        return finished
    metrics.unlink(missing_ok=True)
    started = time.monotonic()
    with open(log, "w") as output:
        process = subprocess.run([*map(str, command), "--metrics", str(metrics)], stdout=output,
                                 stderr=subprocess.STDOUT)
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:])
        sys.exit(f"{name} failed (exit code {process.returncode}); the end of {log}:\n{tail}")
    print(f"  {name}: {time.monotonic() - started:.0f}s", flush=True)
    return read_metrics(metrics)


def summarize(records, name, targets, rank, seed):
    """One row of the sweep from a run's metrics."""
    evals = [r for r in records if r["type"] == "eval"]
    memory = [r for r in records if r["type"] == "memory"][-1]
    categories = memory["categories"]
    optimizer = categories["optimizer state"]["current"]
    state = sum(categories[c]["current"] for c in ("parameters", "gradients", "master weights", "optimizer state"))
    return {"name": name, "targets": targets, "rank": rank, "seed": seed,
            "accuracy_before": evals[0].get("accuracy") if targets else None,
            "accuracy": evals[-1].get("accuracy"), "held_out_loss": evals[-1]["loss"],
            # AdamW keeps two fp32 moments of every trainable parameter, and nothing else: 8 bytes each.
            "trainable_parameters": optimizer // 8, "base_parameters": memory["parameter_count"],
            "optimizer_state_bytes": optimizer, "model_state_bytes": state,
            "tokens_per_second": [r for r in records if r["type"] == "summary"][-1]["tokens_per_second"]}


def mean(values):
    return sum(values) / len(values)


def by_configuration(rows):
    """The runs of each (targets, rank), seeds together: mean accuracy and loss, and each seed's accuracy."""
    configurations = {}
    for row in rows:
        configurations.setdefault((row["targets"], row["rank"]), []).append(row)
    merged = []
    for runs in configurations.values():
        row = dict(runs[0], seeds=[r["seed"] for r in runs], accuracies=[r["accuracy"] for r in runs])
        for field in ("accuracy", "held_out_loss", "tokens_per_second"):
            row[field] = mean([r[field] for r in runs])
        merged.append(row)
    return merged


def steps_of(stage10, flags):
    """The steps every run takes: --steps if given, else stage 10's default (as its --help prints it)."""
    for index, flag in enumerate(flags):
        if flag.startswith("--steps="):
            return flag.split("=", 1)[1]
        if flag == "--steps" and index + 1 < len(flags):
            return flags[index + 1]
    help_text = subprocess.run([str(stage10), "--help"], capture_output=True, text=True, check=True).stdout
    return help_text.split("--steps INT=", 1)[1].split()[0]


def without_steps(flags):
    """The flags less --steps (the base has its own --base-steps)."""
    kept, skip = [], False
    for flag in flags:
        if skip or flag.startswith("--steps="):
            skip = False
            continue
        if flag == "--steps":
            skip = True
            continue
        kept.append(flag)
    return kept


def percent(value):
    return "-" if value is None else f"{100 * value:.1f}%"


def accuracy_text(row):
    """The accuracy, and with several seeds the mean and the range: single runs of this task are noisy."""
    if len(row["accuracies"]) == 1:
        return percent(row["accuracy"])
    return f"{percent(row['accuracy'])} ({100 * min(row['accuracies']):.0f}-{100 * max(row['accuracies']):.0f})"


def tables(rows, ranks, target_sets):
    full = next(r for r in rows if r["targets"] is None)
    lora = {(r["targets"], r["rank"]): r for r in rows if r["targets"] is not None}
    grid = [[f"{{{targets}}}"] + [accuracy_text(lora[(targets, rank)]) for rank in ranks]
            for targets in target_sets]
    budget = [[f"{{{t}}}", str(r), f"{lora[(t, r)]['trainable_parameters']:,}", accuracy_text(lora[(t, r)])]
              for t, r in SAME_BUDGET if (t, r) in lora]
    listing = []
    for r in sorted(rows, key=lambda r: (r["targets"] is None, r["trainable_parameters"])):
        name = "full fine-tuning (05_bf16)" if r["targets"] is None else f"LoRA {{{r['targets']}}}"
        listing.append([name, "-" if r["rank"] is None else str(r["rank"]), f"{r['trainable_parameters']:,}",
                        f"{100 * r['trainable_parameters'] / r['base_parameters']:.2f}%",
                        format_bytes(r["optimizer_state_bytes"]), format_bytes(r["model_state_bytes"]),
                        format_rate(r["tokens_per_second"]), f"{r['held_out_loss']:.4f}", accuracy_text(r)])
    text = ["## Held-out accuracy on subtraction, by target set and rank", "",
            markdown_table(["targets"] + [f"r = {rank}" for rank in ranks], grid), "",
            f"Full fine-tuning (stage 05, every weight): {accuracy_text(full)}. "
            f"The base before adapting: {percent(rows[0]['accuracy_before'])}.", ""]
    if budget:
        text += ["## Which weights, at the same number of trainable parameters", "",
                 markdown_table(["targets", "r", "trainable", "accuracy"], budget), ""]
    text += ["## Every run", "", markdown_table(
        ["run", "r", "trainable", "of the base", "optimizer state", "model state", "tokens/s", "held-out loss",
         "accuracy"], listing), "",
        "trainable: A and B (or every weight, for full fine-tuning); optimizer state: AdamW's fp32 moments; model "
        "state: weights, gradients, master weights and moments together, as the accountant measured them.", ""]
    return "\n".join(text)


def chart(rows, ranks, target_sets, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    full = next(r for r in rows if r["targets"] is None)
    figure, (by_rank, by_size) = plt.subplots(1, 2, figsize=(12, 4.5))
    for targets in target_sets:
        runs = [r for r in rows if r["targets"] == targets]
        means = [100 * r["accuracy"] for r in runs]
        # With several seeds, the bars span the lowest and highest seed's accuracy.
        spread = [[m - 100 * min(r["accuracies"]) for m, r in zip(means, runs)],
                  [100 * max(r["accuracies"]) - m for m, r in zip(means, runs)]]
        for axis, x in ((by_rank, [r["rank"] for r in runs]), (by_size, [r["trainable_parameters"] for r in runs])):
            axis.errorbar(x, means, yerr=spread, marker="o", capsize=3, label=f"{{{targets}}}")
    for axis in (by_rank, by_size):
        axis.axhline(100 * full["accuracy"], color="black", linestyle="--", label="full fine-tuning")
        axis.set_xscale("log", base=2 if axis is by_rank else 10)
        axis.set_ylabel("held-out accuracy (%)")
        axis.grid(alpha=0.3)
    by_rank.set_xticks(ranks, [str(rank) for rank in ranks])
    by_rank.set_xlabel("rank r")
    by_rank.set_title("Which rank")
    by_size.scatter([full["trainable_parameters"]], [100 * full["accuracy"]], color="black", marker="*", s=120)
    by_size.set_xlabel("trainable parameters")
    by_size.set_title("Accuracy per trainable parameter")
    by_rank.legend(fontsize=8)
    figure.suptitle("LoRA: a base trained on addition, adapted to subtraction")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--build", type=Path, default=REPOSITORY / "build", help="build folder (default: build/)")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "runs" / "lora_sweep", help="output folder")
    parser.add_argument("--ranks", default="1,2,4,8,16", help="comma-separated ranks (default: 1,2,4,8,16)")
    parser.add_argument("--targets", default=DEFAULT_TARGETS, help=f"target sets, ';'-separated (default: {DEFAULT_TARGETS})")
    parser.add_argument("--base", type=Path, help="a trained base to adapt (default: train one with stage 05)")
    parser.add_argument("--base-steps", type=int, default=1000, help="steps of that base on addition (default 1000)")
    parser.add_argument("--seeds", default="1337", help="comma-separated seeds; each configuration runs once per "
                        "seed and the tables show the mean and range (default: 1337, the stages' default)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (pass --threads 1 to each with more)")
    parser.add_argument("--no-charts", action="store_true", help="the tables only (no matplotlib needed)")
    arguments, flags = parser.parse_known_args(argv)
    for flag in flags:
        if flag.split("=")[0] in ("--metrics", "--save", "--load", "--base", "--data", "--lora-rank", "--lora-targets",
                                  "--seed"):
            parser.error(f"{flag.split('=')[0]} is set by the sweep for each run")
    stage05, stage10 = arguments.build / "05_bf16" / "05_bf16", arguments.build / "10_lora" / "10_lora"
    for executable in (stage05, stage10):
        if not executable.is_file():
            parser.error(f"{executable} is not built: build first (bash scripts/setup.sh)")
    if not arguments.no_charts and importlib.util.find_spec("matplotlib") is None:
        parser.error(f"matplotlib is missing for {sys.executable}; pass --no-charts or install it")
    ranks = [int(rank) for rank in arguments.ranks.split(",")]
    target_sets = [targets.strip() for targets in arguments.targets.split(";") if targets.strip()]
    (arguments.out / "runs").mkdir(parents=True, exist_ok=True)

    base = arguments.base
    if base is None:
        base = arguments.out / "base.safetensors"
        print(f"base: stage 05, {arguments.base_steps} steps of addition -> {base}", flush=True)
        run([stage05, "--data", "addition", "--steps", arguments.base_steps, "--save", base, *without_steps(flags)],
            "base", arguments.out)
    # Every adapter configuration, then full fine-tuning: stage 05 from the same base on the same task, as many steps
    # as the adapters get (its own learning rate: stage 05's default, where the adapters use stage 10's).
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    jobs = []
    for seed in seeds:
        suffix = f"_seed{seed}"
        jobs += [(f"lora_{targets.replace(',', '')}_r{rank}{suffix}", targets, rank, seed,
                  [stage10, "--base", base, "--lora-targets", targets, "--lora-rank", rank, "--seed", seed, *flags])
                 for targets in target_sets for rank in ranks]
        jobs.append((f"full_finetuning{suffix}", None, None, seed,
                     [stage05, "--load", base, "--data", "subtraction", "--steps", steps_of(stage10, flags),
                      "--seed", seed, *without_steps(flags)]))
    print(f"adapting to subtraction: {len(jobs)} runs, {arguments.jobs} at a time", flush=True)
    with concurrent.futures.ThreadPoolExecutor(arguments.jobs) as pool:
        records = list(pool.map(lambda job: run(job[4], job[0], arguments.out), jobs))
    runs = [summarize(found, name, targets, rank, seed)
            for (name, targets, rank, seed, _), found in zip(jobs, records)]
    rows = by_configuration(runs)

    text = tables(rows, ranks, target_sets)
    (arguments.out / "lora_sweep.md").write_text(f"# LoRA sweep\n\nFlags: `{' '.join(flags) or '(defaults)'}`\n\n"
                                                 + text)
    (arguments.out / "lora_sweep.json").write_text(
        json.dumps({"flags": flags, "seeds": seeds, "configurations": rows, "runs": runs}, indent=2) + "\n")
    print("\n" + text)
    if not arguments.no_charts:
        chart(rows, ranks, target_sets, arguments.out / "lora_sweep.png")
    print(f"written to {arguments.out}/: lora_sweep.md, lora_sweep.json" +
          ("" if arguments.no_charts else ", lora_sweep.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
