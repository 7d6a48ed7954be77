#!/usr/bin/env python3
"""Projects data-parallel scaling from one measured step.

A ring all-reduce of B bytes sends 2(N-1)/N * B bytes from every rank, so with link bandwidth W it takes
t_comm = 2(N-1)/N * B / W. Each rank computes for the measured single-device step time t_step (the per-rank
batch stays the same as N grows). Two bounds on the time of a data-parallel step:
  no overlap:      t_step + t_comm
  perfect overlap: max(t_step, t_comm)   (buckets reduced while backward goes on, as stage 06 does)
Scaling efficiency = t_step / (time of a data-parallel step).

Example, GPT-2 124M shape (163M parameters untied, fp32 gradient reduction) at 0.5 s a step:
  python3 scripts/ddp_projection.py --step-seconds 0.5 --parameters 163109376 --bytes-per-element 4
"""
import argparse

LINKS = [("NVLink (H100 SXM, ~450 GB/s per direction)", 450e9), ("PCIe 5.0 x16 (~50 GB/s)", 50e9),
         ("PCIe 4.0 x16 (~25 GB/s)", 25e9)]


def projection(step_seconds, gradient_bytes, ranks, bandwidth):
    """Returns (communication seconds, efficiency without overlap, efficiency with perfect overlap)."""
    communication = 2.0 * (ranks - 1) / ranks * gradient_bytes / bandwidth
    return (communication, step_seconds / (step_seconds + communication),
            step_seconds / max(step_seconds, communication))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step-seconds", type=float, required=True, help="measured single-device step time")
    parser.add_argument("--parameters", type=int, required=True, help="gradient elements reduced per step")
    parser.add_argument("--bytes-per-element", type=int, default=4, help="4 for fp32 reduction, 2 for bf16")
    parser.add_argument("--ranks", type=int, default=8, help="number of GPUs to project to")
    args = parser.parse_args()
    for name, value in (("--step-seconds", args.step_seconds), ("--parameters", args.parameters),
                        ("--bytes-per-element", args.bytes_per_element), ("--ranks", args.ranks)):
        if value <= 0:
            parser.error(f"{name} must be positive, got {value}")
    gradient_bytes = args.parameters * args.bytes_per_element
    print(f"step {args.step_seconds * 1e3:.1f} ms on one device, {gradient_bytes / 2**20:.1f} MiB of gradients, "
          f"{args.ranks} ranks, ring all-reduce")
    print(f"| link | all-reduce | efficiency, no overlap | efficiency, full overlap |")
    print(f"|---|---|---|---|")
    for name, bandwidth in LINKS:
        communication, serial, overlapped = projection(args.step_seconds, gradient_bytes, args.ranks, bandwidth)
        print(f"| {name} | {communication * 1e3:.1f} ms | {serial:.1%} | {overlapped:.1%} |")


if __name__ == "__main__":
    main()
