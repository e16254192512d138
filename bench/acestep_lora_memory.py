#!/usr/bin/env python3
"""Peak memory and time of one ACE-Step LoRA training step versus clip length, with and without the latent cache.

Each point runs in a fresh Python process. A reduced-width ACE-Step transformer (inner width D =
heads x 128 as released, N blocks, a tiny lyric encoder; random weights) is stored in bf16 and
wrapped with LoRA exactly as ``acestep.bin.train --base-dtype bf16`` does
(:func:`acestep.training.lora.wrap_transformer`, rank 16, the released targets without
``speaker_embedder``); one training step (the trainer's :func:`acestep.training.loss.compute_loss`
under bf16 autocast, backward, AdamW) runs once on a short clip to warm up (AdamW state allocated),
then once on a clip of L seconds (T = L x 44100 / 4096 latent frames, 64 prompt tokens, 400 lyric
tokens) and is measured:

* CPU: the peak of the bytes held by the tensors the step creates (:class:`PeakTensorMemory`, a
  dispatch mode that sees every op's outputs and a weakref finalizer per storage: the CPU
  counterpart of ``torch.cuda.max_memory_allocated``; PyTorch's CPU allocator is invisible to
  ``tracemalloc``), and, from a second identical step, its peak-RSS increase (free heap returned to
  the system, the kernel's peak-RSS mark reset via ``/proc/self/clear_refs``, ``VmRSS`` before,
  ``VmHWM`` after; this also counts the C library's fragmentation and oneDNN's scratch buffers, so it
  is noisier) and its time; on CUDA ``torch.cuda.max_memory_allocated`` minus the memory allocated
  before;
* the released lyric encoder (with its embeddings and ``lyric_proj`` to the released width) alone,
  its LoRA on ``linear_q/k/v``, one step on 400 lyric tokens: its peak is added to the transformer's
  (an upper bound: its saved activations and the transformer's do not all coexist);
* without the cache, the released trainer also encodes the clip with the Music-DCAE each step: the
  peak increase of ``MusicDCAE.encode`` of L seconds (released DCAE config, random weights, fp32,
  no gradients) is measured the same way, and the DCAE + vocoder + UMT5 weights (fp32, as the
  released trainer holds them) are counted.

The step's tensor peaks (CUDA: allocator peaks) are fitted per gradient-checkpointing setting as
``a + b·D + c·T·D·N + d·T·D + e·T`` (MiB; the per-block activations, the per-token parts outside the
blocks, and the lyric encoder's share) and extrapolated to the released transformer (D 2560, N 24,
3.3 B parameters): bf16 weights, LoRA weights + gradients + AdamW moments in fp32 (16 bytes per
trainable parameter, rank 16 and 64), the fitted activations plus the lyric encoder's peak.

    python bench/acestep_lora_memory.py                       # print the section
    python bench/acestep_lora_memory.py --update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from report import cpu_name, update_doc  # noqa: E402
from rss import release_heap, reset_peak, status_mib  # noqa: E402

SECTION = "## ACE-Step LoRA training memory"
FRAMES_PER_SECOND = 44100 / 4096
HEAD_DIM = 128
RELEASED = {"width": 2560, "layers": 24}
TARGETS = ("linear_q", "linear_k", "linear_v", "to_q", "to_k", "to_v", "to_out.0")
TEXT_TOKENS = 64
LYRIC_TOKENS = 400
WARMUP_FRAMES = 32
TARGET_GIB = 12.0
MIB = 1024 ** 2
SIZES = ((256, 2), (512, 2), (512, 4))


def frames_of(seconds: float) -> int:
    return max(1, int(seconds * FRAMES_PER_SECOND))


def transformer_config(width: int, layers: int, lyric: str = "released"):
    from acestep.models import TransformerConfig
    from acestep.models.config import LyricEncoderConfig

    heads = max(1, width // HEAD_DIM)
    if lyric == "released":
        return TransformerConfig(num_layers=layers, num_attention_heads=heads, attention_head_dim=HEAD_DIM,
                                 ssl_encoder_depths=(min(8, layers - 1),) * 2)
    hidden = 32  # tiny: for the quick test
    return TransformerConfig(num_layers=layers, num_attention_heads=heads, attention_head_dim=width // heads,
                             ssl_encoder_depths=(0, 0), ssl_latent_dims=(16, 16), lyric_hidden_size=hidden,
                             lyric_encoder=LyricEncoderConfig(hidden, 2, 2 * hidden, 1))


def lora_model(config, rank: int, checkpointing: bool, precision: str = "bf16"):
    from acestep.models import ACEStepTransformer
    from acestep.training.lora import LoraSpec, wrap_transformer

    torch.manual_seed(0)
    model = ACEStepTransformer(config)
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    model.gradient_checkpointing = checkpointing
    return wrap_transformer(model, LoraSpec(rank, 32.0, True, TARGETS)).train()


def make_batch(frames: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"ids": [f"clip{seed}"], "latents": torch.randn(1, 8, 16, frames, generator=g),
            "attention_mask": torch.ones(1, frames), "text_hidden": torch.randn(1, TEXT_TOKENS, 768, generator=g),
            "text_mask": torch.ones(1, TEXT_TOKENS, dtype=torch.long),
            "lyric_ids": torch.randint(3, 6000, (1, LYRIC_TOKENS), generator=g),
            "lyric_mask": torch.ones(1, LYRIC_TOKENS, dtype=torch.long), "speaker": torch.zeros(1, 512)}


def train_step(model, optimizer, batch: dict, device: torch.device, precision: str = "bf16") -> None:
    from acestep.training.loss import compute_loss

    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss, _ = compute_loss(model, batch, True, device=device)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


# -- measuring ---------------------------------------------------------------------------------------


class PeakTensorMemory(TorchDispatchMode):
    """The peak of the bytes held by tensor storages that ops create while active (``peak``, ``current``).

    Every op's outputs are seen through the dispatcher (forward, backward and optimizer alike); a new storage
    counts from its creation until its last reference goes (a weakref finalizer). Storages of ``existing``
    tensors (weights, optimizer state) are never counted, so in-place updates of them add nothing. This is
    the CPU counterpart of ``torch.cuda.max_memory_allocated`` without the allocator's rounding and caching.
    """

    def __init__(self, existing=()):
        super().__init__()
        self.known = {t.untyped_storage().data_ptr() for t in existing if isinstance(t, torch.Tensor)}
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and not t.is_meta:
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key == 0 or key in self.known or key in self.live:
                    continue
                self.live[key] = storage.nbytes()
                self.current += storage.nbytes()
                weakref.finalize(storage, self._free, key)
        self.peak = max(self.peak, self.current)
        return out


def existing_tensors(*objects) -> list[torch.Tensor]:
    """Parameters, buffers and optimizer state of modules/optimizers, and plain tensors."""
    out = []
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            out += list(obj.parameters()) + list(obj.buffers())
        elif isinstance(obj, torch.optim.Optimizer):
            out += [v for state in obj.state.values() for v in state.values() if torch.is_tensor(v)]
        elif isinstance(obj, dict):
            out += [v for v in obj.values() if torch.is_tensor(v)]
        elif torch.is_tensor(obj):
            out.append(obj)
    return out


def measure(fn, device: torch.device, existing=()) -> dict:
    """Peak increases (MiB) and wall time of ``fn()``: tensor storages (:class:`PeakTensorMemory`; on CPU),
    peak RSS, and on CUDA the allocator's peak."""
    if device.type == "cpu":
        tracker = PeakTensorMemory(existing)
        with tracker:
            fn()
        tensor_mib = tracker.peak / MIB
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
    out = {"rss_mib": status_mib("VmHWM") - before, "baseline_mib": before, "peak_reset": reset, "wall": wall}
    if device.type == "cpu":
        out["tensor_mib"] = tensor_mib
    if device.type == "cuda":
        out["cuda_mib"] = (torch.cuda.max_memory_allocated(device) - cuda_before) / MIB
    return out


def default_precision(device_name: str) -> str:
    return "bf16"


def step_point(seconds: float, width: int, layers: int, checkpointing: bool, rank: int = 16, threads: int = 1,
               device_name: str = "cpu", lyric: str = "tiny", precision: str | None = None) -> dict:
    """One measured LoRA step (see the module docstring)."""
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    precision = precision or default_precision(device_name)
    model = lora_model(transformer_config(width, layers, lyric), rank, checkpointing, precision).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.8, 0.9), weight_decay=1e-2)
    train_step(model, optimizer, make_batch(WARMUP_FRAMES, seed=1), device, precision)
    frames = frames_of(seconds)
    batch = make_batch(frames)
    step = measure(lambda: train_step(model, optimizer, batch, device, precision), device,
                   existing_tensors(model, optimizer, batch))
    return {"kind": "step", "seconds": seconds, "frames": frames, "width": width, "layers": layers,
            "checkpointing": checkpointing, "rank": rank, "threads": threads, "device": device_name,
            "precision": precision,
            "trainable": sum(p.numel() for p in params), "params": sum(p.numel() for p in model.parameters()),
            "step": step}


class LyricPart(torch.nn.Module):
    """The released transformer's lyric branch: embeddings, the Conformer and ``lyric_proj``."""

    def __init__(self, width: int):
        super().__init__()
        from acestep.models import TransformerConfig
        from acestep.models.lyric_encoder import LyricEncoder

        config = TransformerConfig()
        self.lyric_embs = torch.nn.Embedding(config.lyric_encoder_vocab_size, config.lyric_hidden_size)
        self.lyric_encoder = LyricEncoder(config.lyric_hidden_size, config.lyric_encoder)
        self.lyric_proj = torch.nn.Linear(config.lyric_hidden_size, width)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.lyric_proj(self.lyric_encoder(self.lyric_embs(ids), mask))


def lyric_point(rank: int = 16, threads: int = 1, device_name: str = "cpu", width: int = RELEASED["width"],
                tokens: int = LYRIC_TOKENS, precision: str | None = None) -> dict:
    """Peak of one LoRA step of the released lyric branch alone on ``tokens`` lyric tokens."""
    from acestep.training.lora import LoraSpec, wrap_transformer

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    precision = precision or default_precision(device_name)
    torch.manual_seed(0)
    part = LyricPart(width)
    if precision == "bf16":
        part = part.to(torch.bfloat16)
    model = wrap_transformer(part, LoraSpec(rank, 32.0, True, ("linear_q", "linear_k", "linear_v"))).to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 6000, (1, tokens), generator=g).to(device)
    mask = torch.ones(1, tokens, dtype=torch.long, device=device)

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(ids, mask).float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    peak = measure(step, device, existing_tensors(model, optimizer, ids, mask))
    return {"kind": "lyric", "tokens": tokens, "rank": rank, "threads": threads, "device": device_name,
            "precision": precision, "trainable": sum(p.numel() for p in params), "step": peak}


def dcae_point(seconds: float, threads: int = 1, device_name: str = "cpu", released: bool = True) -> dict:
    """Peak increase of one Music-DCAE encode of ``seconds`` of 48 kHz stereo (no gradients)."""
    from acestep.dcae import MusicDCAE
    from acestep.dcae.loading import build_dcae, build_vocoder

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    if released:
        pipe = MusicDCAE(build_dcae(device=device), build_vocoder(device=device)).eval()
    else:
        pipe = MusicDCAE.from_checkpoint_dir(ROOT / "tests" / "fixtures" / "acestep_dcae_tiny", device)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        pipe.encode((torch.randn(1, 2, 48000, generator=g) * 0.1).to(device), sr=48000)
        audio = (torch.randn(1, 2, int(seconds * 48000), generator=g) * 0.1).to(device)
        encode = measure(lambda: pipe.encode(audio, sr=48000), device, existing_tensors(pipe, audio))
    return {"kind": "dcae", "seconds": seconds, "threads": threads, "device": device_name, "step": encode}


def child(spec: str) -> None:
    s = json.loads(spec)
    kind = s.pop("kind")
    point = {"step": step_point, "dcae": dcae_point, "lyric": lyric_point}[kind]
    print(json.dumps(point(**s)), flush=True)


def run_point(spec: dict, timeout: float = 1800.0) -> dict:
    code = (f"import sys; sys.path.insert(0, {str(BENCH)!r}); import acestep_lora_memory as b; "
            "b.child(sys.argv[1])")
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"point {spec} failed (exit {proc.returncode}): {tail}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load
    return result


# -- fit and extrapolation ---------------------------------------------------------------------------


def features(frames, width, layers) -> np.ndarray:
    """Columns of the activation model: 1, D, T·D·N, T·D, T."""
    t, d, n = (np.asarray(x, float) for x in (frames, width, layers))
    return np.stack([np.ones_like(t), d, t * d * n, t * d, t], axis=-1)


def fit_activations(points: list[dict], key: str = "tensor_mib") -> np.ndarray:
    """Least-squares coefficients of :func:`features` for the step increases of ``points``."""
    x = features([p["frames"] for p in points], [p["width"] for p in points], [p["layers"] for p in points])
    y = np.asarray([p["step"][key] for p in points], float)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef


def predict(coef: np.ndarray, frames: float, width: int, layers: int) -> float:
    return float(features([frames], [width], [layers])[0] @ coef)


def released_counts() -> dict:
    """Parameters of the released transformer, its LoRA (rank 16 and 64), the DCAE, vocoder and UMT5 (meta)."""
    from transformers import UMT5Config, UMT5EncoderModel

    from acestep.dcae.loading import build_dcae, build_vocoder
    from acestep.models import ACEStepTransformer, TransformerConfig
    from acestep.training.lora import LoraSpec, wrap_transformer

    out = {}
    for rank in (16, 64):
        with torch.device("meta"):
            model = ACEStepTransformer(TransformerConfig())
        out["params"] = sum(p.numel() for p in model.parameters())
        wrapped = wrap_transformer(model, LoraSpec(rank, 32.0, True, TARGETS))
        out[f"lora{rank}"] = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    out["dcae"] = sum(p.numel() for p in build_dcae(device="meta").parameters())
    out["vocoder"] = sum(p.numel() for p in build_vocoder(device="meta").parameters())
    with torch.device("meta"):
        umt5 = UMT5EncoderModel(UMT5Config(vocab_size=256384, d_model=768, d_kv=64, d_ff=2048, num_layers=12,
                                           num_heads=12))
    out["umt5"] = sum(p.numel() for p in umt5.parameters())
    return out


def estimates(steps: list[dict], dcae: list[dict], lyric: float, counts: dict, key: str, seconds: float) -> dict:
    """Per checkpointing setting and rank: the released model's memory at ``seconds`` (MiB)."""
    frames = frames_of(seconds)
    dcae_fit = np.polyfit([p["seconds"] for p in dcae], [p["step"][key] for p in dcae], 1) if len(dcae) >= 2 \
        else None
    encode = float(np.polyval(dcae_fit, seconds)) if dcae_fit is not None else float("nan")
    frozen = (counts["dcae"] + counts["vocoder"] + counts["umt5"]) * 4 / MIB
    out = {}
    for ckpt in sorted({p["checkpointing"] for p in steps}):
        coef = fit_activations([p for p in steps if p["checkpointing"] == ckpt], key)
        act = predict(coef, frames, RELEASED["width"], RELEASED["layers"])
        for rank in (16, 64):
            weights = counts["params"] * 2 / MIB
            lora_state = counts[f"lora{rank}"] * 16 / MIB
            cached = weights + lora_state + act + lyric
            uncached = cached + frozen + max(0.0, encode - act - lyric)
            out[(ckpt, rank)] = {"coef": coef, "activations": act, "lyric": lyric, "weights": weights,
                                 "lora_state": lora_state, "cached": cached, "frozen": frozen, "encode": encode,
                                 "uncached": uncached}
    return out


# -- report ------------------------------------------------------------------------------------------------


def gib(mib: float) -> str:
    return f"{mib / 1024:.2f}"


def render(steps: list[dict], dcae: list[dict], lyric: dict, counts: dict, est: dict, args, wall: float) -> str:
    key = "cuda_mib" if "cuda_mib" in steps[0]["step"] else "tensor_mib"
    first = steps[0]
    loads = [p["load"] for p in steps + dcae]
    lines = [
        SECTION,
        "",
        "`python bench/acestep_lora_memory.py` — one LoRA training step of the ACE-Step v1 transformer as "
        "`acestep.bin.train --base-dtype bf16 --dtype bf16` runs it (bf16 base weights, LoRA rank "
        f"{first['rank']} / alpha 32 / rslora on {' '.join(TARGETS)}, the trainer's loss under bf16 autocast, "
        "backward, AdamW) at reduced width and depth (heads of 128 as released, a tiny lyric encoder, "
        f"random weights), batch 1, {TEXT_TOKENS} prompt tokens, {LYRIC_TOKENS} lyric tokens, versus the clip "
        f"length L (T = L x 44100/4096 ≈ {FRAMES_PER_SECOND:.2f} latent frames per second). Each point is a "
        "fresh process: a warm-up step (allocates the AdamW state), then "
        + ("`torch.cuda.max_memory_allocated` minus the memory allocated before one step at L."
           if key == "cuda_mib" else
           "one step at L under a dispatch-mode tracker that adds up the bytes of every tensor storage the "
           "step creates until it is freed (a weakref finalizer per storage; weights and optimizer state "
           "excluded): the peak is the CPU counterpart of `torch.cuda.max_memory_allocated` (PyTorch's CPU "
           "allocator is invisible to `tracemalloc`). A second identical step gives the time and the peak-RSS "
           "increase (free heap returned to the system, `/proc/self/clear_refs`, `VmHWM` − `VmRSS` before), "
           "which also counts the C library's fragmentation and oneDNN scratch buffers")
        + f". Device {first['device']}, {first['threads']} thread(s). Without the cache the released trainer "
        "also runs `MusicDCAE.encode` on the clip every step (measured the same way at the released DCAE size, "
        "fp32, no gradients) and holds the DCAE, vocoder and UMT5 in fp32.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}; bench wall time {wall / 60:.1f} min; 1-min load before the points "
        f"{min(loads):.2f}-{max(loads):.2f}.",
        "",
        "| checkpointing | width D | blocks N | parameters (M) | LoRA (M) | L (s) | T | step peak (MiB) | "
        "peak-RSS increase (MiB) | step time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in sorted(steps, key=lambda p: (p["checkpointing"], p["width"], p["layers"], p["seconds"])):
        lines.append(f"| {'on' if p['checkpointing'] else 'off'} | {p['width']} | {p['layers']} | "
                     f"{p['params'] / 1e6:.1f} | {p['trainable'] / 1e6:.2f} | {p['seconds']:g} | {p['frames']} | "
                     f"{p['step'][key]:.0f} | {p['step']['rss_mib']:.0f} | {p['step']['wall']:.2f} |")
    if dcae:
        lines += ["", "| MusicDCAE.encode (released size, fp32) | L (s) | peak (MiB) | peak-RSS increase (MiB) | "
                  "time (s) |", "|---|---:|---:|---:|---:|"]
        for p in dcae:
            lines.append(f"| | {p['seconds']:g} | {p['step'][key]:.0f} | {p['step']['rss_mib']:.0f} | "
                         f"{p['step']['wall']:.2f} |")
    lines += ["", f"The released lyric branch alone (embeddings, 6-block Conformer of width 1024, `lyric_proj` to "
              f"{RELEASED['width']}; LoRA on linear_q/k/v, {lyric['trainable'] / 1e6:.2f} M parameters), one step on "
              f"{lyric['tokens']} lyric tokens: peak {lyric['step'][key]:.0f} MiB (peak-RSS increase "
              f"{lyric['step']['rss_mib']:.0f} MiB, {lyric['step']['wall']:.2f} s)."]
    lines += ["", "Fit of the step peak (MiB) = a + b·D + c·T·D·N + d·T·D + e·T:", "",
              "| checkpointing | a | b | c | d | e |", "|---|---:|---:|---:|---:|---:|"]
    for ckpt in sorted({k[0] for k in est}):
        c = est[(ckpt, 16)]["coef"]
        lines.append(f"| {'on' if ckpt else 'off'} | {c[0]:.1f} | {c[1]:.4f} | {c[2]:.3e} | {c[3]:.3e} | "
                     f"{c[4]:.4f} |")
    any_e = next(iter(est.values()))
    lines += [
        "",
        f"**Released transformer ({counts['params'] / 1e9:.2f} B parameters, D {RELEASED['width']}, N "
        f"{RELEASED['layers']}), {args.target_seconds:g} s clips, batch 1.** Weights in bf16: "
        f"{gib(any_e['weights'])} GiB. LoRA weights, gradients and AdamW moments in fp32 (16 bytes per parameter): "
        f"rank 16 = {counts['lora16'] / 1e6:.1f} M parameters, rank 64 = {counts['lora64'] / 1e6:.1f} M. "
        "Activations: the fit at the released D, N and T, plus the lyric branch's peak "
        f"({gib(any_e['lyric'])} GiB). Without the cache add the DCAE + vocoder + UMT5 "
        f"weights in fp32 ({(counts['dcae'] + counts['vocoder'] + counts['umt5']) / 1e6:.0f} M parameters, "
        f"{gib(any_e['frozen'])} GiB) and, where the DCAE encode's peak "
        f"({gib(any_e['encode'])} GiB at {args.target_seconds:g} s) exceeds the step's activations, the "
        "difference (the encode runs before the step, so the two peaks do not add). The released trainer also "
        "loads MERT-330M and mHuBERT-147 for its SSL loss (≈ 1.6 GiB more in fp32); the cache has no SSL targets "
        "and neither is counted.",
        "",
        "| checkpointing | LoRA rank | weights | LoRA state | activations | lyric branch | **with the cache** | "
        "without the cache | "
        f"fits {TARGET_GIB:g} GiB (cache / no cache) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (ckpt, rank), e in sorted(est.items()):
        lines.append(f"| {'on' if ckpt else 'off'} | {rank} | {gib(e['weights'])} | {gib(e['lora_state'])} | "
                     f"{gib(e['activations'])} | {gib(e['lyric'])} | **{gib(e['cached'])}** | {gib(e['uncached'])} | "
                     f"{'yes' if e['cached'] / 1024 <= TARGET_GIB else 'no'} / "
                     f"{'yes' if e['uncached'] / 1024 <= TARGET_GIB else 'no'} |")
    lines += [
        "",
        "(GiB.) Assumptions: activation memory grows with tokens x width per block (heads x 128 = width as "
        "released, FFN 2.5 x width; on the CPU the cross-attention may keep its T x 465 scores for the backward, "
        "which CUDA's fused kernels do not), the lyric branch does not depend on T, batch 1. Not included: the CUDA context (0.3-0.6 GiB), the caching allocator's slack "
        "(often 10-20 % above the allocated peak), the data loader. The fits use the tensor peaks; the "
        "peak-RSS column is context (it also counts the C library's fragmentation and oneDNN scratch buffers, "
        "which a CUDA allocator does not have).",
    ]
    on = {rank: e for (ckpt, rank), e in est.items() if ckpt}
    off = {rank: e for (ckpt, rank), e in est.items() if not ckpt}
    if on and off:
        slack = 0.6 * 1024 + 0.15 * on[64]["cached"]
        lines += ["", f"Verdict for LoRA fine-tuning of the released model on a {TARGET_GIB:g} GB card with "
                  f"{args.target_seconds:g} s clips (`--crop-frames {frames_of(args.target_seconds)}`) from the "
                  f"cache: with bf16 base weights and gradient checkpointing about {gib(on[16]['cached'])} GiB at "
                  f"rank 16 and {gib(on[64]['cached'])} GiB at rank 64 — it fits, with room for the CUDA context "
                  f"and 15 % allocator slack (rank 64: ≈ {gib(on[64]['cached'] + slack)} GiB). Without "
                  f"checkpointing {gib(off[16]['cached'])} / {gib(off[64]['cached'])} GiB: too close to "
                  f"{TARGET_GIB:g} GB once the context and slack are added. Without the cache (DCAE, vocoder and "
                  "UMT5 in memory, the DCAE encode every step, and MERT/mHuBERT on top for the released trainer's "
                  "SSL loss) the same run needs 2-4 GiB more."]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0, 60.0],
                        help="clip lengths (default: 10 30 60)")
    parser.add_argument("--dcae-seconds", type=float, nargs="*", default=[10.0, 30.0, 60.0],
                        help="clip lengths of the released-size DCAE encode (default: 10 30 60; none: skip)")
    parser.add_argument("--target-seconds", type=float, default=60.0, help="clip length of the estimate")
    parser.add_argument("--checkpointing", choices=["off", "on"], nargs="+", default=["off", "on"],
                        help="gradient checkpointing settings (default: off on)")
    parser.add_argument("--num-threads", dest="threads", type=int, default=1, metavar="N",
                        help="intra-op threads per point (default: 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda (default: auto)")
    parser.add_argument("--results", type=Path, default=None, help="also write the raw points as JSON here")
    parser.add_argument("--update", type=Path, default=None, help="markdown file to write the section into")
    parser.add_argument("--note", default="", help="extra line under the tables")
    parser.add_argument("--from-results", type=Path, default=None,
                        help="render the section from the points of an earlier --results file (measures nothing)")
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.from_results is not None:
        saved = json.loads(args.from_results.read_text(encoding="utf-8"))
        steps, dcae, lyric, counts = saved["steps"], saved["dcae"], saved["lyric"], saved["counts"]
        key = "cuda_mib" if "cuda_mib" in steps[0]["step"] else "tensor_mib"
        est = estimates(steps, dcae, lyric["step"][key], counts, key, args.target_seconds)
        section = render(steps, dcae, lyric, counts, est, args, saved.get("wall", 0.0))
        print(section, end="")
        if args.update is not None:
            update_doc(args.update, SECTION, section)
        return

    started = time.perf_counter()
    steps, dcae = [], []
    for ckpt in args.checkpointing:
        for width, layers in SIZES:
            for seconds in args.seconds:
                p = run_point({"kind": "step", "seconds": seconds, "width": width, "layers": layers,
                               "checkpointing": ckpt == "on", "threads": args.threads, "device_name": device})
                steps.append(p)
                print(f"checkpointing={ckpt} D={width} N={layers} L={seconds:g}s "
                      f"{p['step'].get('tensor_mib', p['step'].get('cuda_mib', 0.0)):.0f} MiB "
                      f"RSS +{p['step']['rss_mib']:.0f} MiB "
                      f"{p['step']['wall']:.2f}s load={p['load']:.2f}", file=sys.stderr, flush=True)
    for seconds in args.dcae_seconds:
        p = run_point({"kind": "dcae", "seconds": seconds, "threads": args.threads, "device_name": device})
        dcae.append(p)
        print(f"dcae L={seconds:g}s +{p['step']['rss_mib']:.0f} MiB {p['step']['wall']:.2f}s", file=sys.stderr,
              flush=True)
    lyric = run_point({"kind": "lyric", "threads": args.threads, "device_name": device})
    print(f"lyric branch {lyric['step'].get('tensor_mib', lyric['step'].get('cuda_mib', 0.0)):.0f} MiB", file=sys.stderr,
          flush=True)
    counts = released_counts()
    key = "cuda_mib" if device.startswith("cuda") else "tensor_mib"
    est = estimates(steps, dcae, lyric["step"][key], counts, key, args.target_seconds)
    if args.results is not None:
        args.results.write_text(json.dumps({"steps": steps, "dcae": dcae, "lyric": lyric, "counts": counts,
                                            "wall": time.perf_counter() - started}, indent=1) + "\n",
                                encoding="utf-8")
    section = render(steps, dcae, lyric, counts, est, args, time.perf_counter() - started)
    print(section, end="")
    if args.update is not None:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
