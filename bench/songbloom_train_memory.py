#!/usr/bin/env python3
"""Peak memory of one SongBloom LoRA training step versus song length, and what it means for 24 GB GPUs.

Each point runs in a fresh Python process: a ``mid`` model (dim 512, 8 heads, 8 LM + 4 DiT
layers, patches of 16 frames, latent 64, the released 16,384 sketch ids and 250 + 600 prefix
rows; random weights, fp32) is set up for LoRA training as ``songbloom.training.modes.prepare``
does by default (rank 16 on ``q_proj v_proj to_qkv``, the lyric table's Japanese rows), then one
step (forward + loss + backward; batch 1, a song of L seconds = 25·L frames, a 10 s prompt, 120
lyric symbols) runs once on a 2.56 s song to warm up and once at L, measured:

* the peak-RSS increase of the measured step: free heap returned to the system, the kernel's
  peak-RSS mark reset (``/proc/self/clear_refs``), RSS read before, the peak (``VmHWM``) after;
  on a GPU also ``torch.cuda.max_memory_allocated`` minus the memory allocated before;
* the same for the sketch head alone (classifier + cross-entropy, forward and backward, on the
  LM's output shape): the part of the step that grows with the 16,384 sketch ids, not with the
  model's width or depth.

Per setting (gradient checkpointing off/on, fp32 or bf16 autocast) the increases are fitted as
``a + b·L`` (and ``a + b·L + c·L²``, to see whether attention grows quadratically), and the
released 150 s model (dim 1536, 36 LM + 12 DiT layers) is extrapolated: weights in bf16, LoRA
weights + gradients + AdamW state in fp32, the head term as measured, the rest (the body)
scaled by width x layer-tokens; see the section text for the arithmetic.

    python bench/songbloom_train_memory.py                     # print the section
    python bench/songbloom_train_memory.py --update docs/benchmarks.md

``--update`` writes the section "## SongBloom LoRA training memory" into the file, replacing an
earlier copy of that section and keeping every other one.
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
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from report import cpu_name, update_doc  # noqa: E402
from rss import release_heap, reset_peak, status_mib  # noqa: E402

from songbloom.g2p import tokenize  # noqa: E402
from songbloom.models import LyricBatch, MVSADiTAR, SongBloomConfig, config_dict, full_config  # noqa: E402

SECTION = "## SongBloom LoRA training memory"
MID = dict(block_size=16, latent_dim=64, dim=512, num_heads=8, lm_layers=8, diff_layers=4, num_pitch=16384,
           timestep_features_dim=256, prompt_max_len=250, lyric_max_len=600)
LYRICS = " ".join(["[verse]"] + ["k a e r u n o u t a g a ,", "k i k o e t e k u r u y o ."] * 4
                  + ["[chorus]"] + ["g u w a g u w a g u w a ."] * 5)
FRAME_RATE = 25
FLOW_WEIGHT = 0.1
WARMUP_FRAMES = 64
GIB = 1024 ** 3
MIB = 1024 ** 2
TARGET_GIB = 24.0
RELEASED_SECONDS = 150.0


# -- model and step ------------------------------------------------------------------------------


def mid_config():
    return SongBloomConfig.from_dict(config_dict(**MID), source="mid")


def lora_model(model: MVSADiTAR, vocab):
    """LoRA as training sets it up; returns (model to train, how)."""
    try:
        from songbloom.training.modes import TrainingMode, prepare
    except ImportError:
        from shirabe.train.lora import resolve_targets, wrap_lora

        wrapped = wrap_lora(model, resolve_targets(model, ("q_proj", "v_proj", "to_qkv")), 16, 32.0, 0.05)
        return wrapped, "shirabe.train.lora.wrap_lora (rank 16, alpha 32) on q_proj v_proj to_qkv"
    return prepare(model, TrainingMode(mode="lora"), vocab), "songbloom.training.modes.prepare(mode='lora')"


def frames_of(seconds: float, block: int) -> int:
    return max(block, int(seconds * FRAME_RATE) // block * block)


def make_batch(config, frames: int, seed: int = 0) -> dict:
    m = config.model
    g = torch.Generator().manual_seed(seed)
    tokens = tokenize(LYRICS, m.vocab, max_sentences=m.max_sentence_per_structure)
    return {"x_sketch": torch.randint(0, m.num_pitch, (1, frames), generator=g),
            "x_latent": torch.randn(1, m.latent_dim, frames, generator=g),
            "x_len": torch.tensor([frames]),
            "lyrics": LyricBatch.from_tokens([tokens], m.lyric_max_len),
            "prompt_latents": torch.randn(1, m.latent_dim, 250, generator=g)}


def autocast(device: torch.device, precision: str):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_step(model, batch: dict, device: torch.device, precision: str, ignore_id: int) -> None:
    with autocast(device, precision):
        out = model(batch["x_sketch"].to(device), batch["x_latent"].to(device), batch["x_len"].to(device),
                    batch["lyrics"].to(device), batch["prompt_latents"].to(device))
        ce = F.cross_entropy(out.ar_logit.float().reshape(-1, out.ar_logit.shape[-1]), out.ar_target.reshape(-1),
                             ignore_index=ignore_id)
        loss = ce + FLOW_WEIGHT * F.mse_loss(out.nar_pred.float(), out.nar_target.float())
    loss.backward()


def head_step(classifier: torch.nn.Module, hidden: torch.Tensor, target: torch.Tensor, device: torch.device,
              precision: str) -> None:
    with autocast(device, precision):
        logits = classifier(hidden)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1))
    loss.backward()


# -- measuring in a child process ----------------------------------------------------------------


def measure(fn, device: torch.device) -> dict:
    """Peak-RSS increase (MiB) of ``fn()``; on CUDA also the allocator's peak increase."""
    release_heap()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        cuda_before = torch.cuda.memory_allocated(device)
    reset = reset_peak()
    before = status_mib("VmRSS")
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    peak = status_mib("VmHWM")
    out = {"rss_mib": peak - before, "baseline_mib": before, "peak_reset": reset, "wall": wall}
    if device.type == "cuda":
        out["cuda_mib"] = (torch.cuda.max_memory_allocated(device) - cuda_before) / MIB
    return out


def measure_here(seconds: float, checkpointing: bool, precision: str, threads: int, device_name: str) -> dict:
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    config = mid_config()
    torch.manual_seed(0)
    base = MVSADiTAR(config.model)
    model, how = lora_model(base, config.model.vocab)
    model.to(device).train()
    base.gradient_checkpointing = checkpointing
    m = config.model

    def zero():
        for p in model.parameters():
            p.grad = None

    warm = make_batch(config, WARMUP_FRAMES, seed=1)
    train_step(model, warm, device, precision, m.ignore_id)
    zero()
    frames = frames_of(seconds, m.block_size)
    batch = make_batch(config, frames)
    step = measure(lambda: train_step(model, batch, device, precision, m.ignore_id), device)
    zero()

    # the sketch head alone, on the LM output's shape: ar_logit has frames + 1 rows
    classifier = base.skeleton_classifier
    g = torch.Generator().manual_seed(2)
    rows = frames + 1
    hidden = torch.randn(1, rows, m.dim, generator=g).to(device).requires_grad_(True)
    target = torch.randint(0, m.num_classes, (1, rows), generator=g).to(device)
    head_step(classifier, hidden[:, :WARMUP_FRAMES], target[:, :WARMUP_FRAMES], device, precision)
    hidden.grad = None
    head = measure(lambda: head_step(classifier, hidden, target, device, precision), device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"seconds": seconds, "frames": frames, "checkpointing": checkpointing, "precision": precision,
            "threads": threads, "device": device_name, "lora": how, "trainable": trainable,
            "params": sum(p.numel() for p in model.parameters()), "step": step, "head": head}


def child(spec: str) -> None:
    s = json.loads(spec)
    print(json.dumps(measure_here(s["seconds"], s["checkpointing"], s["precision"], s["threads"], s["device"])),
          flush=True)


def run_point(seconds: float, checkpointing: bool, precision: str, threads: int, device: str,
              timeout: float = 1200.0) -> dict:
    spec = json.dumps({"seconds": seconds, "checkpointing": checkpointing, "precision": precision,
                       "threads": threads, "device": device})
    code = (f"import sys; sys.path.insert(0, {str(BENCH)!r}); import songbloom_train_memory as b; "
            "b.child(sys.argv[1])")
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", code, spec], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"point {spec} failed (exit {proc.returncode}): {tail}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load
    return result


def attention_kernels(device_name: str, precision: str, heads: int = 8, head_dim: int = 64, seq: int = 512) -> list[str]:
    """The ``scaled_dot_product_attention`` kernels a causal forward + backward of the LM's head shape
    runs on this device and precision (flash / memory-efficient ones keep no score matrix)."""
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(device_name)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    q = torch.randn(1, heads, seq, head_dim, device=device, requires_grad=True)
    with profile(activities=activities) as prof:
        with autocast(device, precision):
            out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        out.float().sum().backward()
    return sorted({e.key for e in prof.key_averages() if "scaled_dot_product" in e.key and "backward" not in e.key
                   and e.key != "aten::scaled_dot_product_attention"})


def fused(kernels: list[str]) -> bool:
    return bool(kernels) and all(any(w in k for w in ("flash", "efficient", "cudnn")) for k in kernels)


# -- fits and the extrapolation ------------------------------------------------------------------


def fit(xs, ys, degree: int) -> list[float]:
    """Least-squares coefficients, lowest power first."""
    return [float(c) for c in np.polyfit(np.asarray(xs, float), np.asarray(ys, float), degree)[::-1]]


def layer_tokens_per_second(lm_layers: int, diff_layers: int, block: int) -> float:
    """Layer-token positions per song second: the LM sees P + 1 positions per patch of P frames,
    the DiT 3P + 2 tokens per patch."""
    patches = FRAME_RATE / block
    return lm_layers * patches * (block + 1) + diff_layers * patches * (3 * block + 2)


def kept_inputs_mib(m, seconds: float) -> float:
    """What gradient checkpointing keeps: every LM and DiT layer's input, fp32 (the residual stream
    stays fp32 under autocast), for a song of ``seconds``."""
    patches = int(seconds * FRAME_RATE) // m.block_size
    lm = m.prompt_max_len + m.lyric_max_len + 1 + patches * (m.block_size + 1)
    dit = patches * (3 * m.block_size + 2)
    return 4 * m.dim * (m.lm_layers * lm + m.diff_layers * dit) / MIB


def released_counts() -> dict:
    """Parameters of the released model and the trainable ones under the default LoRA set-up (meta)."""
    config = full_config()
    with torch.device("meta"):
        model = MVSADiTAR(config.model)
    total = sum(p.numel() for p in model.parameters())
    wrapped, _ = lora_model(model, config.model.vocab)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    return {"config": config, "params": total, "trainable": trainable}


def extrapolate(points: list[dict], released: dict, key: str = "rss_mib", kernels: dict | None = None) -> dict:
    """Per setting: fits of the body (step - head) and the head, and the released model at 150 s."""
    mid, full = mid_config().model, released["config"].model
    width = full.dim / mid.dim
    slope_scale = width * (layer_tokens_per_second(full.lm_layers, full.diff_layers, full.block_size)
                           / layer_tokens_per_second(mid.lm_layers, mid.diff_layers, mid.block_size))
    intercept_scale = width * full.lm_layers / mid.lm_layers  # the 851-row prefix goes through the LM only
    quad_scale = (full.num_heads * full.lm_layers) / (mid.num_heads * mid.lm_layers)
    weights = released["params"] * 2 / MIB  # bf16
    lora_state = released["trainable"] * 16 / MIB  # fp32 weight, gradient, AdamW m and v
    def kept_inputs_mid(seconds: float) -> float:
        return kept_inputs_mib(mid, seconds)

    out = {}
    for setting in sorted({(p["checkpointing"], p["precision"]) for p in points}):
        rows = sorted((p for p in points if (p["checkpointing"], p["precision"]) == setting),
                      key=lambda p: p["seconds"])
        xs = [p["frames"] / FRAME_RATE for p in rows]
        step = [p["step"][key] for p in rows]
        head = [p["head"][key] for p in rows]
        body = [s - h for s, h in zip(step, head)]
        lin = fit(xs, step, 1)
        quad = fit(xs, step, 2) if len(xs) >= 3 else [lin[0], lin[1], 0.0]
        body_lin, head_lin = fit(xs, body, 1), fit(xs, head, 1)
        body_quad = fit(xs, body, 2) if len(xs) >= 3 else [*body_lin, 0.0]
        # a quadratic term only where attention keeps its L x L scores (not a fused kernel) and the
        # term explains a real share of the longest point
        top = xs[-1]
        scores_kept = not fused((kernels or {}).get(setting[1], []))
        quadratic = scores_kept and body_quad[2] > 0 and body_quad[2] * top * top > 0.05 * max(body[-1], 1e-9)
        L = RELEASED_SECONDS
        upper = body_lin[0] * intercept_scale + body_lin[1] * slope_scale * L
        if quadratic:
            upper = (body_quad[0] * intercept_scale + body_quad[1] * slope_scale * L
                     + body_quad[2] * quad_scale * L * L)
        if setting[0]:
            # checkpointing: the kept layer inputs grow with depth, the rest (one layer recomputed at a
            # time, embeddings, the DiT's inputs) with width only
            body_mid = body_lin[0] + body_lin[1] * L
            estimate = width * max(body_mid - kept_inputs_mid(L), 0.0) + kept_inputs_mib(full, L)
        else:
            estimate = upper
        head_full = head_lin[0] + head_lin[1] * L
        base = weights + lora_state + head_full
        out[setting] = {"xs": xs, "step": step, "head": head, "lin": lin, "quad": quad, "body_lin": body_lin,
                        "head_lin": head_lin, "quadratic": quadratic, "upper": upper, "estimate": estimate,
                        "head_full": head_full, "weights": weights, "lora_state": lora_state,
                        "total": base + estimate, "total_upper": base + upper, "slope_scale": slope_scale,
                        "intercept_scale": intercept_scale, "fits": (base + estimate) / 1024 <= TARGET_GIB,
                        "fits_upper": (base + upper) / 1024 <= TARGET_GIB}
    return out


# -- report ------------------------------------------------------------------------------------------


def gib(mib: float) -> str:
    return f"{mib / 1024:.2f}"


def render(points: list[dict], ex: dict, released: dict, args, wall: float, kernels: dict) -> str:
    mid, full = mid_config().model, released["config"].model
    first = points[0]
    device = first["device"]
    has_cuda = "cuda_mib" in first["step"]
    loads = [p["load"] for p in points]
    lines = [
        SECTION,
        "",
        "`python bench/songbloom_train_memory.py` — one LoRA training step (forward, loss = CE + 0.1·flow MSE, "
        f"backward) of a mid-size SongBloom (dim {mid.dim}, {mid.num_heads} heads, {mid.lm_layers} LM + "
        f"{mid.diff_layers} DiT layers, {mid.num_pitch:,} sketch ids, prefix {mid.prompt_max_len} + "
        f"{mid.lyric_max_len}, patches of {mid.block_size}; {first['params'] / 1e6:.1f} M parameters, random "
        f"weights, fp32) set up by {first['lora']} ({first['trainable']:,} parameters take gradients), batch 1, "
        "a 10 s prompt and 120 lyric symbols, versus the song's length L. Each point is a fresh process: a "
        f"{WARMUP_FRAMES / FRAME_RATE:.2f} s warm-up step, then free heap returned to the system, the "
        "kernel's peak-RSS mark reset, and the peak-RSS increase of one step at L"
        + (" and `torch.cuda.max_memory_allocated` minus the memory allocated before" if has_cuda else "")
        + ". Head = the same measurement for the sketch classifier + cross-entropy alone on the LM output's shape "
        "(it grows with the 16,384 sketch ids, not with the model's width or depth); body = step - head. bf16 = "
        f"`torch.autocast(bfloat16)` over fp32 weights. Device {device}, {first['threads']} thread(s).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}; bench wall time {wall / 60:.1f} min; 1-min load before the points "
        f"{min(loads):.2f}-{max(loads):.2f}.",
        "",
        "| checkpointing | precision | L (s) | frames | LM positions | step peak increase (MiB) | head (MiB) | "
        "body (MiB) | " + ("CUDA peak increase (MiB) | " if has_cuda else "") + "step time (s) | 1-min load before |",
        "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if has_cuda else "") + "---:|---:|",
    ]
    prefix = mid.prompt_max_len + mid.lyric_max_len + 1
    for p in sorted(points, key=lambda p: (p["checkpointing"], p["precision"], p["seconds"])):
        s, h = p["step"], p["head"]
        positions = prefix + p["frames"] // mid.block_size * (mid.block_size + 1)
        cuda = f"{s['cuda_mib']:.0f} | " if has_cuda else ""
        lines.append(f"| {'on' if p['checkpointing'] else 'off'} | {p['precision']} | {p['frames'] / FRAME_RATE:g} | "
                     f"{p['frames']} | {positions} | {s['rss_mib']:.0f} | {h['rss_mib']:.0f} | "
                     f"{s['rss_mib'] - h['rss_mib']:.0f} | {cuda}{s['wall']:.1f} | {p['load']:.2f} |")
    lines += [
        "",
        "Fits (MiB, L in song seconds): step = a + b·L and a + b·L + c·L²; body and head = a + b·L.",
        "",
        "| checkpointing | precision | step a | step b | step c (quadratic fit) | body a | body b | head a | head b |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (ckpt, precision), e in ex.items():
        lines.append(f"| {'on' if ckpt else 'off'} | {precision} | {e['lin'][0]:.0f} | {e['lin'][1]:.2f} | "
                     f"{e['quad'][2]:+.4f} | {e['body_lin'][0]:.0f} | {e['body_lin'][1]:.2f} | "
                     f"{e['head_lin'][0]:.0f} | {e['head_lin'][1]:.2f} |")
    any_e = next(iter(ex.values()))
    lm_rate = layer_tokens_per_second(full.lm_layers, full.diff_layers, full.block_size)
    mid_rate = layer_tokens_per_second(mid.lm_layers, mid.diff_layers, mid.block_size)
    quadratic = [f"{'on' if k[0] else 'off'}/{k[1]}" for k, e in ex.items() if e["quadratic"]]
    lines += [
        "",
        f"**Released model, {RELEASED_SECONDS:g} s songs, LoRA, bf16 weights** (dim {full.dim}, "
        f"{full.lm_layers} LM + {full.diff_layers} DiT layers, {released['params'] / 1e9:.2f} B parameters; "
        f"{released['trainable'] / 1e6:.2f} M take gradients under the same LoRA set-up). Weights: "
        f"{released['params'] / 1e9:.2f} B x 2 bytes = {gib(any_e['weights'])} GiB (the VAE is not loaded: "
        "training reads precomputed latents). LoRA weights, gradients and AdamW moments in fp32: 16 bytes per "
        f"trainable parameter = {gib(any_e['lora_state'])} GiB. Head: its fit at {RELEASED_SECONDS:g} s as "
        "measured (same 16,384 sketch ids, same rows per second; the classifier's 1536-wide hidden layer adds "
        "little next to the 16,385 logits per row). Body, two ways: the *upper bound* scales the fit's slope b "
        f"by width x layer-tokens per second ({full.dim}/{mid.dim} x {lm_rate:.0f}/{mid_rate:.0f} = "
        f"{any_e['slope_scale']:.2f}; per patch of {full.block_size} frames the LM sees {full.block_size + 1} "
        f"positions and the DiT {3 * full.block_size + 2} tokens) and the intercept a (the 851-row prefix through "
        f"the LM, fixed costs) by width x LM depth ({any_e['intercept_scale']:.2f}): every byte treated as "
        "per-layer. The *estimate* is the same without checkpointing (there nearly every byte is per-layer); "
        "with checkpointing it splits the body into the layer inputs checkpointing keeps (fp32, computed: "
        "width x (LM positions x LM layers + DiT tokens x DiT layers) x 4 bytes), which grow with depth, and the "
        "rest (the one layer recomputed at a time during backward, embeddings, the DiT's inputs), scaled by "
        "width only. Attention: " + "; ".join(f"{p}: {', '.join(k) or 'unknown'}" for p, k in kernels.items())
        + (" — fused kernels that keep no L x L score matrix, so the body is extrapolated linearly (the "
           "quadratic fits' c is noise of the RSS measurement)" if all(fused(k) for k in kernels.values()) else "")
        + (f"; a quadratic term (scores kept as L x L, scaled by heads x LM depth) is used for "
           f"{', '.join(quadratic)}." if quadratic else "."),
        "",
        "| checkpointing | measured in | weights | LoRA state | head | body estimate | **total estimate** | "
        f"body upper bound | total upper bound | fits {TARGET_GIB:g} GiB (estimate / upper) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (ckpt, precision), e in ex.items():
        lines.append(f"| {'on' if ckpt else 'off'} | {precision} | {gib(e['weights'])} | {gib(e['lora_state'])} | "
                     f"{gib(e['head_full'])} | {gib(e['estimate'])} | **{gib(e['total'])}** | {gib(e['upper'])} | "
                     f"{gib(e['total_upper'])} | {'yes' if e['fits'] else 'no'} / "
                     f"{'yes' if e['fits_upper'] else 'no'} |")
    lines += [
        "",
        "(GiB.) Assumptions: activation memory per layer grows with tokens x width (the MLP is 4x wide in both "
        "models; heads x head size = width), the released model uses the same patch size, prefix and sketch "
        "ids as the mid model, and batch 1 (activations grow with the batch's total song length). The bf16 rows "
        "are measured under autocast over fp32 weights, where the residual stream, norms, softmax and losses stay "
        "fp32; with the weights themselves in bf16 the activations are at most as large, so those rows are on the "
        "safe side for a bf16 run. Not included: the CUDA context (0.3-0.6 GiB), the caching allocator's slack "
        "(reserved above allocated, often 10-20 %) and the data loader.",
    ]
    verdict = {k[0]: e for k, e in ex.items() if k[1] == "bf16"}
    if verdict:
        parts = []
        if True in verdict:
            e = verdict[True]
            parts.append(f"with gradient checkpointing about {gib(e['total'])} GiB (at most {gib(e['total_upper'])} "
                         f"GiB): {'it fits' if e['fits'] else 'it does not fit'}")
        if False in verdict:
            e = verdict[False]
            parts.append(f"without checkpointing about {gib(e['total'])} GiB: "
                         f"{'it fits' if e['fits'] else 'it does not fit'}")
        lines += ["", f"Verdict for a {TARGET_GIB:g} GB card (24 GiB on an RTX 3090/4090), one {RELEASED_SECONDS:g} s "
                  "song per step, LoRA in bf16: " + "; ".join(parts) + ", before the CUDA context and allocator "
                  "slack."]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 10.0, 20.0, 40.0],
                        help="song lengths (default: 5 10 20 40)")
    parser.add_argument("--checkpointing", choices=["off", "on"], nargs="+", default=["off", "on"],
                        help="gradient checkpointing settings (default: off on)")
    parser.add_argument("--precisions", choices=["fp32", "bf16"], nargs="+", default=["fp32", "bf16"],
                        help="fp32, or bf16 autocast (default: fp32 bf16)")
    parser.add_argument("--num-threads", dest="threads", type=int, default=1, metavar="N",
                        help="intra-op threads per point (default: 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda (default: auto)")
    parser.add_argument("--results", type=Path, default=None, help="also write the raw points as JSON here")
    parser.add_argument("--update", type=Path, default=None, help="markdown file to write the section into")
    parser.add_argument("--note", default="", help="extra line under the tables")
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    started = time.perf_counter()
    points = []
    for ckpt in args.checkpointing:
        for precision in args.precisions:
            for seconds in args.seconds:
                p = run_point(seconds, ckpt == "on", precision, args.threads, device)
                points.append(p)
                print(f"checkpointing={ckpt} {precision} L={seconds:g}s step +{p['step']['rss_mib']:.0f} MiB "
                      f"head +{p['head']['rss_mib']:.0f} MiB {p['step']['wall']:.1f}s load={p['load']:.2f}",
                      file=sys.stderr, flush=True)
    released = released_counts()
    key = "cuda_mib" if device.startswith("cuda") else "rss_mib"
    kernels = {p: attention_kernels(device, p) for p in args.precisions}
    ex = extrapolate(points, released, key, kernels)
    if args.results is not None:
        args.results.write_text(json.dumps(points, indent=1) + "\n", encoding="utf-8")
    section = render(points, ex, released, args, time.perf_counter() - started, kernels)
    print(section, end="")
    if args.update is not None:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
