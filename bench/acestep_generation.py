#!/usr/bin/env python3
"""ACE-Step text2music speed on CPU: the denoising loop and the DCAE + vocoder decode timed apart.

Models (random weights): ``tiny`` = 4 heads × 16, 2 blocks, lyric Conformer 32 wide (0.98 M
parameters, the test configuration); ``mid`` = 8 heads × 64 (inner 512), 4 blocks, lyric
Conformer 256 wide, 2 layers. The decoder is the ``acestep_dcae_tiny`` fixture's DCAE and
vocoder (random, small), so the decode column is a lower bound of the released decoder's cost.
Conditions: 20 text tokens (768-d stand-in UMT5 states), 120 lyric ids. Sampling: the released
defaults (APG, guidance 15 inside the middle half of the steps, ERG on lyrics and the diffusion
blocks, omega 10), ``--steps`` steps (27 and 60 by default) for ``--seconds`` of audio
(44100/512/8 latent frames per second), after one warm-up step. RTF = compute seconds / audio
seconds (lower is faster; the released README quotes the inverse).

    python bench/acestep_generation.py                     # print the table
    python bench/acestep_generation.py --update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import cpu_name, update_doc  # noqa: E402

from acestep.dcae import MusicDCAE  # noqa: E402
from acestep.models import ACEStepTransformer, TransformerConfig  # noqa: E402
from acestep.models.config import LyricEncoderConfig  # noqa: E402
from acestep.sampling.loop import Conditions, GuidanceSettings, denoise  # noqa: E402
from acestep.sampling.tasks import seconds_to_frames, text2music_start  # noqa: E402

SECTION = "## ACE-Step text2music (CPU)"
DCAE_DIR = ROOT / "tests" / "fixtures" / "acestep_dcae_tiny"
SIZES = {
    "tiny": dict(num_layers=2, attention_head_dim=16, num_attention_heads=4, lyric_hidden_size=32,
                 lyric=LyricEncoderConfig(32, 2, 64, 1)),
    "mid": dict(num_layers=4, attention_head_dim=64, num_attention_heads=8, lyric_hidden_size=256,
                lyric=LyricEncoderConfig(256, 4, 1024, 2)),
}


def build(size: str) -> ACEStepTransformer:
    values = dict(SIZES[size])
    lyric = values.pop("lyric")
    config = TransformerConfig(**values, ssl_encoder_depths=(1, 1), ssl_latent_dims=(32, 24), lyric_encoder=lyric)
    torch.manual_seed(0)
    return ACEStepTransformer(config).eval()


def conditions(model: ACEStepTransformer) -> Conditions:
    g = torch.Generator().manual_seed(1)
    vocab = model.config.lyric_encoder_vocab_size
    return Conditions(text=torch.randn(1, 20, 768, generator=g), text_mask=torch.ones(1, 20, dtype=torch.long),
                      lyric_ids=torch.randint(3, vocab, (1, 120), generator=g),
                      lyric_mask=torch.ones(1, 120, dtype=torch.long))


def measure(model, dcae, seconds: float, steps: int) -> dict:
    frames = seconds_to_frames(seconds)
    noise = torch.randn(1, 8, 16, frames, generator=torch.Generator().manual_seed(2))
    cond, settings = conditions(model), GuidanceSettings()
    with torch.no_grad():
        denoise(model, text2music_start(noise, 2), cond, settings, progress=False)  # warm-up
        t0 = time.perf_counter()
        latents = denoise(model, text2music_start(noise, steps), cond, settings, progress=False)
        t1 = time.perf_counter()
        dcae.decode(latents, sr=48000)
        t2 = time.perf_counter()
    return {"denoise": t1 - t0, "decode": t2 - t1}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES), help="model sizes (default: all)")
    p.add_argument("--steps", type=int, nargs="+", default=[27, 60], help="denoising steps (default: 27 60)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads (default: 1 2)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio length (default: 10)")
    p.add_argument("--update", type=Path, help="write the section into this markdown file")
    args = p.parse_args(argv)
    dcae = MusicDCAE.from_checkpoint_dir(DCAE_DIR)
    rows = []
    for size in args.sizes:
        model = build(size)
        params = sum(q.numel() for q in model.parameters()) / 1e6
        for threads in args.threads:
            torch.set_num_threads(threads)
            for steps in args.steps:
                t = measure(model, dcae, args.seconds, steps)
                row = (f"| {size} ({params:.1f} M) | {threads} | {steps} | {t['denoise']:.2f} | "
                       f"{t['denoise'] / steps * 1000:.0f} | {t['decode']:.2f} | "
                       f"{(t['denoise'] + t['decode']) / args.seconds:.3f} |")
                print(row, flush=True)
                rows.append(row)
    load = os.getloadavg()[0]
    def used(model):  # the cross-attention's add_* layers are never run
        return sum(q.numel() for n, q in model.transformer_blocks.named_parameters() if ".add_" not in n
                   and "to_add_out" not in n)

    with torch.device("meta"):
        released = used(ACEStepTransformer(TransformerConfig()))
    mid = used(build("mid"))
    section = (f"{SECTION}\n\n"
               f"`python bench/acestep_generation.py` on {cpu_name()}, {os.cpu_count()} CPUs, "
               f"load average {load:.1f} at the end, {datetime.date.today()}; {args.seconds:g} s of audio, "
               "batch 1, float32, released sampling defaults (APG, guidance 15 in the middle half of the steps, "
               "ERG, omega 10). Decode = the tiny fixture DCAE + vocoder to 48 kHz (a lower bound of the "
               "released decoder). RTF = compute / audio seconds, lower is faster.\n\n"
               "| model | threads | steps | denoise s | ms / step | decode s | RTF |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
               "Each step inside the guidance window runs the transformer twice (conditional and ERG "
               "unconditional), outside it once, so a step costs 1.5 forwards on average. The released "
               f"model's blocks use {released / mid:.0f} × the weights of `mid`'s ({released / 1e9:.2f} B vs "
               f"{mid / 1e6:.1f} M), i.e. about that many times the multiply-adds per latent frame: on a CPU it "
               "runs far slower than real time, which is why generation defaults to `--device auto` (CUDA "
               "when present).\n")
    print(section)
    if args.update:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
