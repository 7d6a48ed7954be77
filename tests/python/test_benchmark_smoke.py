"""ladder_bench runs, writes Google Benchmark JSON, and its counters agree with figures worked out here.

Runs the small stage-01 step and one kernel briefly (the GPT-2 124M benchmarks are left out: seconds per step), and
one paired benchmark (stage 02's steps in turn with stage 01's) on the small model.
Run from ctest (which sets LADDER_BENCH_BINARY) or by hand: cd tests/python && python3 -m unittest -v test_benchmark_smoke
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("LADDER_BUILD_DIR", REPOSITORY / "build"))
BENCH = Path(os.environ.get("LADDER_BENCH_BINARY", BUILD / "bench" / "ladder_bench"))
STAGE = "stage01/small"
KERNEL = "kernel/matmul_forward/f32/small_qkv_640x128x384"
# The small model at a vocabulary of 16 (tests/stage01_memory_test.cpp): 2·16·128 + 64·128 + 4·(12·128² + 13·128) + 2·128.
SMALL_PARAMETERS = 2 * 16 * 128 + 64 * 128 + 4 * (12 * 128 * 128 + 13 * 128) + 2 * 128
TOKENS_PER_STEP = 64 * 10


def run_benchmarks(directory, name_regex, *flags):
    """Runs ladder_bench on the benchmarks whose names match, writing JSON into directory. Returns the process,
    the JSON's path and the results by name (without the "/real_time" every name ends in)."""
    if not BENCH.is_file():
        raise AssertionError(f"{BENCH} is not built (set LADDER_BENCH_BINARY or build ladder_bench)")
    json_path = Path(directory) / "bench.json"
    process = subprocess.run([str(BENCH), f"--benchmark_filter={name_regex}", *flags, f"--benchmark_out={json_path}",
                              "--benchmark_out_format=json"], capture_output=True, text=True, timeout=240)
    document = json.loads(json_path.read_text()) if json_path.exists() else {"benchmarks": []}
    return process, json_path, {entry["name"].rsplit("/real_time", 1)[0]: entry for entry in document["benchmarks"]}


def report_row(test, json_path, name):
    """scripts/report.py's Markdown row of benchmark `name`, read from what it wrote for json_path."""
    out = json_path.parent / "report"
    process = subprocess.run([sys.executable, str(REPOSITORY / "scripts" / "report.py"), str(json_path),
                              "--out", str(out)], capture_output=True, text=True, timeout=120)
    test.assertEqual(process.returncode, 0, process.stderr)
    return next(line for line in (out / "benchmarks.md").read_text().splitlines() if line.startswith(f"| {name} "))


class BenchmarkSmoke(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.TemporaryDirectory()
        cls.process, cls.json_path, cls.results = run_benchmarks(cls.directory.name, f"^({STAGE}|{KERNEL})/",
                                                                 "--benchmark_min_time=0.01")

    @classmethod
    def tearDownClass(cls):
        cls.directory.cleanup()

    def test_runs_exactly_the_filtered_benchmarks(self):
        self.assertEqual(self.process.returncode, 0, self.process.stdout + self.process.stderr)
        self.assertEqual(sorted(self.results), sorted([STAGE, KERNEL]))

    def test_stage_step_counters(self):
        step = self.results[STAGE]
        self.assertEqual(step["parameters"], SMALL_PARAMETERS)
        # Stage 01's formula, from the accountant's peaks: fp32 weights, fp32 gradients, two fp32 moments.
        self.assertEqual(step["peak_bytes_parameters"], 4 * SMALL_PARAMETERS)
        self.assertEqual(step["peak_bytes_gradients"], 4 * SMALL_PARAMETERS)
        self.assertEqual(step["peak_bytes_optimizer_state"], 8 * SMALL_PARAMETERS)
        self.assertNotIn("peak_bytes_master_weights", step)  # stage 01 has none
        self.assertEqual(step["bytes_per_parameter_optimizer_state"], 8)
        self.assertEqual(step["state_bytes_per_parameter"], 16)
        self.assertGreater(step["peak_bytes_activations"], 0)
        self.assertAlmostEqual(step["bytes_per_parameter"], step["peak_bytes"] / SMALL_PARAMETERS)
        # tokens/s is tokens over Google Benchmark's wall time; seconds per step is the harness's own clock.
        seconds_per_step = step["real_time"] * 1e-3  # time_unit ms
        self.assertEqual(step["time_unit"], "ms")
        self.assertAlmostEqual(step["tokens_per_second"], TOKENS_PER_STEP / seconds_per_step,
                               delta=1e-6 * step["tokens_per_second"])
        self.assertGreater(step["step_seconds"], 0)
        self.assertLessEqual(step["step_seconds"], seconds_per_step * 1.000001)
        self.assertGreater(step["step_seconds"], 0.5 * seconds_per_step)

    def test_kernel_counter_is_the_matmul_flop_rate(self):
        kernel = self.results[KERNEL]
        self.assertEqual(kernel["time_unit"], "us")
        flops = 2 * 640 * 128 * 384  # N·C·OC multiply-adds
        self.assertAlmostEqual(kernel["flops_per_second"], flops / (kernel["real_time"] * 1e-6),
                               delta=1e-6 * kernel["flops_per_second"])

    def test_the_gpt2_shape_is_registered_but_not_run_by_the_smoke_filter(self):
        listed = subprocess.run([str(BENCH), "--benchmark_list_tests"], capture_output=True, text=True, timeout=60)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("stage01/gpt2-124m/real_time", listed.stdout.splitlines())
        self.assertNotIn("stage01/gpt2-124m", self.results)

    def test_every_single_process_stage_has_its_step_benchmark(self):
        """01-05 and 10 run in one process, so ladder_bench times them; 06-09 are scripts/sharded_bench.py's."""
        listed = subprocess.run([str(BENCH), "--benchmark_list_tests"], capture_output=True, text=True, timeout=60)
        built = {path.name[:2] for path in BUILD.glob("[0-9][0-9]_*") if (path / path.name).is_file()}
        for number in sorted(built - {"06", "07", "08", "09"}):
            self.assertIn(f"stage{number}/small/real_time", listed.stdout.splitlines(), number)
            if number != "01":  # the baseline itself has no pair
                for workload in ("small/iterations:40", "gpt2-124m/iterations:8"):
                    self.assertIn(f"paired/stage{number}/{workload}/real_time", listed.stdout.splitlines(), number)

    def test_report_reads_the_output(self):
        row = report_row(self, self.json_path, STAGE)
        self.assertIn(f"{self.results[STAGE]['tokens_per_second']:,.0f}", row)
        self.assertIn(" 16.00 ", row)


class PairedBenchmarkSmoke(unittest.TestCase):
    """paired/stage02/small: stage 02's steps and stage 01's in turn, 40 pairs, in one process."""

    NAME = "paired/stage02/small/iterations:40"

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.TemporaryDirectory()
        cls.process, cls.json_path, cls.results = run_benchmarks(cls.directory.name, f"^{cls.NAME}/")

    @classmethod
    def tearDownClass(cls):
        cls.directory.cleanup()

    def test_runs_forty_pairs_without_an_error(self):
        self.assertEqual(self.process.returncode, 0, self.process.stderr)
        pair = self.results[self.NAME]
        self.assertNotIn("error_message", pair)
        self.assertEqual(pair["iterations"], 40)
        self.assertIn("against stage01", pair["label"])

    def test_the_two_steps_make_up_each_timed_pair(self):
        pair = self.results[self.NAME]
        seconds_per_pair = pair["real_time"] * 1e-3  # time_unit ms
        both_steps = pair["step_seconds"] + pair["baseline_step_seconds"]
        self.assertLessEqual(both_steps, seconds_per_pair * 1.000001)
        self.assertGreater(both_steps, 0.5 * seconds_per_pair)

    def test_the_ratios_are_ordered_and_hold_the_ratio_of_the_means(self):
        pair = self.results[self.NAME]
        self.assertLessEqual(pair["time_ratio_lowest"], pair["time_ratio"])
        self.assertLessEqual(pair["time_ratio"], pair["time_ratio_highest"])
        # Σ stage / Σ baseline is an average of the pairs' ratios (weighted by the baseline's times), so it
        # cannot lie outside them.
        of_means = pair["step_seconds"] / pair["baseline_step_seconds"]
        self.assertGreaterEqual(of_means, pair["time_ratio_lowest"] * (1 - 1e-9))
        self.assertLessEqual(of_means, pair["time_ratio_highest"] * (1 + 1e-9))

    def test_report_shows_the_ratio(self):
        row = report_row(self, self.json_path, self.NAME)
        self.assertIn(f" {self.results[self.NAME]['time_ratio']:.3f} |", row)


if __name__ == "__main__":
    unittest.main()
