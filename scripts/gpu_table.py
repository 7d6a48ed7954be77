#!/usr/bin/env python3
"""ladder's GPU benchmark beside PyTorch's, as one Markdown table (printed and written to OUTDIR/gpu_table.md).

Reads what scripts/gpu_check.sh leaves in OUTDIR: ladder_gpu*.json (ladder_bench's "<stage>/gpt2-124m-cuda"
rows, Google Benchmark JSON), pytorch_<mode>.json (bench/pytorch_reference.py) and steps.tsv (each step of
the check and how it ended). Each PyTorch mode is set beside the stages with the same recipe: fp32 beside
stage 01; amp-fp16 (fp16 compute, fp32 weights, loss scaling) beside stages 02-04; amp-bf16 beside stage 05.
A run that is missing or failed shows as such instead of dropping out.

  python3 scripts/gpu_table.py OUTDIR
"""
import argparse
import glob
import json
import math
import os
import sys

# (PyTorch's mode, the ladder stages measured against it, what the stage is).
PAIRS = [
    ("fp32", [("stage01", "fp32")]),
    ("amp-fp16", [("stage02", "fp16 everything"), ("stage03", "fp16 + fp32 master weights"),
                  ("stage04", "fp16 + master weights + loss scale")]),
    ("amp-bf16", [("stage05", "bf16 + fp32 master weights")]),
]
GPU_BENCHMARK = "gpt2-124m-cuda"
GIB = 1024 ** 3
TIME_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def read_json(path):
    """The document, or an error string: a half-written file must show as a failure, not stop the table."""
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        return f"unreadable {os.path.basename(path)}: {error}"


def ladder_results(out_dir):
    """{stage: figures or error string} from every ladder_gpu*.json, and the notes on unreadable files."""
    results, notes = {}, []
    for path in sorted(glob.glob(os.path.join(out_dir, "ladder_gpu*.json"))):
        document = read_json(path)
        if isinstance(document, str) or not isinstance(document.get("benchmarks"), list):
            notes.append(document if isinstance(document, str) else f"{path}: no 'benchmarks' list")
            continue
        runs = {}
        for entry in document["benchmarks"]:
            name = entry.get("run_name", entry.get("name", ""))
            stage, _, rest = name.partition("/")
            if rest.split("/")[0] != GPU_BENCHMARK or entry.get("run_type") == "aggregate":
                continue
            runs.setdefault(stage, []).append(entry)
        for stage, entries in runs.items():
            results[stage] = ladder_figures(entries)
    return results, notes


def ladder_figures(entries):
    """Figures of one benchmark, the mean over repetitions; an error string if any repetition failed."""
    for entry in entries:
        # Google Benchmark 1.7 writes error_occurred; 1.8 may write skipped with a skip_message.
        if entry.get("error_occurred") or entry.get("skipped"):
            return "error: " + str(entry.get("error_message") or entry.get("skip_message") or "failed")

    def mean(read):
        values = [read(entry) for entry in entries]
        return None if any(v is None for v in values) else sum(values) / len(values)

    return {
        "tokens_per_second": mean(lambda e: e.get("tokens_per_second")),
        "step_ms": mean(lambda e: e["real_time"] * TIME_UNIT_MS[e.get("time_unit", "ns")]),
        "peak_bytes": mean(lambda e: e.get("peak_bytes")),
        "tflops_per_second": mean(lambda e: e.get("tflops_per_second")),
        "fp32_peak_fraction": mean(lambda e: e.get("fp32_peak_fraction")),
    }


def pytorch_results(out_dir):
    """{mode: record or error string} from pytorch_<mode>.json, and a line naming the device and torch."""
    results, about = {}, None
    for mode, _ in PAIRS:
        path = os.path.join(out_dir, f"pytorch_{mode}.json")
        if not os.path.exists(path):
            continue
        document = read_json(path)
        results[mode] = "error: " + document if isinstance(document, str) else document
        if isinstance(document, dict) and about is None:
            about = (f"PyTorch {document.get('torch_version')} on {document.get('device_name')}, "
                     f"{document.get('model')} at batch {document.get('batch')}x{document.get('seq_len')}")
    return results, about


def show(value, form):
    return "-" if value is None or not math.isfinite(value) else form.format(value)


def figure_cells(figures):
    """tokens/s, step ms, peak GiB, TFLOP/s, % of fp32 peak."""
    if figures is None:
        return ["not run"] + [""] * 4
    if isinstance(figures, str):
        return [figures] + [""] * 4
    peak = figures.get("peak_bytes")
    fraction = figures.get("fp32_peak_fraction")
    return [show(figures.get("tokens_per_second"), "{:,.0f}"), show(figures.get("step_ms"), "{:.1f}"),
            show(None if peak is None else peak / GIB, "{:.2f}"), show(figures.get("tflops_per_second"), "{:.3g}"),
            show(None if fraction is None else 100 * fraction, "{:.1f}%")]


def ratio(ours, theirs, key):
    if not isinstance(ours, dict) or not isinstance(theirs, dict):
        return "-"
    a, b = ours.get(key), theirs.get(key)
    return f"{a / b:.2f}" if a is not None and b else "-"


def comparison_rows(ladder, pytorch):
    rows = []
    for mode, stages in PAIRS:
        reference = pytorch.get(mode)
        rows.append([mode, f"PyTorch {mode}"] + figure_cells(reference) + ["1.00" if isinstance(reference, dict)
                                                                            else "-", "-"])
        for stage, recipe in stages:
            ours = ladder.get(stage)
            rows.append([mode, f"ladder {stage} ({recipe})"] + figure_cells(ours)
                        + [ratio(ours, reference, "tokens_per_second"), ratio(ours, reference, "peak_bytes")])
    return rows


def markdown_table(header, rows):
    """A Markdown table with padded columns, so that it reads the same on a terminal as rendered."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|", *map(line, rows)])


def steps_table(out_dir):
    """The steps of scripts/gpu_check.sh (steps.tsv: step, result, seconds, log), or None if absent."""
    path = os.path.join(out_dir, "steps.tsv")
    if not os.path.exists(path):
        return None
    with open(path) as file:
        rows = [line.rstrip("\n").split("\t") for line in file if line.strip()]
    return markdown_table(["step", "result", "seconds", "log"], [(row + [""] * 4)[:4] for row in rows])


def render(out_dir):
    ladder, notes = ladder_results(out_dir)
    pytorch, about = pytorch_results(out_dir)
    header = ["mode", "run", "tokens/s", "step ms", "peak GiB", "TFLOP/s", "% fp32 peak", "tokens/s vs PyTorch",
              "peak vs PyTorch"]
    parts = ["## ladder vs PyTorch: one GPT training step on the GPU", ""]
    if about:
        parts += [about + ".", ""]
    parts += [markdown_table(header, comparison_rows(ladder, pytorch)), "",
              "TFLOP/s: model FLOPs (6·N·tokens + 12·L·C·T·tokens, N without the embedding tables) per second. "
              "% fp32 peak: of H100 SXM's 67 TFLOP/s without tensor cores; the fp16/bf16 rows run on tensor cores, "
              "whose peak is far higher. Peak: the most memory held at once over the whole run, weights and "
              "optimizer state included (ladder's accountant; torch.cuda.max_memory_allocated)."]
    parts += [f"Note: {note}" for note in notes]
    steps = steps_table(out_dir)
    if steps:
        parts += ["", "### Steps of the check", "", steps]
    return "\n".join(parts) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", metavar="OUTDIR", help="the folder scripts/gpu_check.sh wrote")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.out_dir):
        raise SystemExit(f"gpu_table.py: {args.out_dir} is not a folder")
    text = render(args.out_dir)
    print(text, end="")
    with open(os.path.join(args.out_dir, "gpu_table.md"), "w") as file:
        file.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
