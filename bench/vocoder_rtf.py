#!/usr/bin/env python3
"""Real-time factor of the full-size Vocos vocoder (random weights) in PyTorch on CPU.

Decodes the mel of ``--seconds`` of 24 kHz audio (``ceil(seconds * 24000 / 256)``
frames) at each thread count, ``--repeats`` timed runs after one warm-up, and
reports the median. RTF = decode time / audio duration (lower is faster).

    python bench/vocoder_rtf.py                         # print a markdown table
    python bench/vocoder_rtf.py --update docs/benchmarks.md

``--update`` writes the section "## Vocos vocoder (PyTorch, CPU)" into the
file, replacing an earlier copy of that section and keeping every other one.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import cpu_name, update_doc  # noqa: E402

from shirabe.vocoder import VOCOS_MEL_24KHZ_CONFIG, build_vocos  # noqa: E402

SECTION = "## Vocos vocoder (PyTorch, CPU)"




def time_decode(model, mel: torch.Tensor, threads: int, repeats: int) -> list[float]:
    torch.set_num_threads(threads)
    model.decode(mel)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.decode(mel)
        times.append(time.perf_counter() - t0)
    return times


def render(rows: list[tuple[int, float, float, float]], args, frames: int, params: int) -> str:
    lines = [
        SECTION,
        "",
        f"`python bench/vocoder_rtf.py` — vocos-mel-24khz layout ({params / 1e6:.2f} M parameters, random "
        f"weights), fp32, batch 1, decoding {args.seconds:g} s of audio ({frames} mel frames); median of "
        f"{args.repeats} runs after one warm-up. RTF = decode time / audio duration.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}.",
        "",
        "| threads | decode time (s) | RTF | 1-min load before |",
        "|---:|---:|---:|---:|",
    ]
    for threads, median, rtf, load in rows:
        lines.append(f"| {threads} | {median:.3f} | {rtf:.4f} | {load:.2f} |")
    lines += [
        "",
        "Other processes on the machine slow the run down; compare rows only when the load "
        "before them was well below the CPU count.",
    ]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio duration to decode")
    parser.add_argument("--num-threads", dest="threads", metavar="N", type=int, nargs="+", default=[1, 2],
                        help="torch intra-op thread counts")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per thread count")
    parser.add_argument("--update", type=Path, default=None, help="markdown file to write the section into")
    parser.add_argument("--note", default="", help="extra line under the table (e.g. machine load)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_vocos(VOCOS_MEL_24KHZ_CONFIG)
    params = sum(p.numel() for p in model.parameters())
    frames = math.ceil(args.seconds * 24000 / 256)
    mel = torch.randn(1, 100, frames) * 2.0 - 4.0
    audio_seconds = frames * 256 / 24000

    rows = []
    with torch.inference_mode():
        for threads in args.threads:
            load = os.getloadavg()[0]
            median = statistics.median(time_decode(model, mel, threads, args.repeats))
            rows.append((threads, median, median / audio_seconds, load))
            print(f"threads={threads} decode={median:.3f}s RTF={median / audio_seconds:.4f}", file=sys.stderr)
    section = render(rows, args, frames, params)
    print(section, end="")
    if args.update is not None:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
