"""scripts/sharded_bench.py on the tiny model at 1 and 2 ranks, and its Google Benchmark JSON through the
regression gate of scripts/report.py: the data-parallel stages' benchmark, one JSON per rank count.

Run from ctest (which sets LADDER_BUILD_DIR) or by hand: cd tests/python && python3 -m unittest -v test_sharded_bench
The memory figures are checked against the ZeRO formulas, worked out here from the parameter count.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("LADDER_BUILD_DIR", REPOSITORY / "build"))
SCRIPTS = REPOSITORY / "scripts"


@unittest.skipIf(shutil.which("mpiexec") is None, "mpiexec is not installed (apt-get install mpich)")
class ShardedBenchOnTinyConfig(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory()
        cls.out = Path(cls.folder.name)
        cls.process = subprocess.run(
            [sys.executable, str(SCRIPTS / "sharded_bench.py"), "--build", str(BUILD), "--out", str(cls.out),
             "--workloads", "tiny", "--ranks", "1,2", "--stages", "06_ddp,07_zero1,09_fsdp"],
            capture_output=True, text=True, timeout=280)

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def benchmarks(self, ranks):
        document = json.loads((self.out / f"benchmark_np{ranks}.json").read_text())
        by_name = {}
        for entry in document["benchmarks"]:
            by_name.setdefault(entry["name"], []).append(entry)
        return by_name

    def test_one_json_per_rank_count_with_every_stage(self):
        self.assertEqual(self.process.returncode, 0, self.process.stdout + self.process.stderr)
        for ranks in (1, 2):
            names = set(self.benchmarks(ranks))
            self.assertEqual(names, {"06_ddp/tiny", "07_zero1/tiny", "09_fsdp/tiny", "09_fsdp/no-prefetch/tiny"})
            for entries in self.benchmarks(ranks).values():
                self.assertEqual(len(entries), 3, "4 steps, the first not timed")
                self.assertTrue(all(entry["real_time"] > 0 for entry in entries))

    def test_every_rank_reports_its_peak_resident_memory(self):
        # Each rank's /usr/bin/time line must reach the table: taken from stderr, the last ranks' were often lost.
        self.assertEqual(self.process.returncode, 0, self.process.stdout + self.process.stderr)
        rows = json.loads((self.out / "sharded_bench.json").read_text())
        self.assertEqual(len(rows), 8)
        for row in rows:
            self.assertEqual(len(row["os_peak_rss_per_rank"]), row["ranks"], row["stage"])
            self.assertTrue(all(rss > 0 for rss in row["os_peak_rss_per_rank"]), row["stage"])

    def test_model_state_per_rank_is_the_zero_formula(self):
        self.assertEqual(self.process.returncode, 0, self.process.stdout + self.process.stderr)
        for ranks in (1, 2):
            benchmarks = self.benchmarks(ranks)
            # Every unit is padded to a multiple of 16·N elements; stage 06's bf16 weights count them, padding
            # included, and every stage pads alike.
            padded = benchmarks["06_ddp/tiny"][0]["peak_bytes_parameters"] // 2
            self.assertGreaterEqual(padded, benchmarks["06_ddp/tiny"][0]["parameters"])
            self.assertEqual(padded % (16 * ranks), 0)
            for name, (weights, gradients, master, moments) in {
                    "06_ddp/tiny": (2, 2, 4, 8),
                    "07_zero1/tiny": (2, 2, 4 / ranks, 8 / ranks),
                    "09_fsdp/tiny": (2 / ranks, 2 / ranks, 4 / ranks, 8 / ranks)}.items():
                entry = benchmarks[name][0]
                parameters = padded
                self.assertEqual(entry["peak_bytes_parameters"], weights * parameters, name)
                self.assertEqual(entry["peak_bytes_gradients"], gradients * parameters, name)
                self.assertEqual(entry["peak_bytes_master weights"], master * parameters, name)
                self.assertEqual(entry["peak_bytes_optimizer state"], moments * parameters, name)

    def test_the_regression_gate_passes_a_run_against_itself_and_fails_a_byte_more(self):
        self.assertEqual(self.process.returncode, 0, self.process.stdout + self.process.stderr)
        baseline = self.out / "benchmark_np2.json"
        same = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "--baseline", str(baseline),
                               str(baseline), "--threshold", "5", "--out", str(self.out / "gate_same")],
                              capture_output=True, text=True)
        self.assertEqual(same.returncode, 0, same.stdout + same.stderr)
        document = json.loads(baseline.read_text())
        for entry in document["benchmarks"]:
            if entry["name"] == "07_zero1/tiny":
                entry["peak_bytes_gradients"] += 1
        bigger = self.out / "bigger.json"
        bigger.write_text(json.dumps(document))
        gate = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "--baseline", str(baseline), str(bigger),
                               "--threshold", "5", "--out", str(self.out / "gate_bigger")],
                              capture_output=True, text=True)
        self.assertEqual(gate.returncode, 1, gate.stdout + gate.stderr)
        self.assertIn("07_zero1/tiny", gate.stderr)


if __name__ == "__main__":
    unittest.main()
