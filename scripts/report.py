#!/usr/bin/env python3
"""Tables and charts from Google Benchmark JSON (ladder_bench --benchmark_out=FILE --benchmark_out_format=json).

One file: a Markdown table, one row per benchmark (tokens/s, step time, bytes per parameter, GFLOP/s, GB/s).
Two files A and B (two commits, CPU and GPU, ladder and a PyTorch reference written in the same schema): one row
per benchmark and figure, with both values and the ratio B/A. Benchmarks are matched by name.
Writes <out>/benchmarks.md and a bar chart per rate (tokens_per_second.png, flops_per_second.png,
bytes_per_second.png) where the runs have that counter, and prints the table.

  python3 scripts/report.py runs/bench.json
  python3 scripts/report.py before.json after.json --labels before,after --out runs/compare

As a regression gate, --baseline OLD.json NEW.json prints, for every benchmark, its time against the baseline's
(with each run's noise: the relative standard deviation of its repetitions, --benchmark_repetitions) and every
memory category's peak bytes, and exits 1 naming each benchmark whose time grew by more than --threshold percent
(default 5), whose peak bytes grew in any category by a single byte, that failed, or that disappeared.
  python3 scripts/report.py --baseline runs/main.json runs/branch.json --threshold 5
"""
import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

from benchmark_gate import display_name, run_gate, step_seconds  # scripts/benchmark_gate.py: --baseline

def counter(name, scale=1.0):
    return lambda benchmark: benchmark[name] / scale if name in benchmark else None


# (column, how to read it from a benchmark, how to print it). Columns no benchmark has are left out.
FIGURES = [
    ("tokens/s", counter("tokens_per_second"), lambda v: f"{v:,.0f}"),
    ("time/iteration", step_seconds, lambda v: f"{v * 1e3:.3f} ms" if v < 1 else f"{v:.3f} s"),
    ("time / stage 01", counter("time_ratio"), lambda v: f"{v:.3f}"),  # paired/*: median over the pairs
    ("state B/param", counter("state_bytes_per_parameter"), lambda v: f"{v:.2f}"),
    ("peak B/param", counter("bytes_per_parameter"), lambda v: f"{v:.2f}"),
    ("GFLOP/s", counter("flops_per_second", 1e9), lambda v: f"{v:.2f}"),
    ("GB/s", counter("bytes_per_second", 1e9), lambda v: f"{v:.2f}"),
]
# The rates worth a chart: counter name, axis label.
CHARTS = [("tokens_per_second", "tokens per second"), ("flops_per_second", "GFLOP/s"),
          ("bytes_per_second", "GB/s")]


def load_benchmarks(path):
    """Benchmarks of one JSON file by name, sorted. Repetitions are reduced to their mean (Google
    Benchmark's own 'mean' aggregate where it wrote one); failed benchmarks keep their error message."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"report.py: cannot read {path}: {error}")
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise SystemExit(f"report.py: {path} is not Google Benchmark JSON (no 'benchmarks' list)")
    runs, means = {}, {}
    for entry in document["benchmarks"]:
        name = display_name(entry.get("run_name", entry["name"]))
        if entry.get("run_type") == "aggregate":
            if entry.get("aggregate_name") == "mean":
                means[name] = entry
        else:
            runs.setdefault(name, []).append(entry)
    benchmarks = {}
    # By name, not by registration order (which follows the link order of the files): stable across builds.
    for name in sorted(set(runs) | set(means)):
        if name in means:
            benchmarks[name] = means[name]
            continue
        entries = runs[name]
        merged = dict(entries[-1])
        for key, value in entries[-1].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                merged[key] = sum(e.get(key, value) for e in entries) / len(entries)
        benchmarks[name] = merged
    return benchmarks


def figure_value(read, benchmark):
    if benchmark is None or benchmark.get("error_occurred"):
        return None
    try:
        value = read(benchmark)
    except (KeyError, TypeError):
        return None
    return value if value is not None and math.isfinite(value) else None


def markdown_table(header, rows, text_columns=1):
    """A Markdown table padded to aligned columns, so it reads the same on a terminal as rendered on a page.
    The first `text_columns` columns are left-aligned, the numbers after them right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(str(cell).ljust(width) if index < text_columns else str(cell).rjust(width)
                                 for index, (cell, width) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join("-" * (width + 2) if index < text_columns else "-" * (width + 1) + ":"
                          for index, width in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def single_table(benchmarks):
    figures = [f for f in FIGURES if any(figure_value(f[1], b) is not None for b in benchmarks.values())]
    rows = []
    for name, benchmark in benchmarks.items():
        if benchmark.get("error_occurred"):
            rows.append([name] + ["error: " + benchmark.get("error_message", "")] + [""] * (len(figures) - 1))
            continue
        values = [figure_value(read, benchmark) for _, read, _ in figures]
        rows.append([name] + ["-" if v is None else show(v) for v, (_, _, show) in zip(values, figures)])
    return markdown_table(["benchmark"] + [f[0] for f in figures], rows, text_columns=1)


def comparison_table(first, second, labels):
    rows = []
    for name in sorted(set(first) | set(second)):
        errors = [(run.get(name) or {}).get("error_message", "failed") if (run.get(name) or {}).get("error_occurred")
                  else "-" for run in (first, second)]
        if errors != ["-", "-"]:  # a benchmark that failed must show, not silently drop out of the comparison
            rows.append([name, "error", *errors, "-"])
        for column, read, show in FIGURES:
            a, b = figure_value(read, first.get(name)), figure_value(read, second.get(name))
            if a is None and b is None:
                continue
            ratio = f"{b / a:.3f}" if a and b is not None else "-"
            rows.append([name, column, "-" if a is None else show(a), "-" if b is None else show(b), ratio])
    return markdown_table(["benchmark", "figure", labels[0], labels[1], f"{labels[1]}/{labels[0]}"], rows,
                          text_columns=2)


def draw_charts(runs, labels, out_dir):
    """One horizontal bar chart per rate, the runs' bars side by side; returns the files written."""
    import matplotlib
    matplotlib.use("Agg")  # headless: the charts are files
    import matplotlib.pyplot as plt

    written = []
    for key, axis_label in CHARTS:
        scale = 1e9 if key != "tokens_per_second" else 1.0
        names = [n for n in dict.fromkeys(n for run in runs for n in run)
                 if any(figure_value(counter(key, scale), run.get(n)) is not None for run in runs)]
        if not names:
            continue
        figure, axes = plt.subplots(figsize=(9, 1.2 + 0.32 * len(names) * len(runs)))
        height = 0.8 / len(runs)
        for index, (run, label) in enumerate(zip(runs, labels)):
            values = [figure_value(counter(key, scale), run.get(n)) or 0 for n in names]
            positions = [p + (index - (len(runs) - 1) / 2) * height for p in range(len(names))]
            bars = axes.barh(positions, values, height=height, label=label)
            axes.bar_label(bars, labels=[f"{v:,.3g}" for v in values], fontsize=7, padding=2)
        axes.set_yticks(range(len(names)), names, fontsize=8)
        axes.invert_yaxis()
        axes.set_xlabel(axis_label)
        axes.margins(x=0.15)
        if len(runs) > 1:
            axes.legend(fontsize=8)
        figure.tight_layout()
        path = out_dir / f"{key}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path.name)
    return written


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="JSON", help="one or two Google Benchmark JSON files (A [B])")
    parser.add_argument("--labels", help="names of the runs, comma-separated (default: the file names)")
    parser.add_argument("--out", type=Path, default=Path("runs") / "report", help="output folder (default: runs/report)")
    parser.add_argument("--no-charts", action="store_true", help="write the table only (no matplotlib needed)")
    parser.add_argument("--baseline", action="store_true",
                        help="regression gate: the first file is the baseline, the second the new run; exit 1 on a "
                             "slower or bigger benchmark")
    parser.add_argument("--threshold", type=float, default=5.0,
                        help="with --baseline: the slowdown in percent that fails the gate (default 5)")
    arguments = parser.parse_args(argv)
    if arguments.baseline:
        if len(arguments.files) != 2:
            parser.error(f"--baseline compares two files (OLD NEW), got {len(arguments.files)}")
        if arguments.threshold < 0:
            parser.error(f"--threshold {arguments.threshold:g}: expected a percentage >= 0")
        return run_gate(arguments, load_benchmarks, markdown_table)
    if not arguments.no_charts and importlib.util.find_spec("matplotlib") is None:
        parser.error(f"matplotlib is missing for {sys.executable}: apt-get install python3-matplotlib "
                     "(or pip install matplotlib), or pass --no-charts")
    if len(arguments.files) > 2:
        parser.error(f"{len(arguments.files)} files given: expected one, or two to compare")
    labels = arguments.labels.split(",") if arguments.labels else [Path(f).stem for f in arguments.files]
    if len(labels) != len(arguments.files):
        parser.error(f"--labels names {len(labels)} runs for {len(arguments.files)} files")
    if len(labels) == 2 and labels[0] == labels[1]:
        labels = [f"A ({labels[0]})", f"B ({labels[1]})"]
    runs = [load_benchmarks(path) for path in arguments.files]

    if len(runs) == 1:
        table = single_table(runs[0])
        title = f"# Benchmarks: {labels[0]}"
    else:
        table = comparison_table(runs[0], runs[1], labels)
        title = f"# Benchmarks: {labels[1]} against {labels[0]}"
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "benchmarks.md").write_text(f"{title}\n\n{table}\n")
    print(table)
    written = ["benchmarks.md"]
    if not arguments.no_charts:
        written += draw_charts(runs, labels, arguments.out)
    print(f"written to {arguments.out}/: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
