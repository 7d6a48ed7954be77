#!/usr/bin/env python3
"""Draws one FSDP step as it happened: which unit was being gathered, computed, freed and reduced, and when.

Reads the JSON lines 09_fsdp writes with --timeline FILE (one step's hook events, rank 0) and draws two lanes:
  communication  a bar from each all-gather's issue to the moment the rank waited for it (issued early: prefetched),
                 and a tick where each unit's gradients were handed to the reduce-scatter
  compute        each unit's forward (light) and backward (dark), from its start to the next event
plus, at the bottom, how many units' whole weights were held at each moment (the "gathered weights" memory line).
  mpiexec -n 2 build/09_fsdp/09_fsdp --steps 3 --timeline runs/fsdp_timeline.jsonl
  python3 scripts/fsdp_timeline.py runs/fsdp_timeline.jsonl --out docs/images/fsdp_timeline.png
"""
import argparse
import json
import sys
from pathlib import Path


def load(path):
    try:
        events = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        sys.exit(f"fsdp_timeline: cannot read {path}: {error}")
    if not events:
        sys.exit(f"fsdp_timeline: {path} holds no events (was --timeline-step past the last step?)")
    return events


def spans(events):
    """Gather bars (issue -> wait), compute bars (start -> next event), reduce-scatter ticks, units held over time."""
    gathers, computes, reductions, held = [], [], [], []
    issued, count = {}, 0
    for index, event in enumerate(events):
        kind, unit, at = event["event"], event["unit"], event["seconds"]
        if kind == "gather issued":
            issued[unit] = at
            count += 1
            held.append((at, count))
        elif kind == "gather waited":
            gathers.append((unit, issued.pop(unit, at), at))
        elif kind in ("forward", "backward"):
            end = events[index + 1]["seconds"] if index + 1 < len(events) else at
            computes.append((unit, kind, at, end))
        elif kind == "reduce-scatter issued":
            reductions.append((unit, at))
        elif kind == "freed":
            count -= 1
            held.append((at, count))
    return gathers, computes, reductions, held


def draw(events, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gathers, computes, reductions, held = spans(events)
    scale = 1e3  # milliseconds
    figure, (lanes, memory) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True,
                                           gridspec_kw={"height_ratios": [2.2, 1]})
    colours = plt.get_cmap("tab10")
    for unit, start, end in gathers:
        lanes.barh(1, max(end - start, 1e-6) * scale, left=start * scale, height=0.5, color=colours(unit % 10),
                   alpha=0.55, edgecolor="black", linewidth=0.4)
        lanes.text((start + end) / 2 * scale, 1, f"g{unit}", ha="center", va="center", fontsize=7)
    for unit, kind, start, end in computes:
        lanes.barh(0, max(end - start, 1e-6) * scale, left=start * scale, height=0.5, color=colours(unit % 10),
                   alpha=0.9 if kind == "backward" else 0.45, edgecolor="black", linewidth=0.4)
        lanes.text((start + end) / 2 * scale, 0, ("b" if kind == "backward" else "f") + str(unit), ha="center",
                   va="center", fontsize=7)
    for unit, at in reductions:
        lanes.plot([at * scale] * 2, [1.3, 1.5], color=colours(unit % 10), linewidth=2)
        lanes.text(at * scale, 1.55, f"rs{unit}", ha="center", va="bottom", fontsize=6)
    lanes.set_yticks([0, 1], ["compute", "communication"])
    lanes.set_ylim(-0.5, 1.9)
    lanes.set_title("One FSDP step: all-gathers (g), forward (f) and backward (b) per unit, reduce-scatters (rs)")
    times = [0.0] + [at * scale for at, _ in held]
    counts = [0] + [count for _, count in held]
    memory.step(times, counts, where="post", color="black")
    memory.set_ylabel("units gathered")
    memory.set_xlabel("milliseconds since the step began")
    memory.set_yticks(range(0, max(counts) + 1))
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=130)
    print(f"fsdp_timeline: wrote {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("timeline", help="the JSONL file 09_fsdp --timeline wrote")
    parser.add_argument("--out", default="fsdp_timeline.png")
    parser.add_argument("--text", action="store_true", help="print the events as a table instead of drawing")
    args = parser.parse_args()
    events = load(args.timeline)
    if args.text:
        for event in events:
            print(f"{event['seconds'] * 1e3:9.3f} ms  {event['event']:<22} unit {event['unit']}")
        return
    draw(events, args.out)


if __name__ == "__main__":
    main()
