"""The main job's charts (scripts/ladder.py): loss curves, memory per rank by category, throughput, and the bytes
each rank sends per step by collective, from the stages' rows of the comparison and their metrics files."""
import math
from pathlib import Path

from ladder_metrics import CATEGORIES, COLLECTIVES, MODEL_STATE, as_number, format_rate, read_metrics


def draw_charts(results, out_dir):
    """loss.png, memory.png and throughput.png from the stages that finished."""
    import matplotlib
    matplotlib.use("Agg")  # no display needed: the charts are files
    import matplotlib.pyplot as plt

    done = [r for r in results if r["status"] == "ok"]
    colors = {r["stage"]: plt.cm.tab10(i % 10) for i, r in enumerate(done)}
    stages = [r["stage"] for r in done]

    figure, axes = plt.subplots(figsize=(9, 5.5))
    curves = {}  # losses -> the first stage that had them, to name a stage whose curve hides under another's
    for r in done:
        records = read_metrics(Path(r["metrics"]))
        x, y = zip(*[(s["step"], as_number(s["loss"])) for s in records if s.get("type") == "step"])
        evals = [(e["step"], as_number(e["loss"])) for e in records if e.get("type") == "eval"]
        color, label, style = colors[r["stage"]], r["stage"], "-"
        twin = curves.setdefault(tuple(map(repr, y)), r["stage"])
        if twin != r["stage"]:  # dashed, so that the identical curve below shows through the gaps
            label, style = f"{label} (same losses as {twin})", (0, (4, 4))
        axes.plot(x, y, color=color, alpha=0.3, linewidth=0.8)
        smoothed, average = [], y[0]
        for value in y:  # an exponential moving average shows the trend through the batch-to-batch noise
            average = value if math.isnan(average) else 0.9 * average + 0.1 * value
            smoothed.append(average)
        axes.plot(x, smoothed, color=color, linewidth=1.8, linestyle=style, label=label)
        if evals:
            axes.plot(*zip(*evals), "o", color=color, markersize=5)
        first_bad = next((i for i, value in enumerate(y) if not math.isfinite(value)), None)
        if first_bad:  # a diverged run: mark where its loss stopped being a number
            axes.plot(x[first_bad - 1], y[first_bad - 1], "X", color=color, markersize=10)
            axes.annotate(f"{r['stage']}: loss nan from step {x[first_bad]}", (x[first_bad - 1], y[first_bad - 1]),
                          xytext=(8, 4), textcoords="offset points", fontsize=8, color=color)
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy loss (log scale)")
    axes.set_title("Training loss (faint: every step; solid: moving average); dots: held-out loss")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out_dir / "loss.png", dpi=110)
    plt.close(figure)

    used = [name for name in CATEGORIES if any(r["bytes_per_parameter"].get(name, 0) > 0 for r in done)]
    figure, axes = plt.subplots(figsize=(max(6, 1.3 * len(done) + 4), 5.5))
    bottoms = [0.0] * len(done)
    for index, name in enumerate(used):
        heights = [r["bytes_per_parameter"].get(name, 0) for r in done]
        axes.bar(stages, heights, width=0.6, bottom=bottoms, label=name, color=plt.cm.Set2(index % 8),
                 hatch="//" if name not in MODEL_STATE else None, edgecolor="white")
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    for position, (r, top) in enumerate(zip(done, bottoms)):
        # The bar stacks each category's own peak; the label is the peak of the total, as the table gives it
        # (smaller where categories peak at different moments: 07-09's comm buffers and activations).
        axes.annotate(f"{r['bytes_per_parameter_total']:.1f}\n(state {r['state_bytes_per_parameter']:.1f})",
                      (position, top), ha="center", va="bottom", fontsize=8)
    for position, r in enumerate(done):
        if r["ranks"] > 1:
            axes.annotate(f"{r['ranks']} ranks", (position, 0), xytext=(0, -28), textcoords="offset points",
                          ha="center", fontsize=7, color="dimgray")
    axes.set_ylabel("peak bytes per parameter, on one rank")
    axes.set_title("Peak memory per rank by category (hatched: not model state); labels: total at peak")
    axes.set_ylim(0, max(bottoms, default=1) * 1.18)
    handles, labels = axes.get_legend_handles_labels()  # listed top to bottom, as the bars are stacked
    axes.legend(handles[::-1], labels[::-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    plt.setp(axes.get_xticklabels(), rotation=20, ha="right")
    figure.tight_layout()
    figure.savefig(out_dir / "memory.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(max(6, 1.3 * len(done) + 3), 4.5))
    rates = [r["tokens_per_second"] or 0 for r in done]
    bars = axes.bar(stages, rates, width=0.6, color=[colors[s] for s in stages])
    axes.bar_label(bars, labels=[format_rate(rate) for rate in rates], fontsize=8)
    axes.set_ylabel("tokens per second (mean over training steps)")
    axes.set_title("Training throughput")
    axes.set_ylim(0, max(rates, default=1) * 1.15 or 1)
    plt.setp(axes.get_xticklabels(), rotation=20, ha="right")
    figure.tight_layout()
    figure.savefig(out_dir / "throughput.png", dpi=110)
    plt.close(figure)

    draw_communication(done, out_dir, plt)


def draw_communication(done, out_dir, plt):
    """communication.png: the bytes one rank sends per step, stacked by collective, for the stages that send."""
    sending = [r for r in done if r["ring_bytes_per_step"] > 0]
    if not sending:
        return
    figure, axes = plt.subplots(figsize=(max(6, 1.4 * len(sending) + 4), 5))
    names = [r["stage"] for r in sending]
    largest = max(r["ring_bytes_per_step"] for r in sending)
    unit, size = ("MiB", 2**20) if largest >= 2**20 else ("KiB", 2**10)
    bottoms = [0.0] * len(sending)
    for index, collective in enumerate(COLLECTIVES):
        heights = [r["ring_bytes_by_collective"][collective] / size for r in sending]
        axes.bar(names, heights, width=0.6, bottom=bottoms, label=collective.replace("_", "-"),
                 color=plt.cm.Set1(index))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    for position, (r, top) in enumerate(zip(sending, bottoms)):
        axes.annotate(f"{top:.2f} {unit}", (position, top), ha="center", va="bottom", fontsize=8)
    axes.set_ylabel(f"{unit} one rank sends per step (ring)")
    axes.set_title(f"Communication per step at {sending[0]['ranks']} ranks: all-reduce (DDP); reduce-scatter + "
                   "all-gather (ZeRO-1/2); all-gather + reduce-scatter + all-gather (FSDP)", fontsize=9)
    axes.set_ylim(0, max(bottoms) * 1.15)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out_dir / "communication.png", dpi=110)
    plt.close(figure)
