"""ladder_bench runs, writes Google Benchmark JSON, and its counters agree with figures worked out here.

Runs the small stage-01 step and one kernel briefly (the GPT-2 124M benchmarks are left out: seconds per step).
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


class BenchmarkSmoke(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not BENCH.is_file():
            raise AssertionError(f"{BENCH} is not built (set LADDER_BENCH_BINARY or build ladder_bench)")
        cls.directory = tempfile.TemporaryDirectory()
        cls.json_path = Path(cls.directory.name) / "bench.json"
        cls.process = subprocess.run(
            [str(BENCH), f"--benchmark_filter=^({STAGE}|{KERNEL})/", "--benchmark_min_time=0.01",
             f"--benchmark_out={cls.json_path}", "--benchmark_out_format=json"],
            capture_output=True, text=True, timeout=240)
        document = json.loads(cls.json_path.read_text()) if cls.json_path.exists() else {"benchmarks": []}
        # Names end in "/real_time" (the harness times wall clock); the filter and the tests use them without it.
        cls.results = {entry["name"].rsplit("/real_time", 1)[0]: entry for entry in document["benchmarks"]}

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

    def test_report_reads_the_output(self):
        out = Path(self.directory.name) / "report"
        process = subprocess.run([sys.executable, str(REPOSITORY / "scripts" / "report.py"), str(self.json_path),
                                  "--out", str(out)], capture_output=True, text=True, timeout=120)
        self.assertEqual(process.returncode, 0, process.stderr)
        row = next(line for line in (out / "benchmarks.md").read_text().splitlines() if line.startswith(f"| {STAGE} "))
        self.assertIn(f"{self.results[STAGE]['tokens_per_second']:,.0f}", row)
        self.assertIn(" 16.00 ", row)


if __name__ == "__main__":
    unittest.main()
