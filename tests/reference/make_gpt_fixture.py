#!/usr/bin/env python3
"""Golden PyTorch reference for the C++ GPT (stage 01).

Reads the tiny GPT's initial weights exported by the C++ side, runs forward, backward and ten AdamW
steps in float64 on fixed batches, and writes every number the C++ test compares against into one
self-contained safetensors file. See tests/reference/README.md for how and why.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INIT = os.path.join(HERE, "gpt_tiny_init.safetensors")
DEFAULT_OUT = os.path.join(HERE, "gpt_tiny_fixture.safetensors")
CONFIG_KEYS = ("vocab_size", "padded_vocab_size", "max_sequence_length", "layer_count",
               "head_count", "channels")
# The run. Changing any of these changes the committed fixture, so they are recorded in its metadata.
RUN = dict(batch_size=4, sequence_length=12, steps=10, lr=1e-2, betas=(0.9, 0.95), eps=1e-8,
           weight_decay=0.1, max_grad_norm=1.0, seed=20240601, ignored_fraction=0.2)
LAYER_NORM_EPS = 1e-5


def parameter_shapes(config):
    """Every parameter's name and shape, in the order the C++ model lays them out."""
    C, V_padded, T_max = config["channels"], config["padded_vocab_size"], config["max_sequence_length"]
    shapes = {"wte": (V_padded, C), "wpe": (T_max, C)}
    for layer in range(config["layer_count"]):
        prefix = f"blocks.{layer}."
        shapes.update({
            prefix + "ln1.weight": (C,), prefix + "ln1.bias": (C,),
            prefix + "attn.qkv.weight": (3 * C, C), prefix + "attn.qkv.bias": (3 * C,),
            prefix + "attn.proj.weight": (C, C), prefix + "attn.proj.bias": (C,),
            prefix + "ln2.weight": (C,), prefix + "ln2.bias": (C,),
            prefix + "mlp.fc.weight": (4 * C, C), prefix + "mlp.fc.bias": (4 * C,),
            prefix + "mlp.proj.weight": (C, 4 * C), prefix + "mlp.proj.bias": (C,),
        })
    shapes.update({"lnf.weight": (C,), "lnf.bias": (C,), "lm_head.weight": (V_padded, C)})
    return shapes


def load_init(path):
    """Reads and validates the exported init file; returns (config, metadata, float32 tensors)."""
    if not os.path.isfile(path):
        raise SystemExit(f"init file not found: {path}\n"
                         "export it first: ./build/tests/export_reference_init " + path)
    try:
        with safe_open(path, framework="pt") as file:
            metadata = dict(file.metadata() or {})
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except Exception as error:  # safetensors raises several types for a malformed file
        raise SystemExit(f"cannot read {path} as safetensors: {error}")
    config = {}
    for key in CONFIG_KEYS:
        if key not in metadata:
            raise SystemExit(f"{path}: metadata key '{key}' missing (expected all of {CONFIG_KEYS})")
        try:
            config[key] = int(metadata[key])
        except ValueError:
            raise SystemExit(f"{path}: metadata {key}='{metadata[key]}' is not an integer")
        if config[key] <= 0:
            raise SystemExit(f"{path}: metadata {key}={config[key]}, expected a positive integer")
    if config["padded_vocab_size"] < config["vocab_size"]:
        raise SystemExit(f"{path}: padded_vocab_size={config['padded_vocab_size']} is smaller than "
                         f"vocab_size={config['vocab_size']}")
    if config["channels"] % config["head_count"] != 0:
        raise SystemExit(f"{path}: head_count={config['head_count']} does not divide "
                         f"channels={config['channels']}")
    if config["max_sequence_length"] < RUN["sequence_length"]:
        raise SystemExit(f"{path}: max_sequence_length={config['max_sequence_length']} is shorter "
                         f"than the fixture's sequence_length={RUN['sequence_length']}")
    expected = parameter_shapes(config)
    for name, shape in expected.items():
        if name not in tensors:
            raise SystemExit(f"{path}: tensor '{name}' missing (expected shape {list(shape)})")
        if tuple(tensors[name].shape) != shape:
            raise SystemExit(f"{path}: tensor '{name}' has shape {list(tensors[name].shape)}, "
                             f"expected {list(shape)}")
        if tensors[name].dtype != torch.float32:
            raise SystemExit(f"{path}: tensor '{name}' has dtype {tensors[name].dtype}, expected F32")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise SystemExit(f"{path}: unexpected tensors {unexpected} (a naming mismatch with this script?)")
    return config, metadata, {name: tensors[name] for name in expected}


def causal_self_attention(q, k, v):
    """Attention written out: scores, causal mask, softmax, weighted sum. q, k, v are (B, H, T, C/H)."""
    T, head_size = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(head_size)
    # Position t may look at positions 0..t only; -inf becomes an exact 0 after softmax.
    future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    return weights @ v


def gpt_forward(params, config, idx, targets, attention=causal_self_attention):
    """The GPT forward pass over a dict of named tensors; returns (logits (B, T, Vp), mean loss)."""
    B, T = idx.shape
    C, H, V = config["channels"], config["head_count"], config["vocab_size"]

    def layer_norm(x, name):
        return F.layer_norm(x, (C,), params[name + ".weight"], params[name + ".bias"], LAYER_NORM_EPS)

    def linear(x, name):
        return x @ params[name + ".weight"].T + params[name + ".bias"]

    x = params["wte"][idx] + params["wpe"][torch.arange(T)]
    for layer in range(config["layer_count"]):
        prefix = f"blocks.{layer}."
        q, k, v = linear(layer_norm(x, prefix + "ln1"), prefix + "attn.qkv").split(C, dim=-1)
        q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        y = attention(q, k, v).transpose(1, 2).reshape(B, T, C)
        x = x + linear(y, prefix + "attn.proj")
        hidden = F.gelu(linear(layer_norm(x, prefix + "ln2"), prefix + "mlp.fc"), approximate="tanh")
        x = x + linear(hidden, prefix + "mlp.proj")
    logits = layer_norm(x, "lnf") @ params["lm_head.weight"].T
    # The padded vocabulary columns exist only for GEMM-friendly shapes; they take no part in the loss.
    loss = F.cross_entropy(logits[..., :V].reshape(B * T, V), targets.reshape(B * T), ignore_index=-1)
    return logits, loss


def make_batches(config, run=RUN):
    """Fixed token and target batches, one per step of `run`; about 20% of the targets are -1 (ignored)."""
    rng = np.random.default_rng(run["seed"])
    shape = (run["steps"], run["batch_size"], run["sequence_length"])
    inputs = rng.integers(0, config["vocab_size"], size=shape)
    targets = rng.integers(0, config["vocab_size"], size=shape)
    targets[rng.random(shape) < run["ignored_fraction"]] = -1
    for step in range(run["steps"]):
        if (targets[step] >= 0).sum() == 0:  # a batch with nothing to learn would make the mean loss NaN
            targets[step, 0, 0] = 0
    return inputs.astype(np.int64), targets.astype(np.int64)


def as_float32(tensor):
    """A float32 copy (never a view: clipping later scales the gradients in place)."""
    return tensor.detach().to(torch.float32, copy=True)


def to_float64_parameters(init):
    return {name: tensor.to(torch.float64).clone().requires_grad_(True) for name, tensor in init.items()}


def run_training(config, init):
    """Step 0 details, then ten clipped AdamW steps; returns the fixture's tensors."""
    params = to_float64_parameters(init)
    inputs, targets = make_batches(config)
    decay = [p for p in params.values() if p.dim() == 2]
    no_decay = [p for p in params.values() if p.dim() == 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": RUN["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=RUN["lr"], betas=RUN["betas"], eps=RUN["eps"], foreach=False)
    fixture = {"inputs": torch.from_numpy(inputs).to(torch.int32),
               "targets": torch.from_numpy(targets).to(torch.int32)}
    losses, grad_norms = [], []
    for step in range(RUN["steps"]):
        optimizer.zero_grad(set_to_none=True)
        logits, loss = gpt_forward(params, config, torch.from_numpy(inputs[step]),
                                   torch.from_numpy(targets[step]))
        loss.backward()
        if step == 0:
            fixture["step0.logits"] = as_float32(logits)
            fixture["step0.loss"] = as_float32(loss).reshape(1)
            for name, p in params.items():
                fixture["step0.grad." + name] = as_float32(p.grad)
        grad_norm = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm=RUN["max_grad_norm"])
        optimizer.step()
        losses.append(loss.item())
        grad_norms.append(grad_norm.item())
        print(f"step {step}: loss {losses[-1]:.6f}  grad norm {grad_norms[-1]:.6f}"
              + ("  (clipped)" if grad_norms[-1] > RUN["max_grad_norm"] else ""))
    fixture["losses"] = torch.tensor(losses, dtype=torch.float32)
    fixture["grad_norms"] = torch.tensor(grad_norms, dtype=torch.float32)
    for name, p in params.items():
        fixture["final." + name] = as_float32(p)
        fixture["init." + name] = init[name].clone()
    return fixture


def run_metadata(init_metadata):
    metadata = {key: init_metadata[key] for key in CONFIG_KEYS}
    metadata.update({
        "batch_size": str(RUN["batch_size"]), "sequence_length": str(RUN["sequence_length"]),
        "steps": str(RUN["steps"]), "lr": repr(RUN["lr"]),
        "betas": ",".join(repr(beta) for beta in RUN["betas"]), "eps": repr(RUN["eps"]),
        "weight_decay": repr(RUN["weight_decay"]), "weight_decay_applies_to": "2-D tensors",
        "max_grad_norm": repr(RUN["max_grad_norm"]), "seed": str(RUN["seed"]),
        "ignored_fraction": repr(RUN["ignored_fraction"]), "layer_norm_eps": repr(LAYER_NORM_EPS),
        "gelu": "tanh", "torch_version": torch.__version__, "numpy_version": np.__version__,
        "reference_dtype": "float64"})
    return metadata


def self_check(config, init):
    """Checks autograd against central differences and explicit attention against SDPA; raises on failure."""
    torch.manual_seed(0)
    params = to_float64_parameters(init)
    inputs, targets = make_batches(config)
    idx, tgt = torch.from_numpy(inputs[0]), torch.from_numpy(targets[0])
    _, loss = gpt_forward(params, config, idx, tgt)
    loss.backward()
    failures = []

    def loss_at(name, flat_index, value):
        with torch.no_grad():
            probe = {n: p.detach().clone() for n, p in params.items()}
            probe[name].view(-1)[flat_index] = value
            return gpt_forward(probe, config, idx, tgt)[1].item()

    # Central differences: error ~ h^2 * f''' + rounding/h, about 1e-10 in float64 with h = 1e-5.
    h = 1e-5
    checked = ["wte", "wpe", "blocks.0.ln1.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias",
               f"blocks.{config['layer_count'] - 1}.mlp.fc.weight", "lnf.bias", "lm_head.weight"]
    for name in checked:
        grad = params[name].grad.view(-1)
        largest = torch.topk(grad.abs(), 3).indices.tolist()
        for flat_index in largest + [int(torch.randint(grad.numel(), (1,)))]:
            value = params[name].view(-1)[flat_index].item()
            numeric = (loss_at(name, flat_index, value + h) - loss_at(name, flat_index, value - h)) / (2 * h)
            analytic = grad[flat_index].item()
            if abs(numeric - analytic) > 1e-8 + 1e-6 * abs(analytic):
                failures.append(f"{name}[{flat_index}]: autograd {analytic:.12e}, finite difference {numeric:.12e}")
    print(f"finite differences: {len(checked) * 4} entries over {len(checked)} tensors checked")

    # torch's own gradcheck over every entry of one small tensor, as a second opinion.
    name = "blocks.0.ln2.bias"
    def loss_of(bias):
        return gpt_forward({**{n: p.detach() for n, p in params.items()}, name: bias}, config, idx, tgt)[1]
    if not torch.autograd.gradcheck(loss_of, (params[name].detach().clone().requires_grad_(True),),
                                    eps=1e-6, atol=1e-8, rtol=1e-6, raise_exception=False):
        failures.append(f"torch.autograd.gradcheck failed on {name}")

    V = config["vocab_size"]
    if V < config["padded_vocab_size"] and params["lm_head.weight"].grad[V:].abs().max().item() != 0.0:
        failures.append("padded lm_head rows received gradient; the padded logits leaked into the loss")

    # Explicit attention against the fused kernel, on random inputs and inside the real model.
    H, head_size = config["head_count"], config["channels"] // config["head_count"]
    q, k, v = torch.randn(3, 2, H, RUN["sequence_length"], head_size, dtype=torch.float64)
    difference = (causal_self_attention(q, k, v) - F.scaled_dot_product_attention(q, k, v, is_causal=True))
    if difference.abs().max().item() > 1e-12:
        failures.append(f"explicit attention differs from SDPA by {difference.abs().max().item():.3e}")
    sdpa = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    with torch.no_grad():
        explicit_logits = gpt_forward(params, config, idx, tgt)[0]
        fused_logits = gpt_forward(params, config, idx, tgt, attention=sdpa)[0]
    model_difference = (explicit_logits - fused_logits).abs().max().item()
    if model_difference > 1e-12:
        failures.append(f"model logits with explicit vs SDPA attention differ by {model_difference:.3e}")
    print(f"attention vs SDPA: max difference {difference.abs().max().item():.2e} (random), "
          f"{model_difference:.2e} (model logits)")
    if failures:
        raise SystemExit("self-check FAILED:\n  " + "\n  ".join(failures))
    print("self-check passed")


def write_test_init(path, seed=0):
    """Writes a random init in the exporter's format, for testing this script before the C++ side exists."""
    config = dict(vocab_size=13, padded_vocab_size=16, max_sequence_length=16, layer_count=2,
                  head_count=2, channels=16)
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in parameter_shapes(config).items():
        if name.endswith(".bias"):
            tensors[name] = torch.zeros(shape)
        elif len(shape) == 1:  # LayerNorm scale
            tensors[name] = torch.ones(shape)
        else:
            tensors[name] = torch.randn(shape, generator=generator) * 0.02
    save_file(tensors, path, metadata={key: str(value) for key, value in config.items()})
    print(f"wrote test init {path} (not the committed one: that comes from the C++ exporter)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", default=DEFAULT_INIT, help="initial weights exported by the C++ side")
    parser.add_argument("--out", default=DEFAULT_OUT, help="fixture file to write")
    parser.add_argument("--self-check", action="store_true",
                        help="check gradients (finite differences) and attention (SDPA), then exit")
    parser.add_argument("--write-test-init", metavar="PATH",
                        help="write a random init file to PATH for testing this script, then exit")
    args = parser.parse_args()
    if args.write_test_init:
        write_test_init(args.write_test_init)
        return
    config, metadata, init = load_init(args.init)
    if args.self_check:
        self_check(config, init)
        return
    fixture = run_training(config, init)
    save_file({name: tensor.contiguous() for name, tensor in fixture.items()}, args.out,
              metadata=run_metadata(metadata))
    print(f"wrote {args.out} ({len(fixture)} tensors)")


if __name__ == "__main__":
    sys.exit(main())
