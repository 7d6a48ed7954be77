#!/usr/bin/env python3
"""The main job: train every built stage with the same flags, then compare them side by side.

Each stage build/NN_name/NN_name runs with the flags given here (everything this script does not know is
passed on, e.g. --steps 200 or --model tiny). Without --steps, each trains 600 steps, and without --model or
--layers, the small model with 2 layers instead of 4 (the stages' own defaults are 1000 steps of 4 layers): that
model passes 98% held-out accuracy on addition by step 400 at every stage that learns, and the whole ladder
trains in about five minutes on two cores. The data-parallel stages 06-09 run under `mpiexec -n N` (--ranks, 2 by default: on a GPU machine with
fewer GPUs than ranks they share them through MPI, as the stages say), each rank with --batch-size / N rows, so
that every stage trains on the same global batch, and --threads cores / N unless --threads is given. Each
writes, under --out (default runs/):
  <stage>.log, <stage>.jsonl, <stage>.safetensors   its full output, metrics and final weights (10_lora: its
                                                    adapters, trained on 05_bf16.safetensors when 05 ran)
and then, for all stages together:
  ladder.md, ladder.json    final train loss, held-out loss, accuracy, tokens/s, per-rank memory and communication
  loss.png, memory.png, throughput.png, communication.png    loss curves, memory per rank in bytes per parameter,
                            tokens per second, bytes each rank sends per step by collective
A stage that fails is reported as failed and the others still run; the exit status is then 1.
Only the standard library and matplotlib (for the charts) are needed.
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ladder_charts import draw_charts  # scripts/ladder_charts.py: the charts of the comparison
from ladder_metrics import (CATEGORIES, format_accuracy, format_bytes, format_loss, format_rate, read_metrics,
                            summarize)
from report import markdown_table  # scripts/report.py: the same padded Markdown tables

REPOSITORY = Path(__file__).resolve().parent.parent
STEP_LINE = re.compile(r"\| step\s+(\d+)/(\d+) \| loss (\S+)")
# The stages that run as several ranks (their number, the first two characters of the name).
DATA_PARALLEL = {"06", "07", "08", "09"}
LOG_TAIL_LINES = 8
MAIN_JOB_STEPS = 600  # without --steps
MAIN_JOB_LAYERS = 2  # without --model or --layers: half the small model's depth, which learns addition sooner
STAGE_BATCH_SIZE = 64  # the stages' own --batch-size default: the global batch when none is given


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


def launch_prefix(stage, ranks):
    """mpiexec -n N for the data-parallel stages (Open MPI needs the variables to start ranks as root and more ranks
    than cores; MPICH ignores them), nothing for the others."""
    if stage[:2] not in DATA_PARALLEL or ranks == 1:
        return []
    return ["env", "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
            "OMPI_MCA_rmaps_base_oversubscribe=1", shutil.which("mpiexec") or "mpiexec", "-n", str(ranks)]


def run_stage(executable, stage_flags, out_dir, position, progress, save_checkpoints, ranks=1):
    """Runs one stage, keeping its output in <stage>.log, and returns its row of the comparison."""
    stage = executable.name
    metrics, log_path = out_dir / f"{stage}.jsonl", out_dir / f"{stage}.log"
    metrics.unlink(missing_ok=True)  # a stale file from an earlier run must not pass for this run's results
    ranks = ranks if stage[:2] in DATA_PARALLEL else 1
    command = [*launch_prefix(stage, ranks), str(executable), *stage_flags, "--metrics", str(metrics)]
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
              "ranks": ranks, "command": command, "log": str(log_path), "metrics": str(metrics)}
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


def flag_value(flags, name):
    """The value of `name` among `flags` (`--name V` or `--name=V`; the last one wins), or None."""
    value = None
    for index, flag in enumerate(flags):
        if flag == name and index + 1 < len(flags):
            value = flags[index + 1]
        elif flag.startswith(name + "="):
            value = flag.split("=", 1)[1]
    return value


def without_flag(flags, name):
    """`flags` with every `--name V` and `--name=V` taken out."""
    kept, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag == name:
            skip = True
        elif not flag.startswith(name + "="):
            kept.append(flag)
    return kept


def per_rank_flags(stage_flags, global_batch, ranks, cores):
    """A data-parallel stage's flags at `ranks` ranks: the global batch split into --batch-size / N rows per rank
    (every stage then trains on the same rows per step), and the cores shared out, unless --threads is given."""
    if ranks == 1:
        return stage_flags
    flags = without_flag(stage_flags, "--batch-size") + ["--batch-size", str(global_batch // ranks)]
    if flag_value(stage_flags, "--threads") is None:
        flags += ["--threads", str(max(1, cores // ranks))]
    return flags


def base_flags(executable, results, out_dir):
    """10_lora adapts a trained base: stage 05's final weights when this run wrote them (else it trains its own)."""
    written = any(r["stage"] == "05_bf16" and r["status"] == "ok" for r in results)
    if executable.name == "10_lora" and written and (out_dir / "05_bf16.safetensors").exists():
        return ["--base", str(out_dir / "05_bf16.safetensors")]
    return []


def comparison_markdown(results):
    """The two tables (training, then memory per category) and each failure's last log lines."""
    training = []
    memory = []
    for r in results:
        if r["status"] != "ok":
            training.append([r["stage"], f"failed ({r['failure']})"] + ["-"] * 10)
            continue
        skipped = "-" if r["skipped_steps"] is None else f"{r['skipped_steps']:.0f}"
        training.append([r["stage"], "ok", str(r["ranks"]), f"{r['parameter_count']:,}",
                         format_loss(r["final_train_loss"]), format_loss(r["held_out_loss"]),
                         format_accuracy(r["accuracy"]), format_rate(r["tokens_per_second"]), skipped,
                         f"{r['state_bytes_per_parameter']:.2f}", format_bytes(r["peak_total"]),
                         format_bytes(round(r["ring_bytes_per_step"]))])
        memory.append([r["stage"]] +
                      [f"{r['bytes_per_parameter'].get(name, 0):.2f}" for name in CATEGORIES] +
                      [f"{r['bytes_per_parameter_total']:.2f}"])
    text = ["## Training", "", markdown_table(
        ["stage", "result", "ranks", "parameters", "train loss", "held-out loss", "accuracy", "tokens/s",
         "skipped steps", "state B/param per rank", "peak memory per rank", "sent per step per rank"], training,
        text_columns=2), "",
        "ranks: processes the stage ran as (06-09 under mpiexec); tokens/s: all ranks together. State B/param per "
        "rank: weights, gradients, master weights and optimizer state one rank holds, per parameter of the model "
        "(the design's formula); peak memory per rank: the most one rank had allocated at once, activations "
        "included; sent per step per rank: the bytes one rank sends in a ring in the last step.", ""]
    if memory:
        text += ["## Peak memory per rank by category, bytes per parameter", "",
                 markdown_table(["stage"] + CATEGORIES + ["total at peak"], memory), ""]
    for r in results:
        if r["status"] != "ok":
            text += [f"{r['stage']} failed ({r['failure']}); the last lines of {r['log']}:", "", "```",
                     *r["log_tail"], "```", ""]
    return "\n".join(text)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        epilog="Any other flag goes to every stage, e.g.: ladder.py --stages 01,03 --steps 200 --model tiny")
    parser.add_argument("--build", type=Path, default=REPOSITORY / "build", help="build folder (default: build/)")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "runs", help="output folder (default: runs/)")
    parser.add_argument("--stages", help="comma-separated stage numbers to run, e.g. 01,03 (default: all built)")
    parser.add_argument("--no-checkpoints", action="store_true", help="do not save each stage's final weights")
    parser.add_argument("--no-charts", action="store_true", help="write the tables only (no matplotlib needed)")
    parser.add_argument("--ranks", type=int, default=2,
                        help="ranks of the data-parallel stages 06-09, run under mpiexec (default: 2)")
    arguments, stage_flags = parser.parse_known_args(argv)
    if arguments.ranks < 1:
        parser.error(f"--ranks {arguments.ranks}: expected at least 1")
    for flag in stage_flags:
        if flag.split("=")[0] in ("--metrics", "--save"):
            parser.error(f"{flag.split('=')[0]} is set by the runner for each stage (to {arguments.out}/<stage>.*)")
    batch = flag_value(stage_flags, "--batch-size")
    if batch is not None and not batch.isdigit():
        parser.error(f"--batch-size {batch}: expected a whole number of rows")
    arguments.global_batch = int(batch) if batch is not None else STAGE_BATCH_SIZE
    if arguments.global_batch % arguments.ranks != 0 or arguments.global_batch < arguments.ranks:
        parser.error(f"--batch-size {arguments.global_batch} cannot be split evenly over --ranks {arguments.ranks} "
                     "(each rank of stages 06-09 takes --batch-size / N rows): choose a multiple of it")
    if flag_value(stage_flags, "--model") is None and flag_value(stage_flags, "--layers") is None:
        stage_flags = ["--layers", str(MAIN_JOB_LAYERS)] + stage_flags
    if flag_value(stage_flags, "--steps") is None:
        stage_flags = ["--steps", str(MAIN_JOB_STEPS)] + stage_flags
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
    for name in ("ladder.md", "ladder.json", "loss.png", "memory.png", "throughput.png", "communication.png"):
        (arguments.out / name).unlink(missing_ok=True)  # an earlier run's results must not outlive this one's

    progress = Progress(sys.stdout)
    if arguments.ranks > 1 and any(s.name[:2] in DATA_PARALLEL for s in stages) and not shutil.which("mpiexec"):
        parser.error(f"--ranks {arguments.ranks}: stages 06-09 run under mpiexec, which is not installed "
                     "(apt-get install mpich), or pass --ranks 1")
    results = []
    for index, stage in enumerate(stages, start=1):
        flags = stage_flags + base_flags(stage, results, arguments.out)
        if stage.name[:2] in DATA_PARALLEL:
            flags = per_rank_flags(flags, arguments.global_batch, arguments.ranks, os.cpu_count() or 1)
        results.append(run_stage(stage, flags, arguments.out, f"[{index}/{len(stages)}]", progress,
                                 not arguments.no_checkpoints, arguments.ranks))

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
        if (arguments.out / "communication.png").exists():
            outputs.append("communication.png")
    print(f"written to {arguments.out}/: {', '.join(outputs)}, and each stage's .log and .jsonl")
    failed = [r["stage"] for r in results if r["status"] != "ok"]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
