#!/usr/bin/env python3
"""PyTorch's training step of ladder's GPT, timed: what ladder's GPU benchmark is compared against.

The same GPT as common/model/gpt.cpp (GPT-2 style: pre-norm blocks, LayerNorm eps 1e-5, tanh GELU, learned
positions, an untied lm_head without bias, biases on every other linear, the vocabulary padded to a multiple
of 128 with the padded logits left out of the loss) and the same step (AdamW with betas (0.9, 0.95), eps 1e-8,
weight decay 0.1 on matrices and embeddings only, global gradient norm clipped to 1.0), written as a PyTorch
user would write it: torch.nn modules, F.scaled_dot_product_attention, fused AdamW on a GPU. Modes:

  fp32      every value and matmul in fp32, TF32 off: the counterpart of stage 01
  amp-fp16  autocast to fp16 and a GradScaler, fp32 weights and moments: the counterpart of stages 03-04
  amp-bf16  autocast to bf16, fp32 weights and moments: the counterpart of stage 05

It writes one JSON object that scripts/gpu_table.py sets beside ladder_bench's "<stage>/gpt2-124m-cuda" rows.
peak_bytes is torch.cuda.max_memory_allocated over the whole run, weights and optimizer state included, as
ladder's accountant counts its peak_bytes (null on a CPU, where PyTorch keeps no such count).

  python3 bench/pytorch_reference.py --mode amp-bf16 --json runs/pytorch_amp-bf16.json
  python3 bench/pytorch_reference.py --device cpu --model tiny --batch-size 2 --seq-len 16 --steps 2 --warmup 1
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The named configs of common/model/gpt_config.cpp: L, H, C and the longest context T.
CONFIGS = {
    "tiny": dict(layer_count=2, head_count=2, channels=16, max_sequence_length=16),
    "small": dict(layer_count=4, head_count=4, channels=128, max_sequence_length=64),
    "gpt2-124m": dict(layer_count=12, head_count=12, channels=768, max_sequence_length=1024),
}
GPT2_VOCABULARY = 50257
LAYER_NORM_EPS = 1e-5
# bench/step_benchmark.cpp's step: a fixed learning rate, the seed, and four batches used in turn.
LEARNING_RATE = 1e-4
BETAS = (0.9, 0.95)
ADAM_EPS = 1e-8
WEIGHT_DECAY = 0.1
MAX_GRAD_NORM = 1.0
SEED = 1337
BATCH_COUNT = 4
# H100 SXM's fp32 rate without tensor cores (kH100SxmFp32PeakFlops in bench/step_benchmark.hpp).
H100_SXM_FP32_PEAK_FLOPS = 67e12
AUTOCAST_DTYPES = {"fp32": None, "amp-fp16": torch.float16, "amp-bf16": torch.bfloat16}


def padded_vocab_size_for(vocab_size):
    """common/model/gpt_config.cpp's padding: to a multiple of 128 from 1024 up (50257 -> 50304), else of 8."""
    multiple = 128 if vocab_size >= 1024 else 8
    return (vocab_size + multiple - 1) // multiple * multiple


class CausalSelfAttention(nn.Module):
    def __init__(self, channels, head_count):
        super().__init__()
        self.head_count = head_count
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.head_count, C // self.head_count).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Linear(channels, 4 * channels)
        self.proj = nn.Linear(4 * channels, channels)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, channels, head_count):
        super().__init__()
        self.ln1 = nn.LayerNorm(channels, eps=LAYER_NORM_EPS)
        self.attn = CausalSelfAttention(channels, head_count)
        self.ln2 = nn.LayerNorm(channels, eps=LAYER_NORM_EPS)
        self.mlp = MLP(channels)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Parameter names follow tests/reference/make_gpt_fixture.py (wte, wpe, blocks.N.attn.qkv, ..., lm_head)."""

    def __init__(self, config, vocab_size):
        super().__init__()
        C = config["channels"]
        self.vocab_size = vocab_size
        padded = padded_vocab_size_for(vocab_size)
        self.wte = nn.Embedding(padded, C)
        self.wpe = nn.Embedding(config["max_sequence_length"], C)
        self.blocks = nn.ModuleList(Block(C, config["head_count"]) for _ in range(config["layer_count"]))
        self.lnf = nn.LayerNorm(C, eps=LAYER_NORM_EPS)
        self.lm_head = nn.Linear(C, padded, bias=False)
        self.initialize(config["layer_count"])

    @torch.no_grad()
    def initialize(self, layer_count):
        """GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2L), biases zero; the
        padded vocabulary rows zero, as they stay in ladder (the timing does not depend on any of this)."""
        for name, parameter in self.named_parameters():
            if parameter.dim() == 1:
                parameter.fill_(0.0 if name.endswith("bias") else 1.0)
            else:
                std = 0.02 / math.sqrt(2 * layer_count) if name.endswith("proj.weight") else 0.02
                parameter.normal_(0.0, std)
        self.wte.weight[self.vocab_size:].zero_()
        self.lm_head.weight[self.vocab_size:].zero_()

    def forward(self, inputs, targets):
        T = inputs.shape[1]
        x = self.wte(inputs) + self.wpe(torch.arange(T, device=inputs.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.lnf(x))
        # The padded vocabulary columns exist for GEMM-friendly shapes only; the loss sees the real V.
        real = logits[..., :self.vocab_size].reshape(-1, self.vocab_size)
        return F.cross_entropy(real.float(), targets.reshape(-1))


def multiplying_parameter_count(model):
    """Parameters that take part in a matmul: all but the two lookup tables (lm_head's padded rows count)."""
    return sum(p.numel() for name, p in model.named_parameters() if name not in ("wte.weight", "wpe.weight"))


def training_flops_per_step(model, config, batch_size, sequence_length):
    """bench/step_benchmark.cpp's estimate: 6·N·tokens + 12·L·H·hs·T·tokens (attention counted in full)."""
    tokens = batch_size * sequence_length
    attention_per_token = 12 * config["layer_count"] * config["channels"] * sequence_length
    return (6 * multiplying_parameter_count(model) + attention_per_token) * tokens


def make_optimizer(model, device):
    """AdamW with decay on matrices and embeddings (2-D tensors) only; the fused kernel where there is one."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=LEARNING_RATE, betas=BETAS, eps=ADAM_EPS, **extra)


def make_batches(vocab_size, batch_size, sequence_length, device):
    """Random GPT-2 ids, each batch one stream of B·T+1 tokens whose targets are the inputs shifted by one."""
    generator = torch.Generator().manual_seed(SEED)
    stream = torch.randint(0, vocab_size, (BATCH_COUNT, batch_size * sequence_length + 1), generator=generator)
    inputs = stream[:, :-1].reshape(BATCH_COUNT, batch_size, sequence_length)
    targets = stream[:, 1:].reshape(BATCH_COUNT, batch_size, sequence_length)
    return [(inputs[i].to(device), targets[i].to(device)) for i in range(BATCH_COUNT)]


def make_step(model, optimizer, mode, device):
    """One training step of `mode`. A disabled GradScaler passes everything through, so one recipe serves all."""
    autocast_dtype = AUTOCAST_DTYPES[mode]
    scaler = torch.amp.GradScaler(device.type, enabled=mode == "amp-fp16")

    def step(inputs, targets):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            loss = model(inputs, targets)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # clipping must see the true gradients
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        scaler.step(optimizer)
        scaler.update()
        return loss

    return step


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def run(args):
    """Builds the model and optimizer, runs warmup then timed steps; returns the JSON record."""
    device = torch.device(args.device)
    config = CONFIGS[args.model]
    # TF32 off in every mode: fp32 matmuls are fp32, and the amp modes' matmuls are fp16/bf16 anyway.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.manual_seed(SEED)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # before the weights: the peak covers the whole run

    model = GPT(config, GPT2_VOCABULARY).to(device)
    optimizer = make_optimizer(model, device)
    step = make_step(model, optimizer, args.mode, device)
    batches = make_batches(GPT2_VOCABULARY, args.batch_size, args.seq_len, device)

    for index in range(args.warmup):  # kernel selection, the optimizer's lazily made moments, the allocator
        step(*batches[index % BATCH_COUNT])
    synchronize(device)
    start = time.perf_counter()
    for index in range(args.steps):
        loss = step(*batches[(args.warmup + index) % BATCH_COUNT])
    synchronize(device)
    seconds = time.perf_counter() - start

    final_loss = loss.item()
    if not math.isfinite(final_loss):
        raise SystemExit(f"pytorch_reference.py: the last loss is {final_loss}: the timing measured a broken run")
    tokens_per_second = args.steps * args.batch_size * args.seq_len / seconds
    flops_per_step = training_flops_per_step(model, config, args.batch_size, args.seq_len)
    tflops_per_second = flops_per_step * args.steps / seconds / 1e12
    return {
        "framework": "pytorch", "mode": args.mode, "model": args.model, "batch": args.batch_size,
        "seq_len": args.seq_len, "tokens_per_second": tokens_per_second, "step_ms": 1e3 * seconds / args.steps,
        "peak_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "torch_version": torch.__version__, "device_name": device_name(device), "device": device.type,
        "steps": args.steps, "warmup": args.warmup, "parameters": sum(p.numel() for p in model.parameters()),
        "flops_per_step": flops_per_step, "tflops_per_second": tflops_per_second,
        "fp32_peak_fraction": tflops_per_second * 1e12 / H100_SXM_FP32_PEAK_FLOPS if device.type == "cuda" else None,
        "final_loss": final_loss,
    }


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), default="gpt2-124m")
    parser.add_argument("--batch-size", type=int, default=16, help="B: rows per step")
    parser.add_argument("--seq-len", type=int, default=1024, help="T: tokens per row")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
    parser.add_argument("--mode", choices=list(AUTOCAST_DTYPES), default="fp32")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--json", metavar="OUT", help="write the result here (and print it either way)")
    args = parser.parse_args(argv)
    longest = CONFIGS[args.model]["max_sequence_length"]
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0:
        parser.error(f"need --batch-size >= 1, --steps >= 1, --warmup >= 0 "
                     f"(got {args.batch_size}, {args.steps}, {args.warmup})")
    if not 1 <= args.seq_len <= longest:
        parser.error(f"--seq-len {args.seq_len} must be in 1..{longest}, the context of --model {args.model}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA GPU (torch " + torch.__version__ + ")")
    return args


def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    record = run(args)
    text = json.dumps(record, indent=2)
    print(text)
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(directory, exist_ok=True)
        temporary = args.json + ".tmp"  # a crash mid-write leaves no half-written result for the table to read
        with open(temporary, "w") as file:
            file.write(text + "\n")
        os.replace(temporary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
