"""The main job's runner (scripts/ladder.py) on the tiny config: tables, JSON and charts, and failures reported.

Run from ctest (which sets LADDER_BUILD_DIR) or by hand: cd tests/python && python3 -m unittest -v test_ladder_runner
The memory figures are checked twice, against two independent answers: the memory table the stage printed at the
end of its own log, and stage 01's formula of 4 + 4 + 8 bytes per parameter.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("LADDER_BUILD_DIR", REPOSITORY / "build"))
RUNNER = REPOSITORY / "scripts" / "ladder.py"
TINY = ["--model", "tiny", "--steps", "5", "--eval-problems", "4", "--eval-batches", "1", "--samples", "0"]
STAGE01 = "01_fp32_baseline"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_runner(*arguments):
    return subprocess.run([sys.executable, str(RUNNER), *map(str, arguments)], capture_output=True, text=True,
                          timeout=240)


def built_stages(build_dir):
    """Listed here with os.scandir, not with the runner's glob: the runner must find exactly these."""
    names = []
    for entry in os.scandir(build_dir):
        executable = Path(entry.path) / entry.name
        if re.fullmatch(r"\d\d_\w+", entry.name) and executable.is_file() and os.access(executable, os.X_OK):
            names.append(entry.name)
    return sorted(names)


def bytes_as_printed(count):
    """The accountant's format_bytes (common/memory.cpp), written again: 999 B, 28.8 KiB, 2.16 MiB, 1.20 GiB."""
    if count < 1024:
        return f"{count} B"
    if count < 1024**2:
        return f"{count / 1024:.1f} KiB"
    if count < 1024**3:
        return f"{count / 1024**2:.2f} MiB"
    return f"{count / 1024**3:.2f} GiB"


def printed_memory_table(log_text):
    """{category: (current, peak, bytes/param)} as text, from the last 'memory (cpu)' table of a stage's log."""
    table = log_text[log_text.rindex("memory (cpu)"):]
    size = r"(\d+(?:\.\d+)? (?:B|KiB|MiB|GiB))"
    rows = re.findall(rf"^([a-z][a-z ]*?)\s+{size}\s+{size}\s+(\d+\.\d{{3}})$", table, re.MULTILINE)
    return {name: (current, peak, per_parameter) for name, current, peak, per_parameter in rows}


class RunnerOnTinyConfig(unittest.TestCase):
    """All built stages, five steps each: a few seconds."""

    @classmethod
    def setUpClass(cls):
        if not (BUILD / STAGE01 / STAGE01).is_file():
            raise AssertionError(f"{BUILD / STAGE01 / STAGE01} is not built (set LADDER_BUILD_DIR or build the stages)")
        cls.directory = tempfile.TemporaryDirectory()
        cls.out = Path(cls.directory.name)
        cls.process = run_runner("--build", BUILD, "--out", cls.out, *TINY)
        cls.stages = built_stages(BUILD)
        report = cls.out / "ladder.json"
        cls.report = json.loads(report.read_text()) if report.exists() else None

    @classmethod
    def tearDownClass(cls):
        cls.directory.cleanup()

    def result(self, stage):
        return next(r for r in self.report["stages"] if r["stage"] == stage)

    def test_runs_every_built_stage_and_succeeds(self):
        self.assertEqual(self.process.returncode, 0, self.process.stdout + self.process.stderr)
        self.assertEqual([r["stage"] for r in self.report["stages"]], self.stages)
        for result in self.report["stages"]:
            self.assertEqual(result["status"], "ok", result)
            log = (self.out / f"{result['stage']}.log").read_text()
            self.assertIn(f"{result['stage']} | step 5/5", log)  # the stage's own output, kept whole

    def test_table_shows_each_stage_with_its_final_figures(self):
        table = (self.out / "ladder.md").read_text()
        self.assertIn(table.strip().splitlines()[-1], self.process.stdout)  # printed as well as written
        for result in self.report["stages"]:
            records = [json.loads(line) for line in (self.out / f"{result['stage']}.jsonl").read_text().splitlines()]
            last_step = [r for r in records if r["type"] == "step"][-1]
            last_eval = [r for r in records if r["type"] == "eval"][-1]
            self.assertEqual(result["final_train_loss"], last_step["loss"])
            self.assertEqual(result["held_out_loss"], last_eval["loss"])
            self.assertEqual(result["accuracy"], last_eval["accuracy"])
            row = next(line for line in table.splitlines() if line.startswith(f"| {result['stage']} ") and " ok " in line)
            self.assertIn(f" {last_step['loss']:.4f} ", row)
            self.assertIn(f" {last_eval['loss']:.4f} ", row)
            self.assertIn(f" {100 * last_eval['accuracy']:.1f}% ", row)

    def test_charts_are_png_files(self):
        sending = any(r["stage"][:2] in ("06", "07", "08", "09") for r in self.report["stages"])
        for name in ("loss.png", "memory.png", "throughput.png") + (("communication.png",) if sending else ()):
            data = (self.out / name).read_bytes()
            self.assertEqual(data[:8], PNG_SIGNATURE, name)
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # IHDR
            self.assertGreater(width * height, 200 * 200, name)

    def test_memory_equals_the_stage_s_own_table(self):
        for result in self.report["stages"]:
            printed = printed_memory_table((self.out / f"{result['stage']}.log").read_text())
            # Every category of the accountant and the total: the runner's JSON holds each of them.
            self.assertEqual(len(printed), len(result["memory"]) + 1, printed)
            for category, usage in result["memory"].items():
                current, peak, per_parameter = printed[category]
                self.assertEqual(bytes_as_printed(usage["current"]), current, category)
                self.assertEqual(bytes_as_printed(usage["peak"]), peak, category)
                self.assertEqual(f"{result['bytes_per_parameter'][category]:.3f}", per_parameter, category)
            self.assertEqual(bytes_as_printed(result["peak_total"]), printed["total"][1])
            self.assertEqual(f"{result['bytes_per_parameter_total']:.3f}", printed["total"][2])

    def test_data_parallel_stages_ran_at_two_ranks_with_their_per_rank_figures(self):
        table = (self.out / "ladder.md").read_text()
        for result in self.report["stages"]:
            parallel = result["stage"][:2] in ("06", "07", "08", "09")
            self.assertEqual(result["ranks"], 2 if parallel else 1, result["stage"])
            records = [json.loads(line) for line in (self.out / f"{result['stage']}.jsonl").read_text().splitlines()]
            last_step = [r for r in records if r["type"] == "step"][-1]
            memory = next(r for r in records if r["type"] == "memory")
            # The per-rank columns are rank 0's own accountant and communicator, unchanged.
            state = sum(memory["categories"][c]["peak"] for c in ("parameters", "gradients", "master weights",
                                                                  "optimizer state"))
            self.assertAlmostEqual(result["state_bytes_per_parameter"], state / memory["parameter_count"])
            self.assertEqual(result["ring_bytes_per_step"], last_step.get("comm_ring_bytes", 0))
            for collective, sent in result["ring_bytes_by_collective"].items():
                self.assertEqual(sent, last_step.get(f"ring_bytes_{collective}", 0), collective)
            log = (self.out / f"{result['stage']}.log").read_text()
            # Every stage trains on the same global batch: 64 rows, split 32 + 32 over the two ranks of 06-09.
            self.assertIn("batch 64x10 tokens", log, result["stage"])
            if parallel:
                self.assertIn("over 2 ranks", log)
                self.assertIn("--batch-size 32", " ".join(result["command"]))
                self.assertGreater(result["ring_bytes_per_step"], 0)
            row = next(line for line in table.splitlines() if line.startswith(f"| {result['stage']} "))
            self.assertIn(f" {result['ranks']} ", row)
            self.assertIn(f" {result['state_bytes_per_parameter']:.2f} ", row)

    def test_lora_adapts_the_weights_stage05_wrote(self):
        if not {"05_bf16", "10_lora"} <= set(self.stages):
            self.skipTest("05_bf16 and 10_lora are not both built")
        log = (self.out / "10_lora.log").read_text()
        self.assertIn(f"base loaded from {self.out / '05_bf16.safetensors'}", log)
        self.assertNotIn("no --base given", log)

    def test_stage01_memory_is_4_4_8_bytes_per_parameter(self):
        records = [json.loads(line) for line in (self.out / f"{STAGE01}.jsonl").read_text().splitlines()]
        count = next(r for r in records if r["type"] == "memory")["parameter_count"]
        result = self.result(STAGE01)
        self.assertEqual(result["parameter_count"], count)
        peaks = {category: usage["peak"] for category, usage in result["memory"].items()}
        self.assertEqual(peaks["parameters"], 4 * count)
        self.assertEqual(peaks["gradients"], 4 * count)
        self.assertEqual(peaks["master weights"], 0)
        self.assertEqual(peaks["optimizer state"], 8 * count)
        self.assertEqual(result["state_bytes_per_parameter"], 16)
        # The first table is the training table: its row shows the count and the 16 bytes per parameter.
        row = next(line for line in (self.out / "ladder.md").read_text().splitlines()
                   if line.startswith(f"| {STAGE01} "))
        self.assertIn(f" {count:,} ", row)
        self.assertIn(" 16.00 ", row)


class RunnerReportsFailures(unittest.TestCase):

    def test_a_bad_flag_fails_the_stage_and_the_run(self):
        direct = subprocess.run([str(BUILD / STAGE01 / STAGE01), "--no-such-flag"], capture_output=True, text=True)
        self.assertNotEqual(direct.returncode, 0)
        with tempfile.TemporaryDirectory() as out:
            (Path(out) / "loss.png").write_bytes(PNG_SIGNATURE)  # an earlier run's chart
            process = run_runner("--build", BUILD, "--out", out, "--stages", "01", "--no-such-flag")
            self.assertNotEqual(process.returncode, 0)
            self.assertFalse((Path(out) / "loss.png").exists())  # nothing to draw, and no stale chart left
            result = json.loads((Path(out) / "ladder.json").read_text())["stages"][0]
            self.assertEqual(result["status"], "failed")
            self.assertEqual(result["exit_code"], direct.returncode)
            self.assertTrue(any("--no-such-flag" in line for line in result["log_tail"]), result["log_tail"])
            table = (Path(out) / "ladder.md").read_text()
            self.assertIn(f"| {STAGE01} ", table)
            self.assertIn(f"failed (exit code {direct.returncode})", table)
            self.assertIn("FAILED", process.stdout + process.stderr)

    def test_the_stages_after_a_failure_still_run(self):
        with tempfile.TemporaryDirectory() as build, tempfile.TemporaryDirectory() as out:
            broken = Path(build) / "00_broken"
            broken.mkdir()
            (broken / "00_broken").write_text("#!/bin/sh\necho 'broken: this stage always fails'\nexit 3\n")
            (broken / "00_broken").chmod(0o755)
            (Path(build) / STAGE01).mkdir()
            (Path(build) / STAGE01 / STAGE01).symlink_to(BUILD / STAGE01 / STAGE01)
            process = run_runner("--build", build, "--out", out, *TINY)
            self.assertEqual(process.returncode, 1, process.stdout + process.stderr)
            first, second = json.loads((Path(out) / "ladder.json").read_text())["stages"]
            self.assertEqual((first["stage"], first["status"], first["exit_code"]), ("00_broken", "failed", 3))
            self.assertIn("broken: this stage always fails", first["log_tail"])
            self.assertEqual((second["stage"], second["status"]), (STAGE01, "ok"))
            self.assertIn("broken: this stage always fails", (Path(out) / "ladder.md").read_text())
            self.assertEqual((Path(out) / "loss.png").read_bytes()[:8], PNG_SIGNATURE)

    def test_a_diverged_stage_shows_nan_and_still_gets_its_charts(self):
        # JSON has no NaN: a stage writes a non-finite loss as null (stage 02 in fp16 does, by design).
        records = [
            {"type": "step", "step": 1, "loss": 2.5, "tokens": 640, "step_seconds": 0.1},
            {"type": "step", "step": 2, "loss": None, "tokens": 640, "step_seconds": 0.1},
            {"type": "eval", "step": 2, "loss": None, "accuracy": 0.0},
            {"type": "summary", "steps": 2, "tokens_per_second": 6400.0, "train_seconds": 0.2},
            {"type": "memory", "parameter_count": 1000, "current_total": 8000, "peak_total": 8000,
             "categories": {"parameters": {"current": 2000, "peak": 2000}, "gradients": {"current": 2000, "peak": 2000},
                            "optimizer state": {"current": 4000, "peak": 4000}}},
        ]
        with tempfile.TemporaryDirectory() as build, tempfile.TemporaryDirectory() as out:
            stage = Path(build) / "02_diverged"
            stage.mkdir()
            lines = "\n".join(json.dumps(record) for record in records)
            (stage / "02_diverged").write_text(
                "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --metrics ] && metrics=$2; shift; done\n"
                f"cat > \"$metrics\" <<'EOF'\n{lines}\nEOF\n")
            (stage / "02_diverged").chmod(0o755)
            process = run_runner("--build", build, "--out", out)
            self.assertEqual(process.returncode, 0, process.stdout + process.stderr)
            result = json.loads((Path(out) / "ladder.json").read_text())["stages"][0]
            self.assertEqual((result["status"], result["final_train_loss"], result["held_out_loss"]), ("ok", None, None))
            self.assertEqual(result["state_bytes_per_parameter"], 8)
            row = next(line for line in (Path(out) / "ladder.md").read_text().splitlines()
                       if line.startswith("| 02_diverged "))
            self.assertEqual(row.count(" nan "), 2, row)
            for name in ("loss.png", "memory.png", "throughput.png"):
                self.assertEqual((Path(out) / name).read_bytes()[:8], PNG_SIGNATURE, name)

    def test_a_batch_that_does_not_split_over_the_ranks_is_refused_before_anything_runs(self):
        with tempfile.TemporaryDirectory() as out:
            process = run_runner("--build", BUILD, "--out", out, "--ranks", "2", "--batch-size", "5", *TINY)
            self.assertEqual(process.returncode, 2)
            self.assertIn("--batch-size 5 cannot be split evenly over --ranks 2", process.stderr)
            self.assertFalse((Path(out) / "ladder.json").exists())

    def test_an_unbuilt_stage_is_refused_before_anything_runs(self):
        with tempfile.TemporaryDirectory() as out:
            process = run_runner("--build", BUILD, "--out", out, "--stages", "01,99")
            self.assertEqual(process.returncode, 2)
            self.assertIn("99", process.stderr)
            self.assertFalse((Path(out) / "ladder.json").exists())


if __name__ == "__main__":
    unittest.main()
