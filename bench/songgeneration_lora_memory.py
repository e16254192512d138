#!/usr/bin/env python3
"""Peak memory of one SongGeneration LeLM LoRA training step versus song length, with and without
gradient checkpointing, extrapolated to the released models.

Each point runs in a fresh Python process. A reduced LeLM (width D with heads of 128 as released,
N_main + N_sub decoder layers, FFN 5.375 x D as in v2-large; the released condition lengths of
v2-large: 600 lyric ids, 100 description ids, a 252-row prompt block; delays [0, 250, 250]; random
weights; the full-size Qwen2-vocabulary and 16,386-row code tables) is stored in bf16 and wrapped
as ``songgeneration.bin.train`` wraps it (:func:`songgeneration.training.lora.wrap_lelm` with the
default ``lora`` section: r 16, alpha 32, dropout 0.05 on q/k/v/o of both decoders). One training
step (the trainer's :func:`songgeneration.training.loss.compute_loss` under bf16 autocast, backward,
AdamW) runs on a 2 s song to warm up (AdamW state allocated), then on a song of L seconds
(T = 25·L frames, codes ``[1, 3, T + 1]`` with EOS, a 10 s prompt) under a dispatch-mode tracker
(:class:`bench.acestep_lora_memory.PeakTensorMemory`: the bytes of every tensor storage the step
creates, from creation until freed; weights, optimizer state and the batch excluded: the CPU
counterpart of ``torch.cuda.max_memory_allocated``). The decoders see S = 952 + T + 252 rows.

The loss's logits are measured on their own as well: from random bf16 hidden states ``[1, T + 252,
D]`` (requiring gradients) through the three frozen 16,385-way heads, the pattern revert and the
loss's float32 cross-entropy, backward (its peak is the logits' share of the step and does not
depend on the decoders).

The step peaks are fitted per checkpointing setting as ``a + b·D + c·S·D·N + d·S·D + e·S`` (MiB,
N = N_main + N_sub) and extrapolated to the released sizes with the parameter counts of their
configs (built on the meta device): weights in bf16 (what the brief's target assumes; the trainer
as it stands loads them in float32, shown too), LoRA weights + gradients + AdamW moments in fp32
(16 bytes per trainable parameter), the fitted activations.

    python bench/songgeneration_lora_memory.py                     # print the section
    python bench/songgeneration_lora_memory.py --update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from acestep_lora_memory import PeakTensorMemory, existing_tensors  # noqa: E402
from report import cpu_name, update_doc  # noqa: E402

from shirabe.cli import add_bool_argument  # noqa: E402

SECTION = "## SongGeneration LoRA training memory"
FIXTURE_CONFIG = ROOT / "tests" / "fixtures" / "songgen_lelm_tiny" / "config.yaml"
FRAME_RATE = 25
HEAD_DIM = 128
FFN_RATIO = 11008 / 2048
CARD = 16385
MIB = 1024 ** 2
WARMUP_SECONDS = 2.0
TARGET_GIB = 24.0
# condition lengths: released v2-large (lyrics 600, description 100, prompt 10 s -> 252 rows); tiny for the test
CONDITIONS = {"released": dict(lyric=600, description=100, prompt_len=10, delay=250),
              "tiny": dict(lyric=16, description=8, prompt_len=1, delay=3)}
SIZES = ((256, 2, 1), (512, 2, 1), (512, 4, 2))
# extrapolation targets: (name, dim, heads, ffn, main layers, sub layers, song seconds, how the dims are known)
TARGETS = (
    ("v2-large", 2048, 16, 11008, 36, 12, 270.0,
     "`songgen_lelm_full_keys.tsv` (the v2-large key list) and its config mirror"),
    ("v2-large", 2048, 16, 11008, 36, 12, 150.0,
     "`songgen_lelm_full_keys.tsv` (the v2-large key list) and its config mirror"),
    ("base (assumed dims)", 1536, 24, 6144, 24, 8, 150.0,
     "unverified: dim 1536 / FFN 6144 / 24 main layers of a community config, 8 sub layers assumed"),
)


def frames_of(seconds: float) -> int:
    return max(1, int(round(seconds * FRAME_RATE)))


def lelm_config(width: int, main: int, sub: int, conditions: str = "released", heads: int | None = None,
                ffn: int | None = None):
    from songgeneration.models.config import config_from_dict

    c = CONDITIONS[conditions]
    data = yaml.safe_load(FIXTURE_CONFIG.read_text(encoding="utf-8"))
    heads = heads or max(1, width // HEAD_DIM)
    ffn = ffn or int(round(width * FFN_RATIO / 64)) * 64
    data["version"] = "v2"  # the v2 tag tables (151,659 lyric and 151,652 description rows, as released)
    data["lm"].update(dim=width, num_heads=heads, intermediate_size=ffn, num_layers=main, num_layers_sub=sub,
                      max_position_embeddings=20000, max_position_embeddings_sub=20000)
    data["codebooks_pattern"]["delay"]["delays"] = [0, c["delay"], c["delay"]]
    conds = data["conditioners"]
    conds["description"]["QwTokenizer"]["max_len"] = c["lyric"]
    conds["type_info"]["QwTextTokenizer"]["max_len"] = c["description"]
    conds["prompt_audio"]["qt_embedding"]["max_len"] = c["prompt_len"] * FRAME_RATE + 2
    data["prompt_len"] = c["prompt_len"]
    data["max_dur"] = 1000.0
    return config_from_dict(data, f"{FIXTURE_CONFIG} (bench)")


def prefix_rows(config) -> int:
    return config.lyric.max_len + config.description.max_len + config.prompt_max_len


def decoder_rows(config, frames: int) -> int:
    """Rows each decoder sees in training: the prefix and the pattern of ``frames + 1`` codes (EOS added)."""
    return prefix_rows(config) + frames + 1 + max(config.delays) + 1


def lora_model(config, checkpointing: bool):
    from songgeneration.models import build_lelm
    from songgeneration.train_config import Lora
    from songgeneration.training.lora import wrap_lelm

    torch.manual_seed(0)
    model = build_lelm(config).to(torch.bfloat16)
    for decoder in (model.transformer, model.transformer2):
        decoder.model.gradient_checkpointing = checkpointing
    return wrap_lelm(model, Lora(), "bench").train()


def make_batch(config, frames: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, config.code_size, (1, 3, frames + 1), generator=g)
    codes[:, :, frames] = config.eos_id
    return {"ids": [f"song{seed}"], "codes": codes, "lengths": torch.tensor([frames]),
            "lyric_ids": torch.randint(0, 151000, (1, config.lyric.max_len), generator=g),
            "desc_ids": torch.randint(0, 151000, (1, config.description.max_len), generator=g),
            "prompt": torch.randint(0, config.code_size, (1, 3, config.prompt_frames), generator=g)}


def tracked(fn, existing=()) -> dict:
    """Peak of the tensor storages ``fn()`` creates (MiB) and its wall time."""
    tracker = PeakTensorMemory(existing)
    t0 = time.perf_counter()
    with tracker:
        fn()
    return {"tensor_mib": tracker.peak / MIB, "wall": time.perf_counter() - t0}


def step_point(seconds: float, width: int, main: int, sub: int, checkpointing: bool, threads: int = 1,
               conditions: str = "released") -> dict:
    from songgeneration.training.loss import compute_loss

    torch.set_num_threads(threads)
    config = lelm_config(width, main, sub, conditions)
    model = lora_model(config, checkpointing)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    device = torch.device("cpu")

    def step(batch):
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            loss, _ = compute_loss(model, batch, True, device=device)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(make_batch(config, frames_of(WARMUP_SECONDS), seed=1))
    frames = frames_of(seconds)
    batch = make_batch(config, frames)
    peak = tracked(lambda: step(batch), existing_tensors(model, optimizer, batch["codes"], batch["prompt"],
                                                         batch["lyric_ids"], batch["desc_ids"]))
    return {"kind": "step", "seconds": seconds, "frames": frames, "rows": decoder_rows(config, frames),
            "width": width, "main": main, "sub": sub, "checkpointing": checkpointing, "threads": threads,
            "params": sum(p.numel() for p in model.parameters()), "trainable": sum(p.numel() for p in params),
            "step": peak}


def logits_point(seconds: float, width: int = 512, threads: int = 1, conditions: str = "released") -> dict:
    """The loss's logits alone: hidden states -> three heads -> revert -> float32 cross-entropy, backward."""
    from songgeneration.models import build_lelm
    from songgeneration.training.loss import stream_losses

    torch.set_num_threads(threads)
    config = lelm_config(width, 1, 1, conditions)
    torch.manual_seed(0)
    lm = build_lelm(config).to(torch.bfloat16).requires_grad_(False)
    frames = frames_of(seconds)
    codes = make_batch(config, frames)["codes"]
    columns = lm.pattern.length(frames + 1)
    g = torch.Generator().manual_seed(0)
    h1 = torch.randn(1, columns, width, generator=g).to(torch.bfloat16).requires_grad_(True)
    h2 = torch.randn(1, columns, width, generator=g).to(torch.bfloat16).requires_grad_(True)

    def step():
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            out, valid = lm.pattern.revert_logits(lm.heads(h1, h2), frames + 1)
            keep = valid & (codes != config.special_id)
            parts = stream_losses(out, codes, keep)
            loss = parts["ce"].sum() / parts["count"].sum()
        loss.backward()
        h1.grad = h2.grad = None

    step()
    peak = tracked(step, existing_tensors(lm, h1, h2, codes))
    return {"kind": "logits", "seconds": seconds, "frames": frames, "width": width, "threads": threads,
            "float32_logits_mib": 3 * (frames + 1) * CARD * 4 / MIB, "step": peak}


POINTS = {"step": step_point, "logits": logits_point}


def run_point(spec: dict, fresh: bool = True) -> dict:
    """One point in a fresh process (its result is the last line of the child's stdout), or in this one."""
    load = os.getloadavg()[0]
    if not fresh:
        spec = dict(spec)
        threads = torch.get_num_threads()
        try:
            out = POINTS[spec.pop("kind")](**spec)
        finally:
            torch.set_num_threads(threads)
        return {**out, "load": load}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--point", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"point {spec} failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["load"] = load
    return out


# -- fit and extrapolation ---------------------------------------------------------------------------


def features(rows, widths, layers) -> np.ndarray:
    s, d, n = (np.asarray(v, float) for v in (rows, widths, layers))
    return np.stack([np.ones_like(s), d, s * d * n, s * d, s], axis=1)


def fit(points: list[dict]) -> np.ndarray:
    x = features([p["rows"] for p in points], [p["width"] for p in points], [p["main"] + p["sub"] for p in points])
    y = np.asarray([p["step"]["tensor_mib"] for p in points], float)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef


def target_counts(dim: int, heads: int, ffn: int, main: int, sub: int, rank: int = 16) -> dict:
    """Parameters of a released-size LeLM (meta device) and of its LoRA on q/k/v/o (exact: r·(in + out))."""
    from songgeneration.models import build_lelm

    config = lelm_config(dim, main, sub, "released", heads=heads, ffn=ffn)
    lm = build_lelm(config, device="meta")
    qwen = lm.condition_provider.lyric.output_proj.weight.numel() + \
        lm.condition_provider.description.output_proj.weight.numel()
    return {"params": sum(p.numel() for p in lm.parameters()), "qwen": qwen,
            "lora": (main + sub) * 4 * rank * 2 * dim, "prefix": prefix_rows(config), "delay": max(config.delays)}


def estimates(steps: list[dict], logits: list[dict]) -> list[dict]:
    out = []
    coefs = {ckpt: fit([p for p in steps if p["checkpointing"] == ckpt]) for ckpt in sorted(
        {p["checkpointing"] for p in steps})}
    logit_fit = np.polyfit([p["frames"] for p in logits], [p["step"]["tensor_mib"] for p in logits], 1) \
        if len(logits) >= 2 else None
    for name, dim, heads, ffn, main, sub, seconds, source in TARGETS:
        counts = target_counts(dim, heads, ffn, main, sub)
        frames = frames_of(seconds)
        rows = counts["prefix"] + frames + 1 + counts["delay"] + 1
        for ckpt, coef in coefs.items():
            act = float(features([rows], [dim], [main + sub])[0] @ coef)
            e = {"name": name, "dim": dim, "main": main, "sub": sub, "seconds": seconds, "frames": frames,
                 "rows": rows, "source": source, "checkpointing": ckpt, **counts,
                 "weights_bf16": counts["params"] * 2 / MIB, "weights_fp32": counts["params"] * 4 / MIB,
                 "lora_state": counts["lora"] * 16 / MIB, "activations": act,
                 "logits": float(np.polyval(logit_fit, frames)) if logit_fit is not None else float("nan"),
                 "float32_logits": 3 * (frames + 1) * CARD * 4 / MIB}
            e["total_bf16"] = e["weights_bf16"] + e["lora_state"] + act
            e["total_fp32"] = e["weights_fp32"] + e["lora_state"] + act
            out.append(e)
    return out, coefs


# -- report ------------------------------------------------------------------------------------------


def gib(mib: float) -> str:
    return f"{mib / 1024:.2f}"


def render(steps: list[dict], logits: list[dict], est: list[dict], coefs: dict, wall: float) -> str:
    loads = [p["load"] for p in steps + logits]
    lines = [
        SECTION,
        "",
        "`python bench/songgeneration_lora_memory.py` — one LoRA training step of the LeLM as "
        "`songgeneration.bin.train` runs it with `precision: bf16` (the trainer's `compute_loss` under bf16 "
        "autocast, backward, AdamW; LoRA r 16 / alpha 32 / dropout 0.05 on q/k/v/o of both decoders) but with "
        "bf16 base weights, at reduced width D (heads of 128, FFN 5.375·D) and depth N_main + N_sub, random "
        "weights, batch 1, the v2-large condition lengths (600 lyric + 100 description ids + 252 prompt rows = "
        "952 prefixed rows) and delays [0, 250, 250]: a song of L seconds is T = 25·L frames and each decoder "
        "sees S = 952 + T + 252 rows. Each point is a fresh process: a warm-up step on a 2 s song (allocates "
        "the AdamW state), then one step at L under a dispatch-mode tracker that adds up the bytes of every "
        "tensor storage the step creates until it is freed (weights, optimizer state and the batch excluded): "
        "the CPU counterpart of `torch.cuda.max_memory_allocated`. Attention is PyTorch's fused "
        "`scaled_dot_product_attention` (no S×S scores kept).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs (shared); torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}; bench wall time {wall / 60:.1f} min; 1-min load before the points "
        f"{min(loads):.2f}-{max(loads):.2f}.",
        "",
        "| checkpointing | D | N_main + N_sub | parameters (M) | LoRA (M) | L (s) | T | S | step peak (MiB) | "
        "step time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in sorted(steps, key=lambda p: (p["checkpointing"], p["width"], p["main"], p["seconds"])):
        lines.append(f"| {'on' if p['checkpointing'] else 'off'} | {p['width']} | {p['main']} + {p['sub']} | "
                     f"{p['params'] / 1e6:.1f} | {p['trainable'] / 1e6:.3f} | {p['seconds']:g} | {p['frames']} | "
                     f"{p['rows']} | {p['step']['tensor_mib']:.0f} | {p['step']['wall']:.2f} |")
    if logits:
        lines += ["", "The loss's logits alone (three frozen 16,385-way heads on bf16 hidden states of width "
                  f"{logits[0]['width']}, pattern revert, float32 cross-entropy, backward): the `[1, 3, T + 1, "
                  "16385]` float32 tensor the loss builds, and the whole peak of that part (bf16 head outputs, the "
                  "reverted copy, the float32 copy, the log-softmax kept for backward and their gradients):", "",
                  "| L (s) | T | float32 logits (MiB) | logits part peak (MiB) | time (s) |", "|---:|---:|---:|---:|---:|"]
        for p in logits:
            lines.append(f"| {p['seconds']:g} | {p['frames']} | {p['float32_logits_mib']:.0f} | "
                         f"{p['step']['tensor_mib']:.0f} | {p['step']['wall']:.2f} |")
    lines += ["", "Fit of the step peak (MiB) = a + b·D + c·S·D·N + d·S·D + e·S (N = N_main + N_sub):", "",
              "| checkpointing | a | b | c | d | e |", "|---|---:|---:|---:|---:|---:|"]
    for ckpt, c in coefs.items():
        lines.append(f"| {'on' if ckpt else 'off'} | {c[0]:.1f} | {c[1]:.4f} | {c[2]:.3e} | {c[3]:.3e} | "
                     f"{c[4]:.4f} |")
    lines += ["", "Extrapolated (GiB; batch 1, LoRA r 16 on q/k/v/o; LoRA state = fp32 weights + gradients + "
              "AdamW moments, 16 bytes per parameter; activations = the fit at the target's D, N and S; the "
              "logits part is contained in the activations and shown for scale). Targets: "
              + "; ".join(sorted({f"{t[0]}: dim {t[1]}, {t[4]} + {t[5]} layers, from {t[7]}" for t in TARGETS}))
              + ".", "",
              "| model | params (B) | Qwen tables (B) | L (s) | S | checkpointing | weights bf16 | LoRA state | "
              "activations | of which logits | **total, bf16 weights** | total, fp32 weights |",
              "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for e in est:
        lines.append(f"| {e['name']} | {e['params'] / 1e9:.2f} | {e['qwen'] / 1e9:.2f} | {e['seconds']:g} | "
                     f"{e['rows']} | {'on' if e['checkpointing'] else 'off'} | {gib(e['weights_bf16'])} | "
                     f"{gib(e['lora_state'])} | {gib(e['activations'])} | {gib(e['logits'])} | "
                     f"**{gib(e['total_bf16'])}** | {gib(e['total_fp32'])} |")
    lines += ["", "Not included: the CUDA context (0.3-0.6 GiB), the caching allocator's slack (often 10-20 % "
              "above the allocated peak), the data loader. On CUDA the fused attention keeps no S×S scores either; "
              "the CPU's bf16 kernels may keep different temporaries than CUDA's, so the activation terms are "
              "estimates within tens of percent."]
    lines += ["", verdict(est)]
    return "\n".join(lines) + "\n"


def verdict(est: list[dict]) -> str:
    def pick(name, seconds, ckpt):
        return next((e for e in est if e["name"].startswith(name) and e["seconds"] == seconds
                     and e["checkpointing"] == ckpt), None)

    base_on, base_off = pick("base", 150.0, True), pick("base", 150.0, False)
    large_on = pick("v2-large", 270.0, True)
    large150 = pick("v2-large", 150.0, True)
    if not (base_on and base_off and large_on and large150):
        return "Verdict: not enough points for the released sizes."
    slack = lambda e: e["total_bf16"] * 1.15 + 0.6 * 1024  # noqa: E731
    slack_fp32 = lambda e: e["total_fp32"] * 1.15 + 0.6 * 1024  # noqa: E731
    fits = lambda mib: "fits" if mib / 1024 <= TARGET_GIB else "does not fit"  # noqa: E731
    return (f"Verdict, LoRA fine-tuning on one {TARGET_GIB:g} GB GPU with bf16 base weights, batch 1: "
            f"songgeneration_base (assumed dims, {base_on['params'] / 1e9:.2f} B parameters) on 150 s songs needs "
            f"about {gib(base_on['total_bf16'])} GiB with gradient checkpointing "
            f"({gib(slack(base_on))} GiB with the CUDA context and 15 % allocator slack: {fits(slack(base_on))}) and "
            f"{gib(base_off['total_bf16'])} GiB without ({fits(slack(base_off))} with the same margins). "
            f"v2-large ({large_on['params'] / 1e9:.2f} B) with checkpointing needs {gib(large150['total_bf16'])} GiB "
            f"at 150 s and {gib(large_on['total_bf16'])} GiB at 270 s ({fits(slack(large150))} / "
            f"{fits(slack(large_on))} with the margins); base is smaller than v2-large in every released figure "
            "(10 vs 22 GB for inference), so v2-large bounds base from above whatever its exact dims. The trainer as "
            "it stands loads the base weights in float32 (`load_lelm(..., dtype=torch.float32)`; `precision: bf16` "
            f"is autocast only): that adds {gib(base_on['weights_fp32'] - base_on['weights_bf16'])} GiB for base "
            f"and {gib(large_on['weights_fp32'] - large_on['weights_bf16'])} GiB for v2-large (columns "
            f"'total, fp32 weights'): base with checkpointing still {fits(slack_fp32(base_on))} "
            f"({gib(slack_fp32(base_on))} GiB with the margins), v2-large {fits(slack_fp32(large150))} at 150 s "
            f"({gib(slack_fp32(large150))} GiB) and {fits(slack_fp32(large_on))} at 270 s "
            f"({gib(slack_fp32(large_on))} GiB), so bf16 base weights are what makes v2-large fit. The two Qwen-vocabulary tables (frozen, never touched by the step beyond "
            "a row lookup) are a large part of the weights.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[30.0, 60.0, 120.0],
                        help="song lengths (default: 30 60 120)")
    parser.add_argument("--checkpointing", choices=["off", "on"], nargs="+", default=["off", "on"],
                        help="gradient checkpointing settings (default: off on)")
    parser.add_argument("--sizes", default=",".join(f"{d}x{m}+{s}" for d, m, s in SIZES),
                        help="reduced sizes as DxMAIN+SUB, comma-separated (default: %(default)s)")
    parser.add_argument("--conditions", choices=list(CONDITIONS), default="released",
                        help="condition lengths of the measured points (default: released; tiny for tests)")
    parser.add_argument("--num-threads", dest="threads", type=int, default=1, metavar="N",
                        help="intra-op threads per point (default: 1)")
    parser.add_argument("--results", type=Path, default=None, help="also write the raw points as JSON here "
                        "(default: none)")
    parser.add_argument("--from-results", type=Path, default=None,
                        help="render the section from an earlier --results file (measures nothing; default: none)")
    parser.add_argument("--update", type=Path, default=None, help="markdown file to write the section into "
                        "(default: none, print only)")
    add_bool_argument(parser, "--fresh-process", True, "run each point in a fresh Python process (false: in this "
                      "one, for quick checks; allocator state then carries over)")
    parser.add_argument("--point", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.point is not None:
        spec = json.loads(args.point)
        print(json.dumps(POINTS[spec.pop("kind")](**spec)))
        return
    started = time.perf_counter()
    if args.from_results is not None:
        saved = json.loads(args.from_results.read_text(encoding="utf-8"))
        steps, logits, wall = saved["steps"], saved["logits"], saved["wall"]
    else:
        sizes = []
        for item in args.sizes.split(","):
            d, layers = item.split("x")
            m, s = layers.split("+")
            sizes.append((int(d), int(m), int(s)))
        steps, logits = [], []
        for ckpt in args.checkpointing:
            for d, m, s in sizes:
                for seconds in args.seconds:
                    p = run_point({"kind": "step", "seconds": seconds, "width": d, "main": m, "sub": s,
                                   "checkpointing": ckpt == "on", "threads": args.threads,
                                   "conditions": args.conditions}, args.fresh_process)
                    steps.append(p)
                    print(f"checkpointing={ckpt} D={d} N={m}+{s} L={seconds:g}s {p['step']['tensor_mib']:.0f} MiB "
                          f"{p['step']['wall']:.2f}s load={p['load']:.2f}", file=sys.stderr, flush=True)
        for seconds in args.seconds:
            p = run_point({"kind": "logits", "seconds": seconds, "threads": args.threads,
                           "conditions": args.conditions}, args.fresh_process)
            logits.append(p)
            print(f"logits L={seconds:g}s {p['step']['tensor_mib']:.0f} MiB", file=sys.stderr, flush=True)
        wall = time.perf_counter() - started
        if args.results is not None:
            args.results.write_text(json.dumps({"steps": steps, "logits": logits, "wall": wall}, indent=1) + "\n",
                                    encoding="utf-8")
    est, coefs = estimates(steps, logits)
    section = render(steps, logits, est, coefs, wall)
    print(section, end="")
    if args.update is not None:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
