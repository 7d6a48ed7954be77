"""What the main job and the other scripts read from a stage's run: the accountant's categories, the JSONL metrics,
one stage's final figures, and how they are printed."""
import json

# The accountant's categories, in its order (common/memory.hpp); the first four are the model's state.
CATEGORIES = ["parameters", "gradients", "master weights", "optimizer state", "activations", "gathered weights",
              "gradient buckets", "comm buffers", "workspace"]
MODEL_STATE = CATEGORIES[:4]
# The collectives a step record names (ring_bytes_<name>), in the order the communication chart stacks them.
COLLECTIVES = ["all_reduce", "reduce_scatter", "all_gather"]

def read_metrics(path):
    """The JSONL records of a run; a torn last line (a crash mid-write) is skipped."""
    records = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return records


def as_number(value):
    """JSON writes NaN and infinity as null; a chart wants them as NaN."""
    return float("nan") if value is None else float(value)


def summarize(stage, records):
    """Final figures of one stage from its metrics, or the reason they are missing."""
    steps = [r for r in records if r.get("type") == "step"]
    evals = [r for r in records if r.get("type") == "eval"]
    summaries = [r for r in records if r.get("type") == "summary"]
    memories = [r for r in records if r.get("type") == "memory"]
    if not steps or not memories:
        return {"failure": "the metrics file has no " + ("step" if not steps else "memory") + " record"}
    memory = memories[-1]
    count = memory["parameter_count"]
    result = {
        "steps": steps[-1]["step"],
        "final_train_loss": steps[-1]["loss"],
        "held_out_loss": evals[-1]["loss"] if evals else None,  # every stage evaluates at its end
        "accuracy": evals[-1].get("accuracy") if evals else None,
        "tokens_per_second": summaries[-1]["tokens_per_second"] if summaries else None,
        "parameter_count": count,
        "memory": {name: memory["categories"][name] for name in CATEGORIES if name in memory["categories"]},
        "peak_total": memory["peak_total"],
        # Stages that skip steps (loss scaling) report a running count with every step.
        "skipped_steps": steps[-1].get("skipped_steps"),
        # What one rank sent in the last step, in all and by collective (0 for a stage that sends nothing).
        "ring_bytes_per_step": steps[-1].get("comm_ring_bytes", 0),
        "ring_bytes_by_collective": {name: steps[-1].get(f"ring_bytes_{name}", 0) for name in COLLECTIVES},
    }
    result["bytes_per_parameter"] = {name: usage["peak"] / count for name, usage in result["memory"].items()}
    result["bytes_per_parameter_total"] = memory["peak_total"] / count
    result["state_bytes_per_parameter"] = sum(result["bytes_per_parameter"].get(name, 0) for name in MODEL_STATE)
    return result


def format_rate(value):
    if value is None:
        return "-"
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k" if value >= 1e3 else f"{value:.0f}"


def format_bytes(count):
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count} B"


def format_loss(value):
    """Losses are always recorded; null is how JSON writes a NaN or infinite one (a diverged fp16 run)."""
    return "nan" if value is None else f"{value:.4f}"


def format_accuracy(value):
    return "-" if value is None else f"{100 * value:.1f}%"  # None: a task without exact answers (text)
