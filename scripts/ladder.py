#!/usr/bin/env python3
"""The main job: train every built stage with the same flags, then compare them side by side.

Each stage build/NN_name/NN_name runs with the flags given here (everything this script does not know is
passed on, e.g. --steps 200 or --model tiny) and writes, under --out (default runs/):
  <stage>.log, <stage>.jsonl, <stage>.safetensors   its full output, metrics and final weights (10_lora: its
                                                    adapters, trained on 05_bf16.safetensors when 05 ran)
and then, for all stages together:
  ladder.md, ladder.json    final train loss, held-out loss, accuracy, tokens/s, peak memory per category
  loss.png, memory.png, throughput.png    loss curves, memory in bytes per parameter, tokens per second
A stage that fails is reported as failed and the others still run; the exit status is then 1.
Only the standard library and matplotlib (for the charts) are needed.
"""
import argparse
import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from report import markdown_table  # scripts/report.py: the same padded Markdown tables

REPOSITORY = Path(__file__).resolve().parent.parent
# The accountant's categories, in its order (common/memory.hpp); the first four are the model's state.
CATEGORIES = ["parameters", "gradients", "master weights", "optimizer state", "activations", "comm buffers",
              "workspace"]
MODEL_STATE = CATEGORIES[:4]
STEP_LINE = re.compile(r"\| step\s+(\d+)/(\d+) \| loss (\S+)")
LOG_TAIL_LINES = 8


def find_stages(build_dir):
    """The built stages: build/NN_name/NN_name executables, in stage order."""
    stages = []
    for folder in sorted(Path(build_dir).glob("[0-9][0-9]_*")):
        executable = folder / folder.name
        if folder.is_dir() and executable.is_file() and executable.stat().st_mode & 0o111:
            stages.append(executable)
    return stages


class Progress:
    """One line per stage: rewritten in place while it trains on a terminal, printed once when it ends otherwise."""

    def __init__(self, stream):
        self.stream = stream
        self.live = stream.isatty()

    def update(self, text):
        if self.live:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + text[:width] + "\x1b[K")
            self.stream.flush()

    def finish(self, text):
        self.stream.write(("\r\x1b[K" if self.live else "") + text + "\n")
        self.stream.flush()


def read_metrics(path):
    """The JSONL records of a run; a torn last line (a crash mid-write) is skipped."""
    records = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return records


def as_number(value):
    """JSON writes NaN and infinity as null; a chart wants them as NaN."""
    return float("nan") if value is None else float(value)


def summarize(stage, records):
    """Final figures of one stage from its metrics, or the reason they are missing."""
    steps = [r for r in records if r.get("type") == "step"]
    evals = [r for r in records if r.get("type") == "eval"]
    summaries = [r for r in records if r.get("type") == "summary"]
    memories = [r for r in records if r.get("type") == "memory"]
    if not steps or not memories:
        return {"failure": "the metrics file has no " + ("step" if not steps else "memory") + " record"}
    memory = memories[-1]
    count = memory["parameter_count"]
    result = {
        "steps": steps[-1]["step"],
        "final_train_loss": steps[-1]["loss"],
        "held_out_loss": evals[-1]["loss"] if evals else None,  # every stage evaluates at its end
        "accuracy": evals[-1].get("accuracy") if evals else None,
        "tokens_per_second": summaries[-1]["tokens_per_second"] if summaries else None,
        "parameter_count": count,
        "memory": {name: memory["categories"][name] for name in CATEGORIES if name in memory["categories"]},
        "peak_total": memory["peak_total"],
        # Stages that skip steps (loss scaling) report a running count with every step.
        "skipped_steps": steps[-1].get("skipped_steps"),
    }
    result["bytes_per_parameter"] = {name: usage["peak"] / count for name, usage in result["memory"].items()}
    result["bytes_per_parameter_total"] = memory["peak_total"] / count
    result["state_bytes_per_parameter"] = sum(result["bytes_per_parameter"].get(name, 0) for name in MODEL_STATE)
    return result


def run_stage(executable, stage_flags, out_dir, position, progress, save_checkpoints):
    """Runs one stage, keeping its output in <stage>.log, and returns its row of the comparison."""
    stage = executable.name
    metrics, log_path = out_dir / f"{stage}.jsonl", out_dir / f"{stage}.log"
    metrics.unlink(missing_ok=True)  # a stale file from an earlier run must not pass for this run's results
    command = [str(executable), *stage_flags, "--metrics", str(metrics)]
    if save_checkpoints:
        command += ["--save", str(out_dir / f"{stage}.safetensors")]
    prefix = f"{position} {stage}"
    progress.update(prefix + " ... starting")
    started = time.monotonic()
    with open(log_path, "w") as log, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                      text=True, errors="replace") as process:
        for line in process.stdout:
            log.write(line)
            log.flush()  # so that `tail -f` on the log follows the run
            match = STEP_LINE.search(line)
            if match:
                progress.update(f"{prefix} ... step {match[1]}/{match[2]} loss {match[3]}")
    seconds = time.monotonic() - started
    result = {"stage": stage, "status": "ok", "exit_code": process.returncode, "seconds": round(seconds, 3),
              "command": command, "log": str(log_path), "metrics": str(metrics)}
    if process.returncode != 0:
        result["failure"] = (f"exit code {process.returncode}" if process.returncode > 0
                             else f"killed by signal {-process.returncode}")
    else:
        result.update(summarize(stage, read_metrics(metrics)))
    if "failure" in result:
        result["status"] = "failed"
        result["log_tail"] = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        progress.finish(f"{prefix}: FAILED ({result['failure']}) after {seconds:.1f}s, see {log_path}")
    else:
        line = f"{prefix}: done in {seconds:.1f}s | loss {format_loss(result['final_train_loss'])}"
        line += f" | held-out {format_loss(result['held_out_loss'])} | accuracy {format_accuracy(result['accuracy'])}"
        progress.finish(line)
    return result


def base_flags(executable, results, out_dir):
    """10_lora adapts a trained base: stage 05's final weights when this run wrote them (else it trains its own)."""
    written = any(r["stage"] == "05_bf16" and r["status"] == "ok" for r in results)
    if executable.name == "10_lora" and written and (out_dir / "05_bf16.safetensors").exists():
        return ["--base", str(out_dir / "05_bf16.safetensors")]
    return []


def format_rate(value):
    if value is None:
        return "-"
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k" if value >= 1e3 else f"{value:.0f}"


def format_bytes(count):
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count} B"


def format_loss(value):
    """Losses are always recorded; null is how JSON writes a NaN or infinite one (a diverged fp16 run)."""
    return "nan" if value is None else f"{value:.4f}"


def format_accuracy(value):
    return "-" if value is None else f"{100 * value:.1f}%"  # None: a task without exact answers (text)


def comparison_markdown(results):
    """The two tables (training, then memory per category) and each failure's last log lines."""
    training = []
    memory = []
    for r in results:
        if r["status"] != "ok":
            training.append([r["stage"], f"failed ({r['failure']})"] + ["-"] * 8)
            continue
        skipped = "-" if r["skipped_steps"] is None else f"{r['skipped_steps']:.0f}"
        training.append([r["stage"], "ok", f"{r['parameter_count']:,}", format_loss(r["final_train_loss"]),
                         format_loss(r["held_out_loss"]), format_accuracy(r["accuracy"]),
                         format_rate(r["tokens_per_second"]), skipped, f"{r['state_bytes_per_parameter']:.2f}",
                         format_bytes(r["peak_total"])])
        memory.append([r["stage"]] +
                      [f"{r['bytes_per_parameter'].get(name, 0):.2f}" for name in CATEGORIES] +
                      [f"{r['bytes_per_parameter_total']:.2f}"])
    text = ["## Training", "", markdown_table(
        ["stage", "result", "parameters", "train loss", "held-out loss", "accuracy", "tokens/s", "skipped steps",
         "state B/param", "peak memory"], training, text_columns=2), "",
        "state B/param: weights, gradients, master weights and optimizer state per parameter (the design's "
        "formula); peak memory: the most allocated at once, activations included.", ""]
    if memory:
        text += ["## Peak memory by category, bytes per parameter", "",
                 markdown_table(["stage"] + CATEGORIES + ["total at peak"], memory), ""]
    for r in results:
        if r["status"] != "ok":
            text += [f"{r['stage']} failed ({r['failure']}); the last lines of {r['log']}:", "", "```",
                     *r["log_tail"], "```", ""]
    return "\n".join(text)


def draw_charts(results, out_dir):
    """loss.png, memory.png and throughput.png from the stages that finished."""
    import matplotlib
    matplotlib.use("Agg")  # no display needed: the charts are files
    import matplotlib.pyplot as plt

    done = [r for r in results if r["status"] == "ok"]
    colors = {r["stage"]: plt.cm.tab10(i % 10) for i, r in enumerate(done)}
    stages = [r["stage"] for r in done]

    figure, axes = plt.subplots(figsize=(9, 5.5))
    curves = {}  # losses -> the first stage that had them, to name a stage whose curve hides under another's
    for r in done:
        records = read_metrics(Path(r["metrics"]))
        x, y = zip(*[(s["step"], as_number(s["loss"])) for s in records if s.get("type") == "step"])
        evals = [(e["step"], as_number(e["loss"])) for e in records if e.get("type") == "eval"]
        color, label, style = colors[r["stage"]], r["stage"], "-"
        twin = curves.setdefault(tuple(map(repr, y)), r["stage"])
        if twin != r["stage"]:  # dashed, so that the identical curve below shows through the gaps
            label, style = f"{label} (same losses as {twin})", (0, (4, 4))
        axes.plot(x, y, color=color, alpha=0.3, linewidth=0.8)
        smoothed, average = [], y[0]
        for value in y:  # an exponential moving average shows the trend through the batch-to-batch noise
            average = value if math.isnan(average) else 0.9 * average + 0.1 * value
            smoothed.append(average)
        axes.plot(x, smoothed, color=color, linewidth=1.8, linestyle=style, label=label)
        if evals:
            axes.plot(*zip(*evals), "o", color=color, markersize=5)
        first_bad = next((i for i, value in enumerate(y) if not math.isfinite(value)), None)
        if first_bad:  # a diverged run: mark where its loss stopped being a number
            axes.plot(x[first_bad - 1], y[first_bad - 1], "X", color=color, markersize=10)
            axes.annotate(f"{r['stage']}: loss nan from step {x[first_bad]}", (x[first_bad - 1], y[first_bad - 1]),
                          xytext=(8, 4), textcoords="offset points", fontsize=8, color=color)
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy loss (log scale)")
    axes.set_title("Training loss (faint: every step; solid: moving average); dots: held-out loss")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out_dir / "loss.png", dpi=110)
    plt.close(figure)

    used = [name for name in CATEGORIES if any(r["bytes_per_parameter"].get(name, 0) > 0 for r in done)]
    figure, axes = plt.subplots(figsize=(max(6, 1.3 * len(done) + 4), 5.5))
    bottoms = [0.0] * len(done)
    for index, name in enumerate(used):
        heights = [r["bytes_per_parameter"].get(name, 0) for r in done]
        axes.bar(stages, heights, width=0.6, bottom=bottoms, label=name, color=plt.cm.Set2(index % 8),
                 hatch="//" if name not in MODEL_STATE else None, edgecolor="white")
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    for position, (r, top) in enumerate(zip(done, bottoms)):
        axes.annotate(f"{top:.1f}\n(state {r['state_bytes_per_parameter']:.1f})", (position, top),
                      ha="center", va="bottom", fontsize=8)
    axes.set_ylabel("peak bytes per parameter")
    axes.set_title("Peak memory by category (hatched: not model state)")
    axes.set_ylim(0, max(bottoms, default=1) * 1.18)
    handles, labels = axes.get_legend_handles_labels()  # listed top to bottom, as the bars are stacked
    axes.legend(handles[::-1], labels[::-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    plt.setp(axes.get_xticklabels(), rotation=20, ha="right")
    figure.tight_layout()
    figure.savefig(out_dir / "memory.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(max(6, 1.3 * len(done) + 3), 4.5))
    rates = [r["tokens_per_second"] or 0 for r in done]
    bars = axes.bar(stages, rates, width=0.6, color=[colors[s] for s in stages])
    axes.bar_label(bars, labels=[format_rate(rate) for rate in rates], fontsize=8)
    axes.set_ylabel("tokens per second (mean over training steps)")
    axes.set_title("Training throughput")
    axes.set_ylim(0, max(rates, default=1) * 1.15 or 1)
    plt.setp(axes.get_xticklabels(), rotation=20, ha="right")
    figure.tight_layout()
    figure.savefig(out_dir / "throughput.png", dpi=110)
    plt.close(figure)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        epilog="Any other flag goes to every stage, e.g.: ladder.py --stages 01,03 --steps 200 --model tiny")
    parser.add_argument("--build", type=Path, default=REPOSITORY / "build", help="build folder (default: build/)")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "runs", help="output folder (default: runs/)")
    parser.add_argument("--stages", help="comma-separated stage numbers to run, e.g. 01,03 (default: all built)")
    parser.add_argument("--no-checkpoints", action="store_true", help="do not save each stage's final weights")
    parser.add_argument("--no-charts", action="store_true", help="write the tables only (no matplotlib needed)")
    arguments, stage_flags = parser.parse_known_args(argv)
    for flag in stage_flags:
        if flag.split("=")[0] in ("--metrics", "--save"):
            parser.error(f"{flag.split('=')[0]} is set by the runner for each stage (to {arguments.out}/<stage>.*)")
    return parser, arguments, stage_flags


def main(argv):
    parser, arguments, stage_flags = parse_arguments(argv)
    stages = find_stages(arguments.build)
    if not stages:
        parser.error(f"no stage executables (NN_name/NN_name) in {arguments.build}: build first "
                     "(bash scripts/setup.sh)")
    if arguments.stages:
        wanted = [number.strip().zfill(2) for number in arguments.stages.split(",") if number.strip()]
        built = {stage.name[:2]: stage for stage in stages}
        missing = [number for number in wanted if number not in built]
        if missing:
            parser.error(f"--stages {','.join(missing)}: not built; built stages are {', '.join(sorted(built))}")
        stages = [built[number] for number in sorted(set(wanted))]
    if not arguments.no_charts and importlib.util.find_spec("matplotlib") is None:  # now, not after the training
        parser.error(f"matplotlib is missing for {sys.executable}: apt-get install python3-matplotlib "
                     "(or pip install matplotlib), or pass --no-charts")
    arguments.out.mkdir(parents=True, exist_ok=True)
    for name in ("ladder.md", "ladder.json", "loss.png", "memory.png", "throughput.png"):
        (arguments.out / name).unlink(missing_ok=True)  # an earlier run's results must not outlive this one's

    progress = Progress(sys.stdout)
    results = []
    for index, stage in enumerate(stages, start=1):
        results.append(run_stage(stage, stage_flags + base_flags(stage, results, arguments.out), arguments.out,
                                 f"[{index}/{len(stages)}]", progress, not arguments.no_checkpoints))

    table = comparison_markdown(results)
    (arguments.out / "ladder.md").write_text(f"# The ladder\n\nStage flags: `{' '.join(stage_flags) or '(defaults)'}`"
                                             f"\n\n{table}")
    (arguments.out / "ladder.json").write_text(json.dumps(
        {"build": str(arguments.build), "stage_flags": stage_flags, "stages": results}, indent=2) + "\n")
    print("\n" + table)
    outputs = ["ladder.md", "ladder.json"]
    if not arguments.no_charts and any(r["status"] == "ok" for r in results):
        draw_charts(results, arguments.out)
        outputs += ["loss.png", "memory.png", "throughput.png"]
    print(f"written to {arguments.out}/: {', '.join(outputs)}, and each stage's .log and .jsonl")
    failed = [r["stage"] for r in results if r["status"] != "ok"]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
