#!/usr/bin/env python3
"""Real-time factor of the base-size ZipVoice (random weights) in PyTorch on CPU.

Generates ``--seconds`` of speech after a ``--prompt-seconds`` prompt (features
and tokens synthesised at ``--tokens-per-second``, so the frame count follows
the model's own length rule) with ``model.sample`` at the upstream sampling
settings (ZipVoice: 16 steps, guidance 1.0 → 32 decoder passes on a doubled
batch; ZipVoiceDistill: 8 steps, guidance 3.0), then decodes the generated
frames with the full-size Vocos vocoder (random weights). One warm-up run,
then the median of ``--repeats`` timed runs per thread count.

RTF without vocoder = sampling time / generated audio duration; RTF with
vocoder adds the decode time. Lower is faster.

    python bench/zipvoice_rtf.py                          # print a markdown table
    python bench/zipvoice_rtf.py --update docs/benchmarks.md

``--update`` writes the section "## ZipVoice inference (PyTorch, CPU)" into the
file, replacing an earlier copy of that section and keeping every other one.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import cpu_name, update_doc  # noqa: E402

from shirabe.vocoder import VOCOS_MEL_24KHZ_CONFIG, build_vocos  # noqa: E402
from zipvoice.models import BASE_CONFIG, SAMPLING_DEFAULTS, build_model, read_config  # noqa: E402

SECTION = "## ZipVoice inference (PyTorch, CPU)"
FRAME_SECONDS = 256 / 24000




def make_inputs(args, vocab_size: int):
    g = torch.Generator().manual_seed(0)
    prompt_frames = math.ceil(args.prompt_seconds / FRAME_SECONDS)
    n_prompt = max(1, round(args.prompt_seconds * args.tokens_per_second))
    n_text = max(1, round(args.seconds * args.tokens_per_second))
    prompt_features = (torch.randn(1, prompt_frames, 100, generator=g) * 2.0 - 5.0) * 0.1
    prompt_tokens = torch.randint(1, vocab_size, (n_prompt,), generator=g).tolist()
    tokens = torch.randint(1, vocab_size, (n_text,), generator=g).tolist()
    return prompt_features, prompt_tokens, tokens


def run_once(model, vocoder, inputs, num_step: int, guidance: float):
    prompt_features, prompt_tokens, tokens = inputs
    t0 = time.perf_counter()
    gen, lens, _, _ = model.sample(
        [tokens], [prompt_tokens], prompt_features, torch.tensor([prompt_features.shape[1]]),
        speed=1.0, t_shift=0.5, num_step=num_step, guidance_scale=guidance,
    )
    t1 = time.perf_counter()
    mel = (gen[:, : int(lens[0])] / 0.1).permute(0, 2, 1)
    vocoder.decode(mel)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, int(lens[0])


def render(rows, args, inputs, params: dict) -> str:
    prompt_features, prompt_tokens, tokens = inputs
    lines = [
        SECTION,
        "",
        "`python bench/zipvoice_rtf.py` — zipvoice_base.json (vocab 360; "
        + ", ".join(f"{k} {v / 1e6:.2f} M parameters" for k, v in params.items())
        + f"), random weights, fp32, batch 1, pure-PyTorch Swoosh (no k2). A {args.prompt_seconds:g} s "
        f"prompt ({prompt_features.shape[1]} frames, {len(prompt_tokens)} tokens) and {len(tokens)} text "
        f"tokens give the generated length below; sampling with t_shift 0.5, then the full-size Vocos "
        f"(13.5 M parameters, random weights). Median of {args.repeats} run(s) after one warm-up. "
        "RTF = time / generated audio duration.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}.",
        "",
        "| model | steps | guidance | threads | audio (s) | sampling (s) | vocoder (s) | RTF w/o vocoder "
        "| RTF with vocoder | 1-min load before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['steps']} | {r['guidance']:g} | {r['threads']} | {r['audio']:.2f} | "
            f"{r['sample']:.2f} | {r['vocoder']:.2f} | {r['sample'] / r['audio']:.3f} | "
            f"{(r['sample'] + r['vocoder']) / r['audio']:.3f} | {r['load']:.2f} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [
        "",
        f"Peak resident memory of the benchmark process: {peak:.0f} MiB. For scale, upstream's PR #33 "
        "reports (different CPU, 1 thread, ~3 s prompt → ~10 s output) RTF 9.62 for ZipVoice at 16 steps "
        "and 2.40 for ZipVoiceDistill at 8 steps in PyTorch. Other processes on the machine slow the run "
        "down; compare rows only when the load before them was well below the CPU count.",
    ]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="target generated duration (default: 10)")
    parser.add_argument("--prompt-seconds", type=float, default=3.0, help="prompt duration (default: 3)")
    parser.add_argument("--tokens-per-second", type=float, default=10.0,
                        help="speaking rate of prompt and text (default: 10)")
    parser.add_argument("--models", nargs="+", default=["zipvoice", "zipvoice_distill"],
                        choices=list(SAMPLING_DEFAULTS), help="models to time (default: both)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per setting (default: 1)")
    parser.add_argument("--update", type=Path, default=None, help="markdown file to write the section into")
    parser.add_argument("--note", default="", help="extra line under the table")
    args = parser.parse_args()

    cfg = read_config(BASE_CONFIG)["model"]
    torch.manual_seed(0)
    vocoder = build_vocos(VOCOS_MEL_24KHZ_CONFIG).eval()
    rows, params = [], {}
    with torch.inference_mode():
        for name in args.models:
            torch.manual_seed(0)
            model = build_model(cfg, vocab_size=360, pad_id=0, model_name=name).eval()
            params[name] = sum(p.numel() for p in model.parameters())
            inputs = make_inputs(args, 360)
            steps, guidance = SAMPLING_DEFAULTS[name]["num_step"], SAMPLING_DEFAULTS[name]["guidance_scale"]
            for threads in args.threads:
                torch.set_num_threads(threads)
                run_once(model, vocoder, inputs, 1, guidance)  # warm-up
                load = os.getloadavg()[0]
                runs = [run_once(model, vocoder, inputs, steps, guidance) for _ in range(args.repeats)]
                sample = statistics.median(r[0] for r in runs)
                voc = statistics.median(r[1] for r in runs)
                audio = runs[0][2] * FRAME_SECONDS
                rows.append({"model": name, "steps": steps, "guidance": guidance, "threads": threads,
                             "audio": audio, "sample": sample, "vocoder": voc, "load": load})
                print(f"{name} threads={threads} audio={audio:.2f}s sample={sample:.2f}s vocoder={voc:.2f}s "
                      f"RTF={sample / audio:.3f} / {(sample + voc) / audio:.3f}", file=sys.stderr)
            del model
    section = render(rows, args, make_inputs(args, 360), params)
    print(section)
    if args.update is not None:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
