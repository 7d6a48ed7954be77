"""The regression gate of report.py --baseline OLD NEW: every benchmark's time against the baseline's, with the
noise of each run's repetitions, and every memory category's peak; a benchmark fails when it got slower than the
threshold, grew in any category by a single byte, failed, or disappeared."""
import json
import math
import sys
from pathlib import Path

SECONDS_PER_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def step_seconds(benchmark):
    """Seconds per iteration: the harness's own step counter where there is one, else Google Benchmark's time."""
    if "step_seconds" in benchmark:
        return benchmark["step_seconds"]
    return benchmark["real_time"] * SECONDS_PER_UNIT[benchmark.get("time_unit", "ns")]


def display_name(name):
    """'stage01/small/real_time' -> 'stage01/small': the suffix says how it was timed, not what."""
    return name[: -len("/real_time")] if name.endswith("/real_time") else name


def load_noise(path):
    """Relative spread of each benchmark's time over its repetitions (stddev / mean), where it has repetitions:
    Google Benchmark's 'stddev' aggregate, else the spread of the repeated iteration runs."""
    document = json.loads(Path(path).read_text())
    runs, spreads = {}, {}
    for entry in document.get("benchmarks", []):
        name = display_name(entry.get("run_name", entry["name"]))
        if entry.get("run_type") == "aggregate":
            if entry.get("aggregate_name") in ("mean", "stddev"):
                spreads.setdefault(name, {})[entry["aggregate_name"]] = step_seconds(entry)
        elif not entry.get("error_occurred"):
            runs.setdefault(name, []).append(step_seconds(entry))
    noise = {}
    for name, times in runs.items():
        if name in spreads and {"mean", "stddev"} <= set(spreads[name]) and spreads[name]["mean"] > 0:
            noise[name] = spreads[name]["stddev"] / spreads[name]["mean"]
        elif len(times) > 1:
            mean = sum(times) / len(times)
            noise[name] = math.sqrt(sum((t - mean) ** 2 for t in times) / (len(times) - 1)) / mean
    return noise


def peak_bytes_counters(benchmark):
    """{category: peak bytes} of a benchmark (its peak_bytes_<category> counters and the total, peak_bytes)."""
    return {key[len("peak_bytes_"):] if key != "peak_bytes" else "total": value for key, value in benchmark.items()
            if (key.startswith("peak_bytes_") or key == "peak_bytes") and isinstance(value, (int, float))}


def regression_gate(old, new, old_noise, new_noise, threshold):
    """The gate's table rows and the list of failures (benchmark and why)."""
    rows, failures = [], []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if after is None:
            rows.append([name, "time", "present", "missing", "-", "-", "FAIL"])
            failures.append(f"{name}: missing from the new run")
            continue
        if before is None:
            rows.append([name, "time", "missing", "present", "-", "-", "new"])
            continue
        if after.get("error_occurred") or before.get("error_occurred"):
            verdict = "FAIL" if after.get("error_occurred") and not before.get("error_occurred") else "error"
            rows.append([name, "error", before.get("error_message", "-"), after.get("error_message", "-"), "-", "-",
                         verdict])
            if verdict == "FAIL":
                failures.append(f"{name}: failed ({after.get('error_message', 'error')})")
            continue
        a, b = step_seconds(before), step_seconds(after)
        noise = "/".join("-" if n is None else f"{100 * n:.1f}%" for n in (old_noise.get(name), new_noise.get(name)))
        slower = b > a * (1 + threshold / 100)
        rows.append([name, "time", f"{a * 1e3:.3f} ms", f"{b * 1e3:.3f} ms", f"{b / a:.3f}", noise,
                     "FAIL" if slower else "ok"])
        if slower:
            failures.append(f"{name}: {100 * (b / a - 1):.1f}% slower (threshold {threshold:g}%, noise {noise})")
        old_peaks, new_peaks = peak_bytes_counters(before), peak_bytes_counters(after)
        for category in sorted(set(old_peaks) | set(new_peaks)):
            x, y = old_peaks.get(category, 0), new_peaks.get(category, 0)
            grew = y > x
            rows.append([name, f"peak bytes: {category}", f"{x:,.0f}", f"{y:,.0f}", "-" if not x else f"{y / x:.3f}",
                         "-", "FAIL" if grew else "ok"])
            if grew:
                failures.append(f"{name}: {category} grew by {y - x:,.0f} bytes")
    return rows, failures


def run_gate(arguments, load_benchmarks, markdown_table):
    """Prints and writes the gate's table; returns the exit status (1 when anything regressed)."""
    old, new = (load_benchmarks(path) for path in arguments.files)
    rows, failures = regression_gate(old, new, load_noise(arguments.files[0]), load_noise(arguments.files[1]),
                                     arguments.threshold)
    table = markdown_table(["benchmark", "figure", "baseline", "new", "new/baseline", "noise (baseline/new)",
                            "verdict"], rows, text_columns=2)
    arguments.out.mkdir(parents=True, exist_ok=True)
    verdict = (f"FAILED: {len(failures)} regression(s)" if failures
               else f"passed: nothing slower than {arguments.threshold:g}% and no memory growth")
    (arguments.out / "regressions.md").write_text(f"# Regression gate: {arguments.files[1]} against "
                                                  f"{arguments.files[0]}\n\n{table}\n\n{verdict}\n")
    print(table)
    print(verdict)
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    return 1 if failures else 0
