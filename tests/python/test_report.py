"""scripts/report.py on hand-written Google Benchmark JSON whose table cells and ratios are worked out here.

Run: cd tests/python && python3 -m unittest -v test_report
"""
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "scripts" / "report.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def stage_entry(name, tokens_per_second, step_seconds, **extra):
    entry = {"name": f"{name}/real_time", "run_name": f"{name}/real_time", "run_type": "iteration",
             "repetitions": 1, "iterations": 3, "real_time": step_seconds * 1e3, "cpu_time": 1.0, "time_unit": "ms",
             "tokens_per_second": tokens_per_second, "step_seconds": step_seconds,
             "state_bytes_per_parameter": 16.0, "bytes_per_parameter": 52.02, "parameters": 805632.0}
    entry.update(extra)
    return entry


def kernel_entry(name, microseconds, flops_per_second):
    return {"name": f"{name}/real_time", "run_name": f"{name}/real_time", "run_type": "iteration",
            "repetitions": 1, "iterations": 100, "real_time": microseconds, "cpu_time": microseconds,
            "time_unit": "us", "flops_per_second": flops_per_second}


def benchmark_file(directory, name, benchmarks):
    path = Path(directory) / name
    path.write_text(json.dumps({"context": {"host_name": "test"}, "benchmarks": benchmarks}))
    return path


def table_rows(markdown):
    """Rows of the Markdown table as lists of stripped cells (header and rule excluded)."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def run_report(*arguments):
    return subprocess.run([sys.executable, str(REPORT), *map(str, arguments)], capture_output=True, text=True,
                          timeout=120)


class ReportTest(unittest.TestCase):

    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.out = Path(self.directory.name) / "out"
        repeated = [stage_entry("stage01/gpt2-124m", 20.0, 3.0, repetition_index=0, repetitions=2),
                    stage_entry("stage01/gpt2-124m", 30.0, 2.0, repetition_index=1, repetitions=2)]
        self.first = benchmark_file(self.directory.name, "before.json", [
            stage_entry("stage01/small", 6400.0, 0.1),
            kernel_entry("kernel/matmul_forward/f32/small", 2000.0, 2.5e10),
        ] + repeated)
        self.second = benchmark_file(self.directory.name, "after.json", [
            stage_entry("stage01/small", 16000.0, 0.04),
            kernel_entry("kernel/matmul_forward/f32/small", 1000.0, 5.0e10),
            {"name": "stage02/small/real_time", "run_type": "iteration", "error_occurred": True,
             "error_message": "out of memory", "real_time": 0, "time_unit": "ms"},
        ])

    def test_one_file_gives_one_row_per_benchmark(self):
        process = run_report(self.first, "--out", self.out)
        self.assertEqual(process.returncode, 0, process.stderr)
        written = (self.out / "benchmarks.md").read_text()
        rows = {row[0]: row for row in table_rows(written)}
        self.assertEqual(list(rows), ["kernel/matmul_forward/f32/small", "stage01/gpt2-124m", "stage01/small"])
        header = [cell.strip() for cell in written.splitlines()[2].strip("|").split("|")]
        self.assertEqual(header, ["benchmark", "tokens/s", "time/iteration", "state B/param", "peak B/param",
                                  "GFLOP/s"])
        self.assertEqual(rows["stage01/small"], ["stage01/small", "6,400", "100.000 ms", "16.00", "52.02", "-"])
        self.assertEqual(rows["kernel/matmul_forward/f32/small"],
                         ["kernel/matmul_forward/f32/small", "-", "2.000 ms", "-", "-", "25.00"])
        # Two repetitions are averaged: (20 + 30) / 2 tokens/s and (3 + 2) / 2 seconds.
        self.assertEqual(rows["stage01/gpt2-124m"][1:3], ["25", "2.500 s"])
        self.assertIn(rows["stage01/small"][1], process.stdout)
        for chart in ("tokens_per_second.png", "flops_per_second.png"):
            self.assertEqual((self.out / chart).read_bytes()[:8], PNG_SIGNATURE, chart)
        self.assertFalse((self.out / "bytes_per_second.png").exists())  # no benchmark has that counter

    def test_two_files_give_both_values_and_the_ratio(self):
        process = run_report(self.first, self.second, "--labels", "cpu,gpu", "--out", self.out)
        self.assertEqual(process.returncode, 0, process.stderr)
        rows = {(row[0], row[1]): row[2:] for row in table_rows((self.out / "benchmarks.md").read_text())}
        self.assertEqual(rows[("stage01/small", "tokens/s")], ["6,400", "16,000", "2.500"])
        self.assertEqual(rows[("stage01/small", "time/iteration")], ["100.000 ms", "40.000 ms", "0.400"])
        self.assertEqual(rows[("stage01/small", "state B/param")], ["16.00", "16.00", "1.000"])
        self.assertEqual(rows[("kernel/matmul_forward/f32/small", "GFLOP/s")], ["25.00", "50.00", "2.000"])
        # Only in the first file: no ratio. Failed in the second: its error, and no figures.
        self.assertEqual(rows[("stage01/gpt2-124m", "tokens/s")], ["25", "-", "-"])
        self.assertEqual([figure for name, figure in rows if name == "stage02/small"], ["error"])
        self.assertEqual(rows[("stage02/small", "error")], ["-", "out of memory", "-"])
        self.assertIn("| benchmark", process.stdout)
        self.assertIn("gpu/cpu", process.stdout)

    def test_the_mean_aggregate_is_preferred_to_the_repetitions(self):
        entries = [stage_entry("stage01/small", 100.0, 1.0), stage_entry("stage01/small", 300.0, 1.0),
                   dict(stage_entry("stage01/small", 250.0, 1.0), run_type="aggregate", aggregate_name="mean",
                        name="stage01/small/real_time_mean"),
                   dict(stage_entry("stage01/small", 1.0, 1.0), run_type="aggregate", aggregate_name="stddev",
                        name="stage01/small/real_time_stddev")]
        path = benchmark_file(self.directory.name, "repeated.json", entries)
        process = run_report(path, "--out", self.out, "--no-charts")
        self.assertEqual(process.returncode, 0, process.stderr)
        row = table_rows((self.out / "benchmarks.md").read_text())
        self.assertEqual(row[0][:2], ["stage01/small", "250"])

    def test_a_failed_benchmark_shows_its_error(self):
        process = run_report(self.second, "--out", self.out, "--no-charts")
        self.assertEqual(process.returncode, 0, process.stderr)
        self.assertIn("error: out of memory", (self.out / "benchmarks.md").read_text())

    def test_a_file_that_is_not_benchmark_json_is_refused(self):
        wrong = Path(self.directory.name) / "wrong.json"
        wrong.write_text(json.dumps({"stages": []}))
        process = run_report(wrong, "--out", self.out)
        self.assertNotEqual(process.returncode, 0)
        self.assertIn("not Google Benchmark JSON", process.stderr)
        self.assertFalse((self.out / "benchmarks.md").exists())


class RegressionGateTest(unittest.TestCase):
    """--baseline OLD NEW: exit 1 naming the benchmark that got slower past the threshold or bigger by a byte."""

    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.out = Path(self.directory.name) / "out"

    def run_pair(self, old, new, *flags):
        first = benchmark_file(self.directory.name, "old.json", old)
        second = benchmark_file(self.directory.name, "new.json", new)
        return run_report("--baseline", first, second, "--out", self.out, *flags)

    def entries(self, step_seconds, parameters_bytes=1000, noise=0.0):
        """Two repetitions around `step_seconds` (+-noise), and their mean and stddev aggregates."""
        runs = [stage_entry("stage07/small", 100.0, step_seconds * (1 + sign * noise), repetition_index=index,
                            repetitions=2, peak_bytes_parameters=parameters_bytes, peak_bytes=5000)
                for index, sign in enumerate((-1, 1))]
        mean = dict(stage_entry("stage07/small", 100.0, step_seconds, peak_bytes_parameters=parameters_bytes,
                                peak_bytes=5000), run_type="aggregate", aggregate_name="mean")
        stddev = dict(stage_entry("stage07/small", 0.0, step_seconds * noise * 2 ** 0.5), run_type="aggregate",
                      aggregate_name="stddev")
        return runs + [mean, stddev]

    def test_identical_runs_pass(self):
        process = self.run_pair(self.entries(0.1), self.entries(0.1))
        self.assertEqual(process.returncode, 0, process.stdout + process.stderr)
        self.assertIn("passed", process.stdout)
        self.assertTrue((self.out / "regressions.md").exists())

    def test_a_slower_run_fails_naming_the_benchmark_and_shows_the_noise(self):
        process = self.run_pair(self.entries(0.100, noise=0.01), self.entries(0.106, noise=0.02))
        self.assertEqual(process.returncode, 1, process.stdout)
        self.assertIn("stage07/small: 6.0% slower (threshold 5%", process.stderr)
        row = next(r for r in table_rows(process.stdout) if r[:2] == ["stage07/small", "time"])
        self.assertEqual(row[2:], ["100.000 ms", "106.000 ms", "1.060", "1.4%/2.8%", "FAIL"])
        # The same slowdown under a looser threshold passes.
        self.assertEqual(self.run_pair(self.entries(0.100), self.entries(0.106), "--threshold", "10").returncode, 0)

    def test_one_more_byte_in_any_category_fails(self):
        process = self.run_pair(self.entries(0.1, parameters_bytes=1000), self.entries(0.1, parameters_bytes=1001))
        self.assertEqual(process.returncode, 1, process.stdout)
        self.assertIn("stage07/small: parameters grew by 1 bytes", process.stderr)
        # Less memory is no regression.
        self.assertEqual(self.run_pair(self.entries(0.1, 1000), self.entries(0.1, 999)).returncode, 0)

    def test_a_missing_or_failed_benchmark_fails(self):
        failed = [{"name": "stage07/small/real_time", "run_type": "iteration", "error_occurred": True,
                   "error_message": "out of memory", "real_time": 0, "time_unit": "ms"}]
        self.assertEqual(self.run_pair(self.entries(0.1), failed).returncode, 1)
        process = self.run_pair(self.entries(0.1), [kernel_entry("kernel/other", 1.0, 1.0)])
        self.assertEqual(process.returncode, 1)
        self.assertIn("stage07/small: missing from the new run", process.stderr)

    def test_the_gate_needs_exactly_two_files(self):
        first = benchmark_file(self.directory.name, "one.json", self.entries(0.1))
        process = run_report("--baseline", first, "--out", self.out)
        self.assertNotEqual(process.returncode, 0)
        self.assertIn("two files", process.stderr)


if __name__ == "__main__":
    unittest.main()
