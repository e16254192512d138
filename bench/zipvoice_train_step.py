#!/usr/bin/env python3
"""ZipVoice training step: time and memory, memory-lean Swoosh vs plain autograd Swoosh.

For each model config (the tiny test config and zipvoice_base.json, vocab
360, random weights) and each batch budget ``--max-durations`` (seconds of
audio per batch, utterances of ``--utt-seconds`` each, 10 tokens/s), one
worker process per Swoosh implementation runs the training step of
``zipvoice.bin.train_zipvoice`` (flow-matching loss, backward, ScaledAdam step)
once to warm up and ``--steps`` more times, and reports:

* step time: median of the timed steps (forward + backward + optimizer);
* saved for backward: bytes of the distinct activation storages autograd
  keeps from the forward pass for the backward pass (measured with
  saved-tensor hooks, so independent of the allocator; the parameters, which
  linear layers save too, are left out): what the lean Swoosh shrinks;
* peak memory: the worker process's peak RSS (``resource``), or on a GPU the
  peak of ``torch.cuda.max_memory_allocated``.

k2 is not used (its fused Swoosh would replace both implementations).

    python bench/zipvoice_train_step.py                       # print the table
    python bench/zipvoice_train_step.py --update docs/benchmarks.md

``--update`` writes the section "## ZipVoice training step" into the file,
replacing an earlier copy of that section and keeping every other one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import cpu_name, update_doc  # noqa: E402

from shirabe.cli import add_bool_argument  # noqa: E402

SECTION = "## ZipVoice training step"
FRAMES_PER_SECOND = 24000 / 256
CONFIGS = {
    "tiny": ROOT / "tests" / "fixtures" / "zipvoice_tiny" / "model.json",
    "base": ROOT / "zipvoice" / "configs" / "zipvoice_base.json",
}


def saved_bytes(fn, model: torch.nn.Module) -> int:
    """Bytes of the distinct activation storages autograd saves while ``fn()`` runs
    (the model's own parameters, which linear layers also save, are left out)."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in weights:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(storages.values())


def worker(args) -> dict:
    from shirabe.train.optim import ScaledAdam, parameter_groups_with_lr_scale
    from zipvoice.bin.train_zipvoice import compute_loss
    from zipvoice.models import build_model, read_config
    from zipvoice.models.scaling import set_swoosh_training_impl

    torch.set_num_threads(args.threads)
    set_swoosh_training_impl(args.swoosh)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = build_model(read_config(CONFIGS[args.config])["model"], 360, 0).to(device).train()
    optimizer = ScaledAdam(parameter_groups_with_lr_scale(model, lr=0.02), lr=0.02, clipping_scale=2.0)
    batch_size = max(1, round(args.max_duration / args.utt_seconds))
    frames = round(args.utt_seconds * FRAMES_PER_SECOND)
    g = torch.Generator().manual_seed(1)
    batch = {
        "features": torch.randn(batch_size, frames, 100, generator=g) * 2.0 - 5.0,
        "features_lens": torch.full((batch_size,), frames, dtype=torch.int64),
        "tokens": torch.randint(1, 360, (batch_size, round(args.utt_seconds * 10)), generator=g).tolist(),
    }
    loss_fn = lambda: compute_loss(model, batch, True, feat_scale=0.1, condition_drop_ratio=0.2,  # noqa: E731
                                   device=device)[0]

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    step()
    times = [step() for _ in range(args.steps)]
    kept = saved_bytes(loss_fn, model)
    optimizer.zero_grad(set_to_none=True)
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {
        "config": args.config, "swoosh": args.swoosh, "max_duration": args.max_duration, "batch_size": batch_size,
        "frames": frames, "step_s": statistics.median(times), "saved_bytes": kept, "peak_bytes": peak,
        "peak_kind": "CUDA max allocated" if device.type == "cuda" else "peak RSS", "device": str(device),
        "params": sum(p.numel() for p in model.parameters()),
    }


def swoosh_alone(threads: int, repeats: int = 15) -> dict[str, float]:
    """Median ms of forward + backward of SwooshL on a (2000, 1536) float32 tensor, per implementation."""
    from zipvoice.models.scaling import set_swoosh_training_impl, swoosh_l

    torch.set_num_threads(threads)
    x = torch.randn(2000, 1536, requires_grad=True)
    grad = torch.randn(2000, 1536)
    times: dict[str, list[float]] = {"lean": [], "autograd": []}
    previous = set_swoosh_training_impl("lean")
    for _ in range(repeats):
        for impl in times:  # interleaved, so a change in load hits both alike
            set_swoosh_training_impl(impl)
            t0 = time.perf_counter()
            swoosh_l(x).backward(grad)
            times[impl].append(time.perf_counter() - t0)
            x.grad = None
    set_swoosh_training_impl(previous)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def run_worker(config: str, max_duration: float, swoosh: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "true", "--config", config, "--max-duration", str(max_duration),
           "--swoosh", swoosh, "--steps", str(args.steps), "--num-threads", str(args.threads),
           "--utt-seconds", str(args.utt_seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def render(rows: list[dict], args, load_before: list[float], alone: dict[str, float]) -> str:
    mib = 2**20
    params = {r["config"]: r["params"] for r in rows}
    lines = [
        SECTION,
        "",
        f"`python bench/zipvoice_train_step.py` — one training step of `zipvoice.bin.train_zipvoice` (flow-matching "
        f"loss, backward, ScaledAdam), fp32, random weights, vocab 360: tiny = the test config "
        f"({params.get('tiny', 0) / 1e6:.2f} M parameters), base = zipvoice_base.json "
        f"({params.get('base', 0) / 1e6:.2f} M). A batch of max-duration seconds holds utterances of "
        f"{args.utt_seconds:g} s ({rows[0]['frames']} frames, {round(args.utt_seconds * 10)} tokens). "
        f"Step time: median of {args.steps} steps after one warm-up, {args.threads} thread(s). "
        "Saved for backward: distinct activation storages (parameters excluded) autograd keeps between "
        "forward and backward. "
        f"Peak: the worker process's {rows[0]['peak_kind']}. No k2.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; device {rows[0]['device']}; torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}.",
        "",
        "| config | max-duration (s) | batch | Swoosh | step time (s) | saved for backward (MiB) | peak (MiB) | 1-min load before |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r, load in zip(rows, load_before, strict=True):
        lines.append(
            f"| {r['config']} | {r['max_duration']:g} | {r['batch_size']} | {r['swoosh']} | {r['step_s']:.3f} | "
            f"{r['saved_bytes'] / mib:.1f} | {r['peak_bytes'] / mib:.0f} | {load:.2f} |"
        )
    lines.append("")
    by_key = {(r["config"], r["max_duration"], r["swoosh"]): r for r in rows}
    notes = []
    for (config, dur, swoosh), r in by_key.items():
        plain = by_key.get((config, dur, "autograd"))
        if swoosh == "lean" and plain:
            notes.append(f"{config} at {dur:g} s: saved {100 * (1 - r['saved_bytes'] / plain['saved_bytes']):.0f} % "
                         f"less, peak {100 * (1 - r['peak_bytes'] / plain['peak_bytes']):.0f} % lower, "
                         f"step time ×{r['step_s'] / plain['step_s']:.2f}")
    if notes:
        lines += ["Lean vs autograd Swoosh: " + "; ".join(notes) + ".", ""]
    lines += [f"SwooshL alone, forward + backward on 2000 × 1536 floats (median of 15, interleaved): lean "
              f"{alone['lean']:.1f} ms, autograd {alone['autograd']:.1f} ms; it keeps 1 byte per element for the "
              "backward pass instead of 4.", ""]
    if max(load_before) > (os.cpu_count() or 1) / 2:
        lines += [f"The machine was shared during this run (1-min load up to {max(load_before):.1f} on "
                  f"{os.cpu_count()} CPUs): step times vary by tens of percent from run to run and the "
                  "lean/autograd time ratios are within that noise; the saved-for-backward column is exact.", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tiny-max-durations", default="10,30", help="batch budgets (s) for the tiny config")
    parser.add_argument("--base-max-durations", default="5,15", help="batch budgets (s) for the base config")
    parser.add_argument("--utt-seconds", type=float, default=5.0, help="length of every utterance in a batch")
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up")
    parser.add_argument("--num-threads", dest="threads", metavar="N", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--update", type=Path, default=None, help="write the section into this markdown file")
    add_bool_argument(parser, "--worker", False, argparse.SUPPRESS)
    parser.add_argument("--config", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--max-duration", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--swoosh", choices=("lean", "autograd"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    alone = swoosh_alone(args.threads)
    rows, loads = [], []
    for config, durations in (("tiny", args.tiny_max_durations), ("base", args.base_max_durations)):
        for dur in (float(d) for d in durations.split(",") if d.strip()):
            for swoosh in ("lean", "autograd"):
                loads.append(os.getloadavg()[0])
                rows.append(run_worker(config, dur, swoosh, args))
                r = rows[-1]
                print(f"{config} {dur:g}s {swoosh}: {r['step_s']:.3f} s/step, saved {r['saved_bytes'] / 2**20:.1f} MiB, "
                      f"peak {r['peak_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
    section = render(rows, args, loads, alone)
    print(section)
    if args.update:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
