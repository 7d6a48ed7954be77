#!/usr/bin/env python3
"""Golden PyTorch + PEFT reference for stage 10's LoRA adapters.

Builds the tiny GPT of make_gpt_fixture.py as torch modules laid out like the C++ model, except that the fused
qkv projection is split into three linears named q, k and v (their weights are the C-row blocks of qkv), and the
attention output projection is named o. PEFT's LoraConfig then adapts q, k, v, o, fc and proj by those names. The
script sets A and B to seeded non-zero values, runs forward, backward and five clipped AdamW steps on the adapters
alone in float64, and writes everything the C++ test compares against into one safetensors file. See
tests/reference/README.md for how and why.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

import peft
from peft import LoraConfig, get_peft_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_gpt_fixture import LAYER_NORM_EPS, causal_self_attention, gpt_forward, load_init, make_batches  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INIT = os.path.join(HERE, "gpt_tiny_init.safetensors")
DEFAULT_OUT = os.path.join(HERE, "lora_tiny_fixture.safetensors")
# The run. Changing any of these changes the committed fixture, so they are recorded in its metadata.
RUN = dict(rank=4, alpha=8.0, targets=["q", "k", "v", "o", "fc", "proj"], batch_size=4, sequence_length=12,
           steps=5, lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, max_grad_norm=0.3, seed=20240610,
           adapter_scale=0.2, ignored_fraction=0.2)


class Attention(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.heads = H
        self.q, self.k, self.v, self.o = (nn.Linear(C, C) for _ in range(4))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.reshape(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (self.q(x), self.k(x), self.v(x)))
        return self.o(causal_self_attention(q, k, v).transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C, eps=LAYER_NORM_EPS), nn.LayerNorm(C, eps=LAYER_NORM_EPS)
        self.attn = Attention(C, H)
        self.mlp = nn.Module()
        self.mlp.fc, self.mlp.proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp.proj(F.gelu(self.mlp.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    """The C++ GPT as modules; module paths blocks.<i>.attn.{q,k,v,o} and blocks.<i>.mlp.{fc,proj}."""

    def __init__(self, config):
        super().__init__()
        C, Vp = config["channels"], config["padded_vocab_size"]
        self.vocab_size = config["vocab_size"]
        self.wte, self.wpe = nn.Embedding(Vp, C), nn.Embedding(config["max_sequence_length"], C)
        self.blocks = nn.ModuleList(Block(C, config["head_count"]) for _ in range(config["layer_count"]))
        self.lnf = nn.LayerNorm(C, eps=LAYER_NORM_EPS)
        self.lm_head = nn.Linear(C, Vp, bias=False)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.lnf(x))
        V = self.vocab_size
        loss = F.cross_entropy(logits[..., :V].reshape(B * T, V), targets.reshape(B * T), ignore_index=-1)
        return logits, loss

    def load_ladder(self, init):
        """The ladder checkpoint's tensors, the fused qkv split into its three C-row blocks."""
        C = self.wte.weight.shape[1]
        state = {"wte.weight": init["wte"], "wpe.weight": init["wpe"], "lm_head.weight": init["lm_head.weight"],
                 "lnf.weight": init["lnf.weight"], "lnf.bias": init["lnf.bias"]}
        for i in range(len(self.blocks)):
            p = f"blocks.{i}."
            for part in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "mlp.fc.weight", "mlp.fc.bias",
                         "mlp.proj.weight", "mlp.proj.bias"):
                state[p + part] = init[p + part]
            state[p + "attn.o.weight"], state[p + "attn.o.bias"] = init[p + "attn.proj.weight"], init[p + "attn.proj.bias"]
            for block, name in enumerate("qkv"):
                state[p + f"attn.{name}.weight"] = init[p + "attn.qkv.weight"][block * C:(block + 1) * C]
                state[p + f"attn.{name}.bias"] = init[p + "attn.qkv.bias"][block * C:(block + 1) * C]
        self.load_state_dict({name: tensor.to(torch.float64) for name, tensor in state.items()})


def lora_model(config, init, **overrides):
    base = GPT(config)
    base.load_ladder(init)
    settings = dict(r=RUN["rank"], lora_alpha=RUN["alpha"], target_modules=RUN["targets"], lora_dropout=0.0,
                    bias="none")
    settings.update(overrides)
    return get_peft_model(base, LoraConfig(**settings))


def adapter_parameters(model):
    """PEFT's saved names (as get_peft_model_state_dict writes them) -> the live parameters, A and B only."""
    return {name.replace(".default", ""): p for name, p in model.named_parameters() if "lora_" in name}


def set_random_adapters(model, rng):
    """A and B uniform in ±adapter_scale, drawn as float32 so the C++ side can hold exactly the same values."""
    init = {}
    with torch.no_grad():
        for name, p in adapter_parameters(model).items():
            values = rng.uniform(-RUN["adapter_scale"], RUN["adapter_scale"], size=tuple(p.shape)).astype(np.float32)
            p.copy_(torch.from_numpy(values).to(torch.float64))
            init["init." + name] = torch.from_numpy(values)
    return init


def merged_weights(model, config):
    """PEFT's merge_and_unload, back in the ladder's names (qkv fused again)."""
    merged = model.merge_and_unload()
    out = {}
    for i in range(config["layer_count"]):
        attn, mlp, p = merged.blocks[i].attn, merged.blocks[i].mlp, f"merged.blocks.{i}."
        out[p + "attn.qkv.weight"] = torch.cat([attn.q.weight, attn.k.weight, attn.v.weight]).to(torch.float32)
        out[p + "attn.proj.weight"] = attn.o.weight.to(torch.float32)
        out[p + "mlp.fc.weight"] = mlp.fc.weight.to(torch.float32)
        out[p + "mlp.proj.weight"] = mlp.proj.weight.to(torch.float32)
    return {name: t.detach().clone() for name, t in out.items()}


def run(config, init):
    inputs, targets = make_batches(config, RUN)
    rng = np.random.default_rng(RUN["seed"] + 1)  # the adapters' values, a stream apart from the batches'
    model = lora_model(config, init)
    fixture = {"inputs": torch.from_numpy(inputs).to(torch.int32), "targets": torch.from_numpy(targets).to(torch.int32)}
    fixture.update(set_random_adapters(model, rng))
    merged_model = lora_model(config, init)
    with torch.no_grad():
        for name, p in adapter_parameters(merged_model).items():
            p.copy_(fixture["init." + name].to(torch.float64))
    fixture.update(merged_weights(merged_model, config))

    params = adapter_parameters(model)
    optimizer = torch.optim.AdamW(list(params.values()), lr=RUN["lr"], betas=RUN["betas"], eps=RUN["eps"],
                                  weight_decay=RUN["weight_decay"], foreach=False)
    losses, norms = [], []
    for step in range(RUN["steps"]):
        optimizer.zero_grad(set_to_none=True)
        logits, loss = model(torch.from_numpy(inputs[step]), torch.from_numpy(targets[step]))
        loss.backward()
        if step == 0:
            fixture["step0.logits"] = logits.detach().to(torch.float32)
            fixture["step0.loss"] = loss.detach().to(torch.float32).reshape(1)
            for name, p in params.items():
                fixture["step0.grad." + name] = p.grad.detach().to(torch.float32).clone()
        norms.append(torch.nn.utils.clip_grad_norm_(list(params.values()), RUN["max_grad_norm"]).item())
        optimizer.step()
        losses.append(loss.item())
        print(f"step {step}: loss {losses[-1]:.6f}  adapter grad norm {norms[-1]:.6f}")
    fixture["losses"] = torch.tensor(losses, dtype=torch.float32)
    fixture["grad_norms"] = torch.tensor(norms, dtype=torch.float32)
    for name, p in params.items():
        fixture["final." + name] = p.detach().to(torch.float32).clone()

    # PEFT's own default initialisation, for the C++ side to compare its A's range and B's zeros with.
    torch.manual_seed(0)
    default = adapter_parameters(lora_model(config, init, r=8, lora_alpha=8))
    for which in ("A", "B"):
        fixture[f"peft_default.lora_{which}"] = default[f"base_model.model.blocks.0.mlp.fc.lora_{which}.weight"].detach().to(torch.float32).clone()
    return fixture


def self_check(config, init):
    """The module model equals make_gpt_fixture's functional one; adapters with B = 0 change nothing."""
    inputs, targets = make_batches(config, RUN)
    idx, tgt = torch.from_numpy(inputs[0]), torch.from_numpy(targets[0])
    params = {name: t.to(torch.float64) for name, t in init.items()}
    reference_logits, _ = gpt_forward(params, config, idx, tgt)
    base = GPT(config)
    base.load_ladder(init)
    with torch.no_grad():
        difference = (base(idx, tgt)[0] - reference_logits).abs().max().item()
        peft_difference = (lora_model(config, init)(idx, tgt)[0] - reference_logits).abs().max().item()
    print(f"module model vs functional: {difference:.2e}; PEFT default (B = 0) vs functional: {peft_difference:.2e}")
    if difference > 1e-12 or peft_difference > 1e-12:
        raise SystemExit("self-check FAILED: the module model does not compute make_gpt_fixture's GPT")
    print("self-check passed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", default=DEFAULT_INIT, help="the tiny GPT's weights exported by the C++ side")
    parser.add_argument("--out", default=DEFAULT_OUT, help="fixture file to write")
    parser.add_argument("--self-check", action="store_true", help="check the module model, then exit")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    config, _, init = load_init(args.init)
    if args.self_check:
        self_check(config, init)
        return
    fixture = run(config, init)
    metadata = {key: str(config[key]) for key in config}
    metadata.update({
        "r": str(RUN["rank"]), "lora_alpha": repr(RUN["alpha"]), "target_modules": ",".join(RUN["targets"]),
        "lora_dropout": "0.0", "batch_size": str(RUN["batch_size"]), "sequence_length": str(RUN["sequence_length"]),
        "steps": str(RUN["steps"]), "lr": repr(RUN["lr"]), "betas": ",".join(repr(b) for b in RUN["betas"]),
        "eps": repr(RUN["eps"]), "weight_decay": repr(RUN["weight_decay"]), "max_grad_norm": repr(RUN["max_grad_norm"]),
        "seed": str(RUN["seed"]), "adapter_scale": repr(RUN["adapter_scale"]), "reference_dtype": "float64",
        "torch_version": torch.__version__, "peft_version": peft.__version__, "numpy_version": np.__version__})
    save_file({name: t.contiguous() for name, t in fixture.items()}, args.out, metadata=metadata)
    print(f"wrote {args.out} ({len(fixture)} tensors)")


if __name__ == "__main__":
    sys.exit(main())
