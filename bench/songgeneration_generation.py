#!/usr/bin/env python3
"""SongGeneration LeLM generation speed on CPU, with and without the decoders' KV caches.

Models (random weights, built from the ``songgen_lelm_tiny`` fixture's ``config.yaml`` with the
``lm`` dimensions replaced): ``tiny`` = the fixture itself (dim 8, 2 heads, 2 + 1 layers);
``mid`` = dim 512, 8 heads, FFN 1408, 6 + 2 layers. Both keep the fixture's condition lengths
(32 lyric ids, 12 description ids, a 27-row prompt block: 71 prefixed rows) and its delays
[0, 3, 3], so ``F`` frames take ``F + 3`` pattern steps. The Qwen2-vocabulary tables of the lyric
and description conditioners (151,659 and 151,646 rows) and the 16,386-row code tables and heads
are built at full size: their share of the parameters is reported.

Generation is :func:`songgeneration.models.generation.generate` as the CLI runs it: classifier-free
guidance with the conditional and null branches as one batch of 2, the released sampling defaults
(top-k 5000 at temperature 0.8 on the mixed stream, arg-max on the others, repetition penalty 1.1
over 50 steps). EOS gets a logit of -1e4 in every head so each run generates the whole budget of
``--frames`` frames. ``generate`` always feeds one column per step through the KV caches; the
no-cache rows replace the model's ``run`` by one that keeps every row fed so far and recomputes
both decoders over the whole sequence (prefix + all columns) at each step, returning the newest
rows, which is what a decoder without a cache must do. One warm-up run of 4 frames precedes each
timed run. RTF = compute seconds / audio seconds at 25 frames per second (lower is faster).

    python bench/songgeneration_generation.py                     # print the table
    python bench/songgeneration_generation.py --update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import cpu_name, update_doc  # noqa: E402

from songgeneration.models import build_lelm  # noqa: E402
from songgeneration.models.config import FRAME_RATE, config_from_dict  # noqa: E402
from songgeneration.models.generation import SamplingParams, generate, null_conditions  # noqa: E402
from songgeneration.models.text_tokenizer import QWEN_PAD_ID  # noqa: E402

SECTION = "## SongGeneration LeLM generation (CPU)"
FIXTURE_CONFIG = ROOT / "tests" / "fixtures" / "songgen_lelm_tiny" / "config.yaml"
SIZES = {
    "tiny": {},
    "mid": dict(dim=512, intermediate_size=1408, num_heads=8, num_layers=6, num_layers_sub=2),
}
EOS_LOGIT = -1e4
TABLE_NAMES = ("condition_provider.conditioners.",)


def build(size: str):
    data = yaml.safe_load(FIXTURE_CONFIG.read_text(encoding="utf-8"))
    data["lm"].update(SIZES[size])
    config = config_from_dict(data, f"{FIXTURE_CONFIG} ({size})")
    torch.manual_seed(0)
    return build_lelm(config).eval()


def parameter_shares(lm) -> dict:
    total = sum(p.numel() for p in lm.parameters())
    qwen = lm.condition_provider.lyric.output_proj.weight.numel() + \
        lm.condition_provider.description.output_proj.weight.numel()
    core = sum(p.numel() for dec in (lm.transformer, lm.transformer2) for p in dec.model.layers.parameters())
    return {"params": total, "qwen": qwen, "core": core}


def conditions(lm):
    g = torch.Generator().manual_seed(1)
    cp = lm.condition_provider
    lyric = torch.randint(0, 151000, (1, cp.lyric.max_len), generator=g)
    desc = torch.full((1, cp.description.max_len), QWEN_PAD_ID, dtype=torch.long)
    desc[0, :6] = torch.randint(0, 151000, (6,), generator=g)
    return lm.conditions_from_ids(lyric, desc, None), null_conditions(lm)


def suppress_eos(lm) -> None:
    """EOS never wins: its logit is -1e4 in every head (finite, so the guidance stays finite)."""
    heads, eos = lm.heads, lm.config.eos_id

    def heads_without_eos(h1, h2):
        out = heads(h1, h2)
        out[..., eos] = EOS_LOGIT
        return out

    lm.heads = heads_without_eos


class Recompute:
    """``lm.run`` without caches: all rows fed so far go through both decoders at every step."""

    def __init__(self, lm):
        self.lm, self.run = lm, type(lm).run
        self.main = self.sub = None

    def __call__(self, main_in, sub_in, caches=None):
        if self.main is None or main_in.shape[1] > 1:  # the first step (prefix + column 0) starts anew
            self.main, self.sub = main_in, sub_in
        else:
            self.main, self.sub = torch.cat([self.main, main_in], 1), torch.cat([self.sub, sub_in], 1)
        h1, sub, h2 = self.run(self.lm, self.main, self.sub, None)
        n = main_in.shape[1]
        return h1[:, -n:], sub[:, -n:], h2[:, -n:]


def time_generation(lm, cond, null, frames: int, cache: bool) -> tuple[float, int]:
    if cache:
        lm.__dict__.pop("run", None)
    else:
        lm.run = Recompute(lm)
    params = SamplingParams()
    generate(lm, cond, null, 4, params, generator=torch.Generator().manual_seed(0))  # warm-up
    t0 = time.perf_counter()
    result = generate(lm, cond, null, frames, params, generator=torch.Generator().manual_seed(0))
    wall = time.perf_counter() - t0
    lm.__dict__.pop("run", None)
    return wall, int(result.tokens.shape[-1])


def measure(sizes: list[str], threads: list[int], caches: list[bool], frames: int) -> list[dict]:
    rows = []
    for size in sizes:
        lm = build(size)
        suppress_eos(lm)
        shares = parameter_shares(lm)
        cond, null = conditions(lm)
        for n in threads:
            torch.set_num_threads(n)
            for cache in caches:
                wall, made = time_generation(lm, cond, null, frames, cache)
                row = {"size": size, **shares, "threads": n, "cache": cache, "frames": made, "wall": wall,
                       "fps": made / wall, "rtf": wall / (made / FRAME_RATE), "load": os.getloadavg()[0]}
                rows.append(row)
                print(f"{size} threads={n} cache={cache} {made} frames {wall:.2f}s {row['fps']:.1f} frames/s "
                      f"RTF {row['rtf']:.2f}", file=sys.stderr, flush=True)
    return rows


def describe(size: str) -> str:
    lm = SIZES[size] or {"dim": 8, "num_heads": 2, "num_layers": 2, "num_layers_sub": 1}
    return f"dim {lm['dim']}, {lm['num_heads']} heads, {lm['num_layers']} + {lm['num_layers_sub']} layers"


def render(rows: list[dict], frames: int, wall: float) -> str:
    loads = [r["load"] for r in rows]
    lines = [
        SECTION,
        "",
        "`python bench/songgeneration_generation.py` — LeLM token generation "
        "(`songgeneration.models.generation.generate`, CFG as a batch of 2, the released sampling defaults) of "
        f"{frames} frames with EOS suppressed, random weights, the fixture's conditions (71 prefixed rows) and "
        "delays [0, 3, 3]; after a 4-frame warm-up. *cache on*: the decoders' KV caches (one new column per "
        "step, as `generate` always runs); *cache off*: both decoders recompute the whole sequence (prefix + "
        "every column so far) at each step. RTF = compute seconds / audio seconds at 25 frames/s.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs (shared); torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}; bench wall time {wall / 60:.1f} min; 1-min load "
        f"{min(loads):.2f}-{max(loads):.2f}.",
        "",
        "| config | parameters (M) | Qwen-vocab tables (M, share) | decoder blocks (M) | threads | cache | "
        "frames/s | RTF | 1-min load |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} | {r['params'] / 1e6:.1f} | {r['qwen'] / 1e6:.1f} "
                     f"({100 * r['qwen'] / r['params']:.0f} %) | {r['core'] / 1e6:.3f} | {r['threads']} | "
                     f"{'on' if r['cache'] else 'off'} | {r['fps']:.1f} | {r['rtf']:.3f} | {r['load']:.1f} |")
    sizes = sorted({r["size"] for r in rows}, key=list(SIZES).index)
    lines += ["", "Configs: " + "; ".join(f"`{s}` = {describe(s)}" for s in sizes) + ". Every config keeps the "
              "two Qwen2-vocabulary tables (lyrics 151,659 rows, description 151,646 rows) and 13 tables/heads of "
              "16,385-16,386 rows at the model width: at small widths they are most of the parameters but cost "
              "nothing per step (a row lookup), while the three 16,385-way heads run on every step. RTF above 1 "
              "is slower than real time."]
    busy = [r for r in rows if r["threads"] > 1 and r["load"] >= (os.cpu_count() or 1) + 1]
    if busy:
        lines += ["", f"The {len(busy)} row(s) with more than one thread ran while the 1-min load was at or above the "
                  "number of logical CPUs + 1 (other jobs on the machine): their OpenMP threads wait for busy cores, "
                  "which makes them slower than one thread; they do not show the speed-up of an idle machine."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES),
                        help="model sizes (default: tiny mid)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op threads (default: 1 2)")
    parser.add_argument("--cache", choices=["on", "off"], nargs="+", default=["on", "off"],
                        help="KV-cache settings (default: on off)")
    parser.add_argument("--frames", type=int, default=100, help="frames generated per run (default: 100)")
    parser.add_argument("--update", type=Path, default=None, help="markdown file to write the section into "
                        "(default: none, print only)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    threads = torch.get_num_threads()
    try:
        rows = measure(args.sizes, args.threads, [c == "on" for c in args.cache], args.frames)
    finally:
        torch.set_num_threads(threads)
    section = render(rows, args.frames, time.perf_counter() - started)
    print(section, end="")
    if args.update is not None:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
