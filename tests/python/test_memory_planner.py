"""The memory planner (scripts/plan_memory.py, --device meta) against real runs and against the ZeRO paper.

Run from ctest (which sets LADDER_BUILD_DIR) or by hand: cd tests/python && python3 -m unittest -v test_memory_planner
Two independent answers: the accountant of a real run of the same stage (under mpiexec at N ranks), category by
category, exactly; and the ZeRO paper's figures for a 7.5B-parameter model on 64 GPUs (Rajbhandari et al. 2020,
figure 1, as the lecture quotes them): 120 GB, 31.4 GB, 16.6 GB and 1.9 GB of model state per GPU.
"""
import importlib.util
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
sys.path.insert(0, str(REPOSITORY / "scripts"))  # plan_memory.py imports its neighbours
specification = importlib.util.spec_from_file_location("plan_memory", REPOSITORY / "scripts" / "plan_memory.py")
plan_memory = importlib.util.module_from_spec(specification)
specification.loader.exec_module(plan_memory)

# The shape of the runs compared (the planner adds one step, no evaluation during training and no samples).
SHAPE = ["--eval-problems", "0", "--eval-batches", "1", "--batch-size", "4", "--data", "addition"]
# One step, no evaluation problems, no samples: the memory of training, as quick as it gets.
RUN = ["--steps", "1", "--samples", "0", "--eval-every", "0"] + SHAPE
# The accountant's categories the planner must match exactly: all but the ops' scratch (workspace), which depends
# on the kernels that run, and no kernel runs on the meta device.
PLANNED = [c for c in plan_memory.CATEGORIES if c != "workspace"]


def built(stage):
    return os.access(BUILD / stage / stage, os.X_OK)


def real_peaks(stage, ranks, model):
    """The peak bytes per category of a real run's accountant (rank 0's memory record)."""
    with tempfile.TemporaryDirectory() as folder:
        metrics = os.path.join(folder, "run.jsonl")
        command = [str(BUILD / stage / stage), "--model", model, "--metrics", metrics] + RUN
        if ranks > 1:
            command = [shutil.which("mpiexec") or "mpiexec", "-n", str(ranks)] + command
        environment = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                           OMPI_MCA_rmaps_base_oversubscribe="1", CUDA_VISIBLE_DEVICES="")
        result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=240)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
        with open(metrics) as lines:
            memory = next(r for r in map(json.loads, lines) if r["type"] == "memory")
    return {c: memory["categories"][c]["peak"] for c in plan_memory.CATEGORIES}


class PlannerMatchesRealRuns(unittest.TestCase):
    """Every built stage 01-09, tiny and small, at 1, 2 and 4 ranks for 06-09: about a minute on two cores."""

    def test_every_category_but_workspace_equals_the_real_run(self):
        checked = 0
        for model in ("tiny", "small"):
            for stage in plan_memory.SINGLE + plan_memory.PARALLEL:
                if not built(stage):
                    continue
                for ranks in ((1, 2, 4) if stage in plan_memory.PARALLEL else (1,)):
                    with self.subTest(model=model, stage=stage, ranks=ranks):
                        planned = plan_memory.plan(str(BUILD), stage, ranks, ["--model", model] + SHAPE)["peak_bytes"]
                        real = real_peaks(stage, ranks, model)
                        for category in PLANNED:
                            self.assertEqual(planned[category], real[category], category)
                        checked += 1
        self.assertGreaterEqual(checked, 2 * (5 + 4 * 3) if all(map(built, plan_memory.FORMULAS)) else 1)


class PlannerReproducesTheZeroPaper(unittest.TestCase):
    """A GPT of 7.5 billion parameters (L=35, C=4096, H=32, vocabulary 54,600 padded to 54,656) on 64 ranks."""

    SHAPE = ["--model", "gpt2-124m", "--layers", "35", "--heads", "32", "--channels", "4096", "--context", "1024",
             "--data", "random:54600", "--batch-size", "1", "--seq-len", "128"]
    PAPER_GB = {"06_ddp": 120.0, "07_zero1": 31.4, "08_zero2": 16.6, "09_fsdp": 1.9}

    def test_model_state_per_gpu_is_the_papers_within_padding(self):
        for stage, paper in self.PAPER_GB.items():
            if not built(stage):
                self.skipTest(f"{stage} is not built")
            with self.subTest(stage=stage):
                row = plan_memory.plan(str(BUILD), stage, 64, self.SHAPE)
                parameters = row["parameters"]
                self.assertAlmostEqual(parameters / 1e9, 7.5, delta=0.01)
                state = sum(row["peak_bytes"][c] for c in plan_memory.STATE)
                formula = plan_memory.FORMULAS[stage](64) * parameters
                # Each unit is padded to a multiple of 16 x 64 elements: 14 units add at most 14 x 1024 zeros,
                # each holding at most 16 bytes of state.
                self.assertLessEqual(abs(state - formula), 16 * 14 * 1024, f"{state:,} against {formula:,.0f}")
                self.assertEqual(round(state / 1e9, 1), paper, f"{state / 1e9:.3f} GB")


if __name__ == "__main__":
    unittest.main()
