#!/usr/bin/env python3
"""Speed and peak memory of the music codecs on CPU: the MuQ encoder and the Oobleck VAE.

Full size = MuQ-large-msd-iter's layout (``MuQConfig()``, 316 M parameters) and SongBloom's
``stable_audio_1920_vae.json`` (``build_stable_audio_1920_vae``, 168.7 M parameters), both with
random weights (speed and memory do not depend on the values); tiny = the test fixtures
``tests/fixtures/muq_tiny`` and ``tests/fixtures/oobleck_vae_tiny``. The input is synthetic
48 kHz stereo (sines plus noise).

Speed: compute per minute of 48 kHz stereo audio at each ``--num-threads`` value, for

- ``muq``: ``shirabe.ssl.encode`` with its default 30 s windows overlapping by 10 s, the
  downmix and the resampling to 24 kHz included, on a ``--muq-seconds`` clip;
- ``vae-encode``: ``OobleckVAE.encode`` (posterior mean, unchunked) of a ``--vae-seconds`` clip;
- ``vae-decode``: ``OobleckVAE.decode`` of that clip's latent length (random N(0, 1) latents),
  chunked as SongBloom decodes (128 frames overlapping by 32: 5.12 s of audio, 1.28 s shared; the
  tiny VAE gets chunks of the same duration).

Each row: one warm-up on a ``--warmup-seconds`` clip, then the median of ``--repeats`` timed
runs; per minute = median / clip length x 60. Besides the 1-min load average before the row,
the other processes' CPU use during the timed runs (busy time in /proc/stat minus this
process's CPU time, in cores) is recorded; a row where it exceeds ``--busy-cores`` is run again
(up to ``--retries`` times) and the quietest attempt is kept.

Memory: the peak resident-memory increase of one call, measured in a fresh child process per
point: the child builds the model and the input, runs a short warm-up, returns freed heap to
the system (``malloc_trim``), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``),
reads its RSS, runs the call once and reads its peak RSS (``VmHWM``; ``ru_maxrss`` also holds
the peak of the parent process inherited at exec). Increase = peak - RSS before (weights and
input excluded; they are listed as the baseline). The tiny
models are measured at ``--tiny-memory-seconds``; the full-size ones at a few short lengths
that fit in memory, and a least-squares line through those points is evaluated at the tiny
lengths.

    python bench/music_codecs.py                                # print the section
    python bench/music_codecs.py --update docs/benchmarks.md
    python bench/music_codecs.py --parts speed --sizes full --results music_codecs.json \
        --update docs/benchmarks.md                             # re-run some rows, keep the rest

``--results FILE`` keeps every measured row in FILE: a run takes the rows it does not measure
from there, so rows taken while the machine was busy can be measured again on their own (of two
measurements of a speed row, the one with less other CPU use is kept).
``--update`` writes the section "## Music codecs (MuQ, Oobleck VAE) on CPU" into the file,
replacing an earlier copy of that section and keeping every other one.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from report import cpu_name, update_doc  # noqa: E402
from rss import release_heap, reset_peak, status_mib  # noqa: E402

from shirabe.cli import ArgumentParser, InputError, run_main  # noqa: E402

SECTION = "## Music codecs (MuQ, Oobleck VAE) on CPU"
SAMPLE_RATE = 48000
FIXTURES = ROOT / "tests" / "fixtures"
OPS = ("muq", "vae-encode", "vae-decode")
SIZES = ("full", "tiny")
# the mode each op is timed in: MuQ in its default windows, the encoder whole, the decoder chunked
SPEED_CHUNKED = {"muq": True, "vae-encode": False, "vae-decode": True}
MODE_NAMES = {("muq", True): "30 s windows", ("muq", False): "whole signal",
              ("vae-encode", True): "chunked", ("vae-encode", False): "unchunked",
              ("vae-decode", True): "chunked", ("vae-decode", False): "unchunked"}
# SongBloom's decode chunks, 128 latent frames overlapping by 32, as seconds of audio (full-size
# VAE: 1920 samples per frame at 48 kHz); the tiny VAE (8 samples per frame) gets chunks of the
# same duration, not of the same frame count (128 of its frames are 21 ms of audio)
CHUNK_SECONDS, OVERLAP_SECONDS = 128 * 1920 / SAMPLE_RATE, 32 * 1920 / SAMPLE_RATE


# -- models and inputs ---------------------------------------------------------------------------


def build(model: str, size: str) -> torch.nn.Module:
    """``model`` in {"muq", "vae"}, ``size`` in {"full", "tiny"}; eval mode, CPU, float32."""
    if model == "muq":
        from shirabe.ssl import MuQ, MuQConfig, load_muq

        if size == "tiny":
            return load_muq(FIXTURES / "muq_tiny")
        torch.manual_seed(0)
        return MuQ(MuQConfig()).eval()
    if model == "vae":
        from shirabe.codec import build_stable_audio_1920_vae, load_vae

        if size == "tiny":
            return load_vae(FIXTURES / "oobleck_vae_tiny" / "vae.json", FIXTURES / "oobleck_vae_tiny" / "vae.ckpt")
        torch.manual_seed(0)
        return build_stable_audio_1920_vae(device="cpu")
    raise ValueError(f"unknown model {model!r}")


def model_of(op: str) -> str:
    return "muq" if op == "muq" else "vae"


def stereo_audio(seconds: float, seed: int = 0) -> torch.Tensor:
    """(2, N) float32 at 48 kHz: two sines per channel plus noise, peak about 0.5."""
    n = int(round(seconds * SAMPLE_RATE))
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    left = 0.2 * np.sin(2 * np.pi * 220.0 * t) + 0.1 * np.sin(2 * np.pi * 1375.0 * t)
    right = 0.2 * np.sin(2 * np.pi * 330.0 * t) + 0.1 * np.sin(2 * np.pi * 2750.0 * t)
    audio = np.stack([left, right]).astype(np.float32)
    audio += 0.05 * rng.standard_normal(audio.shape, dtype=np.float32)
    return torch.from_numpy(audio)


def make_input(op: str, model: torch.nn.Module, seconds: float, seed: int = 0):
    """What :func:`run_op` takes for ``seconds`` of audio."""
    audio = stereo_audio(seconds, seed)
    if op == "muq":
        return np.ascontiguousarray(audio.T.numpy())  # (N, 2), as shirabe.ssl.encode takes it
    if op == "vae-encode":
        return audio.unsqueeze(0)
    if op == "vae-decode":
        frames = model.num_frames(audio.shape[-1])
        g = torch.Generator().manual_seed(seed)
        return torch.randn(1, model.latent_dim, frames, generator=g)
    raise ValueError(f"unknown op {op!r}")


def run_op(op: str, model: torch.nn.Module, inputs, chunked: bool) -> torch.Tensor:
    """One call of the measured operation."""
    with torch.inference_mode():
        if op == "muq":
            from shirabe.ssl import encode

            return encode(model, inputs, SAMPLE_RATE, window_seconds=30.0 if chunked else None)
        if op == "vae-encode":
            return model.encode(inputs, SAMPLE_RATE, chunked=chunked, chunk_seconds=CHUNK_SECONDS,
                                overlap_seconds=OVERLAP_SECONDS)
        if op == "vae-decode":
            chunk, overlap = chunk_frames(model)
            return model.decode(inputs, chunked=chunked, chunk_size=chunk, overlap=overlap)
    raise ValueError(f"unknown op {op!r}")


def chunk_frames(vae) -> tuple[int, int]:
    """(chunk, overlap) in latent frames of ``vae``: :data:`CHUNK_SECONDS`, :data:`OVERLAP_SECONDS`."""
    return round(CHUNK_SECONDS * vae.frame_rate), round(OVERLAP_SECONDS * vae.frame_rate)


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- speed ---------------------------------------------------------------------------------------


def busy_seconds() -> float | None:
    """CPU-busy seconds of the whole machine since boot (/proc/stat), or None where unreadable."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(v) for v in fields[:8]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class SpeedRow:
    size: str
    op: str
    threads: int
    seconds: float  # clip length
    wall: float  # median wall time of one call
    cpu: float  # median process CPU time of one call
    load: float  # 1-min load average before the row
    others: float | None  # other processes' CPU use during the timed runs, in cores
    attempts: int = 1
    repeats: int = 1

    @property
    def per_minute(self) -> float:
        return self.wall / self.seconds * 60.0

    @property
    def cpu_per_minute(self) -> float:
        return self.cpu / self.seconds * 60.0


def time_op(op: str, model, inputs, seconds: float, threads: int, repeats: int, warmup) -> SpeedRow:
    """Median wall and CPU time of ``repeats`` calls after one call on ``warmup``."""
    torch.set_num_threads(threads)
    chunked = SPEED_CHUNKED[op]
    run_op(op, model, warmup, chunked)
    load = os.getloadavg()[0]
    walls, cpus = [], []
    busy0, own0 = busy_seconds(), time.process_time()
    wall_total = 0.0
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        run_op(op, model, inputs, chunked)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        wall_total += walls[-1]
    busy1, own1 = busy_seconds(), time.process_time()
    others = None
    if busy0 is not None and busy1 is not None and wall_total > 0:
        others = max(0.0, ((busy1 - busy0) - (own1 - own0)) / wall_total)
    return SpeedRow("", op, threads, seconds, statistics.median(walls), statistics.median(cpus), load, others,
                    repeats=repeats)


def speed_rows(args, size: str, models: dict) -> list[SpeedRow]:
    rows = []
    for op in (o for o in OPS if o in args.ops):
        model = models[model_of(op)]
        seconds = args.muq_seconds if op == "muq" else args.vae_seconds
        inputs = make_input(op, model, seconds)
        warmup = make_input(op, model, args.warmup_seconds, seed=1)
        for threads in args.threads:
            best = None
            for attempt in range(1 + args.retries):
                row = time_op(op, model, inputs, seconds, threads, args.repeats, warmup)
                row.size, row.attempts = size, attempt + 1
                log(f"speed {size} {op} threads={threads}: {row.wall:.2f} s for {seconds:g} s "
                    f"({row.per_minute:.1f} s/min, cpu {row.cpu:.2f} s), load {row.load:.2f}, "
                    f"others {fmt_cores(row.others)}")
                if best is None or (row.others or 0.0) < (best.others or 0.0):
                    best = row
                if row.others is None or row.others <= args.busy_cores:
                    break
            best.attempts = row.attempts
            rows.append(best)
    return rows


# -- memory --------------------------------------------------------------------------------------


def measure_here(op: str, size: str, seconds: float, chunked: bool, threads: int) -> dict:
    """Peak-RSS increase of one call, measured in this process (run it in a fresh one)."""
    torch.set_num_threads(threads)
    model = build(model_of(op), size)
    inputs = make_input(op, model, seconds)
    run_op(op, model, make_input(op, model, 2.0, seed=1), chunked)  # warm-up: one-time allocations
    release_heap()
    reset = reset_peak()
    before = status_mib("VmRSS")
    t0 = time.perf_counter()
    out = run_op(op, model, inputs, chunked)
    wall = time.perf_counter() - t0
    # VmHWM is the peak of this process's own memory map. ru_maxrss is the same figure, except that
    # it never drops below the peak carried over at exec (that of the process that started this
    # one), which the reset above cannot clear.
    peak = status_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"op": op, "size": size, "seconds": seconds, "chunked": chunked, "threads": threads,
            "baseline_mib": before, "peak_mib": peak, "increase_mib": peak - before, "peak_reset": reset,
            "wall": wall, "output_shape": list(out.shape)}


def memory_child(spec: str) -> None:
    """Entry point of the child process: measure the point described by the JSON ``spec``."""
    s = json.loads(spec)
    result = measure_here(s["op"], s["size"], s["seconds"], s["chunked"], s["threads"])
    print(json.dumps(result), flush=True)


def memory_point(op: str, size: str, seconds: float, chunked: bool, threads: int = 2,
                 timeout: float = 900.0) -> dict:
    """:func:`measure_here` in a fresh Python process."""
    spec = json.dumps({"op": op, "size": size, "seconds": seconds, "chunked": chunked, "threads": threads})
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); import music_codecs; music_codecs.memory_child(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, spec], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory point {spec} failed (exit {proc.returncode}): {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def output_mib_per_second(points: list[dict]) -> float:
    """Size of the returned tensor (float32) per second of audio, averaged over ``points``."""
    return float(np.mean([np.prod(p["output_shape"]) * 4 / 2 ** 20 / p["seconds"] for p in points]))


def fit_memory(points: list[dict], chunked: bool) -> tuple[float, float]:
    """(intercept, slope) in MiB and MiB/s of the working memory over the song length.

    Unchunked: the least-squares line through the points. Chunked (and MuQ in windows, measured
    from one window on): what a chunk needs does not depend on the length, only the output
    does, so the slope is the output's size per second and the level the mean of the points
    net of it (a least-squares line through flat, noisy points would extrapolate the noise)."""
    if not chunked:
        return fit_line([(p["seconds"], p["increase_mib"]) for p in points])
    slope = output_mib_per_second(points)
    return float(np.mean([p["increase_mib"] - slope * p["seconds"] for p in points])), slope


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of y over x; a flat line through one point."""
    if not points:
        raise ValueError("no points to fit")
    if len(points) == 1:
        return points[0][1], 0.0
    xs = np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points], dtype=np.float64)
    slope, intercept = np.polyfit(xs, ys, 1)
    return float(intercept), float(slope)


def full_memory_plan(args) -> list[tuple[str, bool, list[float]]]:
    """(op, chunked, lengths) measured at full size. MuQ's windowed run is measured from one window
    on (a shorter signal is one window, the same call as the whole signal)."""
    return [
        ("muq", True, list(args.full_muq_windowed_seconds)),
        ("muq", False, list(args.full_muq_seconds)),
        ("vae-encode", True, list(args.full_vae_seconds)),
        ("vae-encode", False, list(args.full_vae_seconds)),
        ("vae-decode", True, list(args.full_vae_seconds)),
        ("vae-decode", False, list(args.full_vae_seconds)),
    ]


def memory_points(args, size: str) -> list[dict]:
    if size == "tiny":
        plan = [(op, chunked, list(args.tiny_memory_seconds)) for op in OPS for chunked in (True, False)]
    else:
        plan = full_memory_plan(args)
    plan = [item for item in plan if item[0] in args.ops]
    out = []
    for op, chunked, lengths in plan:
        for seconds in lengths:
            r = memory_point(op, size, seconds, chunked, args.memory_threads)
            log(f"memory {size} {op} {MODE_NAMES[op, chunked]} {seconds:g} s: +{r['increase_mib']:.0f} MiB "
                f"over {r['baseline_mib']:.0f} MiB ({r['wall']:.1f} s)")
            out.append(r)
    return out


# -- report --------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fmt_cores(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def fmt_mib(value: float) -> str:
    return f"{value:,.0f}"


def fmt_threads(points: list[dict]) -> str:
    return "/".join(str(t) for t in sorted({p["threads"] for p in points}))


def total_memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 ** 2
    except OSError:
        pass
    return float("nan")


def group_points(points: list[dict]) -> dict[tuple[str, bool], list[dict]]:
    groups: dict[tuple[str, bool], list[dict]] = {}
    for p in points:
        groups.setdefault((p["op"], p["chunked"]), []).append(p)
    return groups


def speed_table(rows: list[SpeedRow]) -> list[str]:
    lines = ["| size | op | mode | threads | clip (s) | runs | time (s) | CPU time (s) | **s per min of audio** "
             "| CPU s per min | 1-min load before | other CPU use (cores) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.size} | {r.op} | {MODE_NAMES[r.op, SPEED_CHUNKED[r.op]]} | {r.threads} | "
                     f"{r.seconds:g} | {r.repeats} | {r.wall:.2f} | {r.cpu:.2f} | **{r.per_minute:.1f}** | "
                     f"{r.cpu_per_minute:.1f} | {r.load:.2f} | {fmt_cores(r.others)} |")
    return lines


def tiny_memory_table(points: list[dict], lengths: list[float]) -> list[str]:
    head = " | ".join(f"{s:g} s" for s in lengths)
    lines = [f"| op | mode | threads | {head} | baseline (weights + input, MiB) |",
             "|---|---|---:|" + "---:|" * len(lengths) + "---:|"]
    for (op, chunked), pts in group_points(points).items():
        by_len = {p["seconds"]: p for p in pts}
        cells = " | ".join(fmt_mib(by_len[s]["increase_mib"]) if s in by_len else "—" for s in lengths)
        base = " – ".join(fmt_mib(by_len[s]["baseline_mib"]) for s in lengths if s in by_len)
        lines.append(f"| {op} | {MODE_NAMES[op, chunked]} | {fmt_threads(pts)} | {cells} | {base} |")
    return lines


def full_memory_table(points: list[dict], lengths: list[float]) -> tuple[list[str], dict]:
    head = " | ".join(f"≈ {s:g} s" for s in lengths)
    lines = [f"| op | mode | threads | measured (s: MiB) | fit: MiB = a + b·s | {head} | baseline (MiB) |",
             "|---|---|---:|---|---|" + "---:|" * len(lengths) + "---:|"]
    predicted = {}
    for (op, chunked), pts in group_points(points).items():
        pts = sorted(pts, key=lambda p: p["seconds"])
        a, b = fit_memory(pts, chunked)
        measured = ", ".join(f"{p['seconds']:g}: {fmt_mib(p['increase_mib'])}" for p in pts)
        preds = [a + b * s for s in lengths]
        predicted[op, chunked] = dict(zip(lengths, preds))
        cells = " | ".join(fmt_mib(v) for v in preds)
        base = " – ".join(fmt_mib(p["baseline_mib"]) for p in (pts[0], pts[-1]))
        lines.append(f"| {op} | {MODE_NAMES[op, chunked]} | {fmt_threads(pts)} | {measured} | {a:,.0f} + {b:,.2f}·s | {cells} | {base} |")
    return lines, predicted


def summary(rows: list[SpeedRow], predicted: dict, args) -> list[str]:
    """Sentences on what the numbers mean, from the measured values."""
    out = []
    one = {r.op: r for r in rows if r.size == "full" and r.threads == 1}
    two = {r.op: r for r in rows if r.size == "full" and r.threads == 2}
    if all(op in one for op in ("muq", "vae-encode")):
        enc = one["muq"].cpu_per_minute + one["vae-encode"].cpu_per_minute
        hours = enc * args.corpus_minutes / 3600
        text = (f"Encoding a corpus of {args.corpus_minutes:g} minutes of music (jaCappella: ~50 songs × ~60 s) "
                f"at full size with MuQ and the VAE encoder costs about {enc:.0f} CPU-seconds per minute of "
                f"audio, i.e. **{hours:.1f} CPU-hours** on one core of this machine")
        if all(op in two and two[op].others is not None and two[op].others <= args.busy_cores
               for op in ("muq", "vae-encode")):
            wall2 = (two["muq"].per_minute + two["vae-encode"].per_minute) * args.corpus_minutes / 3600
            text += f" ({wall2:.1f} h of wall time with 2 threads)"
        out.append(text + ".")
    if "vae-decode" in one:
        out.append(f"Decoding latents back to audio (chunked) costs {one['vae-decode'].cpu_per_minute:.0f} "
                   "CPU-seconds per minute of audio at 1 thread.")
    if predicted:
        longest = max(next(iter(predicted.values())))
        bits = []
        for op in ("vae-encode", "vae-decode", "muq"):
            if (op, True) in predicted and (op, False) in predicted:
                bits.append(f"{op} {fmt_mib(predicted[op, False][longest])} MiB "
                            f"{MODE_NAMES[op, False]} vs {fmt_mib(predicted[op, True][longest])} MiB "
                            f"{MODE_NAMES[op, True]}")
        if bits:
            out.append(f"For a {longest:g} s song at full size the extrapolated working memory is "
                       + "; ".join(bits) + ".")
    return out


def render(results: dict, args) -> str:
    speed, params = results["speed"], results["params"]
    tiny_mem = [p for p in results["memory"] if p["size"] == "tiny"]
    full_mem = [p for p in results["memory"] if p["size"] == "full"]
    sizes = []
    if "muq/full" in params or "vae/full" in params:
        sizes.append(f"full size: MuQ-large-msd-iter's layout ({params.get('muq/full', 0) / 1e6:.1f} M parameters) "
                     f"and SongBloom's stable_audio_1920 VAE ({params.get('vae/full', 0) / 1e6:.1f} M)")
    if "muq/tiny" in params or "vae/tiny" in params:
        sizes.append(f"tiny: the test fixtures muq_tiny ({params.get('muq/tiny', 0) / 1e3:.0f} k parameters) and "
                     f"oobleck_vae_tiny ({params.get('vae/tiny', 0) / 1e3:.0f} k)")
    lines = [
        SECTION,
        "",
        "Random weights (speed and memory do not depend on the values), fp32, batch 1, synthetic 48 kHz "
        "stereo input (sines + noise); " + "; ".join(sizes) + ".",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {total_memory_gib():.0f} GiB RAM; "
        f"torch {torch.__version__}.",
        "",
        "Commands" + (" (a memory point measured again is replaced; of two measurements of a speed row the one "
                      "with less other CPU use is kept):" if len(results["runs"]) > 1 else ":"),
        "",
    ]
    lines += [f"- `{r['command']}` ({r['date']}, {r['minutes']:.1f} min)" for r in results["runs"]]
    if speed:
        lines += [
            "",
            "### Speed",
            "",
            "Compute per minute of 48 kHz stereo audio = median time of one call / clip length × 60 "
            "(one warm-up call on a short clip, then the median of the runs listed). "
            "`muq`: `shirabe.ssl.encode` (downmix, soxr resampling to 24 kHz, default 30 s windows "
            "overlapping by 10 s: about 1.5× the audio length is run through the network); "
            "`vae-encode`: `OobleckVAE.encode` (posterior mean, unchunked); `vae-decode`: `OobleckVAE.decode(chunked=True)` (SongBloom's "
            "128-frame chunks overlapping by 32 = 5.12 s of audio sharing 1.28 s; random N(0, 1) latents for the clip's length). Chunked encoding "
            "runs the same windows as the chunked decode (128/96 ≈ 1.33× the frames for a long song). "
            "\"Other CPU use\" is the busy time of the whole machine (/proc/stat) minus this process's "
            "CPU time during the timed runs, in cores; of several measurements of a row, the one with "
            "the least other CPU use is shown.",
            "",
        ]
        lines += speed_table(speed)
        if any(r.attempts > 1 for r in speed):
            lines += ["", "Rows run more than once because of other CPU use: "
                      + ", ".join(f"{r.size} {r.op} {r.threads} thread(s) ({r.attempts}×)"
                                  for r in speed if r.attempts > 1) + "."]
    if tiny_mem or full_mem:
        lines += [
            "",
            "### Peak memory versus song length",
            "",
            "Working memory of one call = peak resident memory of a fresh child process during the call "
            "minus its resident memory just before it (model weights and the input audio or latents are "
            "excluded; they are the baseline column). The child builds the model and the input, runs a "
            "2 s warm-up, returns freed heap to the system (`malloc_trim`), resets the kernel's peak-RSS "
            "mark (`/proc/self/clear_refs`) and reads the peak (`VmHWM`, which is `ru_maxrss` without "
            "the parent's peak that a process inherits at exec) after the call; "
            "intra-op threads as listed. Chunked = the VAE in 5.12 s chunks sharing 1.28 s "
            "(SongBloom's 128 frames with overlap 32 at full size; the tiny VAE, 8 samples per frame, "
            "gets chunks of the same duration, 30720 frames sharing 7680); MuQ's windows are "
            "30 s with 10 s overlap.",
        ]
        if not all(p["peak_reset"] for p in tiny_mem + full_mem):
            lines += ["", "The peak-RSS mark could not be reset on this machine: the figures are upper bounds."]
        if tiny_mem:
            lines += ["", "Tiny fixtures, measured (MiB):", ""]
            lines += tiny_memory_table(tiny_mem, list(args.tiny_memory_seconds))
        predicted = {}
        if full_mem:
            table, predicted = full_memory_table(full_mem, list(args.tiny_memory_seconds))
            lines += [
                "",
                "Full size (MiB): measured at the short lengths listed (what fits in this machine's memory "
                "and time), then a line evaluated at the longer lengths (≈: extrapolated): unchunked, the "
                "least-squares line through the points; chunked and windowed, flat plus the output (slope = "
                "size of the returned tensor per second, level = mean of the points net of it), since what "
                "one chunk or window needs does not depend on the song length. MuQ in 30 s windows is measured from one window on; the whole-signal "
                "run at lengths up to one window (the same call at 30 s), assuming linear growth beyond "
                "(CPU attention in `scaled_dot_product_attention` does not hold the T×T matrix; the tiny "
                "rows show the growth at 300 s).",
                "",
            ]
            lines += table
    else:
        predicted = {}
    lines += ["", "### Reading the numbers", ""]
    text = summary(speed, predicted, args)
    lines += [" ".join(text), ""] if text else []
    lines += [
        "With chunking (VAE) or windows (MuQ) the working memory stays flat once the song is longer than "
        "one chunk or window (what still grows is the output); without them it grows with the song. "
        "Wall-clock rows are comparable only where the other CPU use and the load before the row were "
        "well below the CPU count; at 1 thread the CPU-seconds column is what a row costs on an idle core.",
    ]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


# -- main ----------------------------------------------------------------------------------------


def speed_key(r: SpeedRow) -> tuple:
    return r.size, r.op, r.threads


def memory_key(p: dict) -> tuple:
    return p["size"], p["op"], p["chunked"], p["seconds"]


def read_results(path: Path | None) -> dict:
    """Rows and points stored by earlier runs (``--results``), or an empty store."""
    results = {"speed": [], "memory": [], "params": {}, "runs": []}
    if path is None or not path.exists():
        return results
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        results.update(speed=[SpeedRow(**r) for r in data["speed"]], memory=list(data["memory"]),
                       params=dict(data["params"]), runs=list(data["runs"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a results file of this benchmark ({e})") from None
    return results


def quieter(old: SpeedRow, new: SpeedRow) -> SpeedRow:
    """Of two measurements of one speed row, the one with less other CPU use (the new one on a tie)."""
    if old.others is not None and (new.others is None or old.others < new.others):
        return old
    return new


def merge_results(results: dict, speed: list[SpeedRow], memory: list[dict]) -> None:
    """Add the new rows and points: a memory point replaces the stored one with the same key; a
    speed row replaces it only if other processes used less CPU during it (:func:`quieter`)."""
    rows = {speed_key(r): r for r in results["speed"]}
    for r in speed:
        rows[speed_key(r)] = quieter(rows[speed_key(r)], r) if speed_key(r) in rows else r
    results["speed"] = list(rows.values())
    new_memory = {memory_key(p) for p in memory}
    results["memory"] = [p for p in results["memory"] if memory_key(p) not in new_memory] + memory
    order = {(s, o): i for i, (s, o) in enumerate((s, o) for s in SIZES for o in OPS)}
    results["speed"].sort(key=lambda r: (order[r.size, r.op], r.threads))
    results["memory"].sort(key=lambda p: (SIZES.index(p["size"]), OPS.index(p["op"]), not p["chunked"],
                                          p["seconds"]))


def write_results(path: Path, results: dict) -> None:
    data = dict(results, speed=[asdict(r) for r in results["speed"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="bench/music_codecs.py", description=__doc__)
    p.add_argument("--parts", nargs="*", choices=("speed", "memory"), default=["speed", "memory"],
                   help="what to measure; none (a bare --parts) only writes the rows stored in --results")
    p.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS), help="operations to measure")
    p.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES), help="model sizes to measure")
    p.add_argument("--num-threads", dest="threads", metavar="N", type=int, nargs="+", default=[1, 2],
                   help="intra-op thread counts of the speed rows")
    p.add_argument("--muq-seconds", type=float, default=40.0, help="clip length of the MuQ speed rows")
    p.add_argument("--vae-seconds", type=float, default=15.0, help="clip length of the VAE speed rows")
    p.add_argument("--warmup-seconds", type=float, default=5.0, help="clip length of the warm-up call")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per speed row")
    p.add_argument("--busy-cores", type=float, default=0.3,
                   help="re-run a speed row when other processes used more CPU than this (cores)")
    p.add_argument("--retries", type=int, default=1, help="re-runs of a busy speed row")
    p.add_argument("--memory-threads", type=int, default=1, help="intra-op threads of the memory points")
    p.add_argument("--tiny-memory-seconds", type=float, nargs="+", default=[30.0, 150.0, 300.0],
                   help="song lengths of the tiny memory points (and of the full-size extrapolation)")
    p.add_argument("--full-vae-seconds", type=float, nargs="+", default=[6.0, 12.0, 18.0],
                   help="lengths of the full-size VAE memory points")
    p.add_argument("--full-muq-seconds", type=float, nargs="+", default=[10.0, 20.0, 30.0],
                   help="lengths of the full-size whole-signal MuQ memory points")
    p.add_argument("--full-muq-windowed-seconds", type=float, nargs="+", default=[30.0, 45.0, 60.0],
                   help="lengths of the full-size windowed MuQ memory points (from one window on)")
    p.add_argument("--corpus-minutes", type=float, default=50.0,
                   help="corpus length for the CPU-hours estimate (jaCappella: ~50 songs × ~60 s)")
    p.add_argument("--results", type=Path, default=None,
                   help="JSON file that keeps the measured rows: rows of the parts and sizes not measured "
                        "in this run are taken from it; a new memory point replaces the stored one, a new "
                        "speed row only if other processes used less CPU during it")
    p.add_argument("--update", type=Path, default=None, help="markdown file to write the section into")
    p.add_argument("--note", default="", help="extra paragraph under the tables")
    return p


def check_args(args) -> None:
    for name in ("muq_seconds", "vae_seconds", "warmup_seconds"):
        if getattr(args, name) < 2.0:
            raise InputError(f"--{name.replace('_', '-')} must be at least 2 s, got {getattr(args, name)}")
    for name in ("repeats", "memory_threads"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.retries < 0:
        raise InputError(f"--retries must be non-negative, got {args.retries}")
    if any(t < 1 for t in args.threads):
        raise InputError(f"--num-threads values must be at least 1, got {args.threads}")
    for name in ("tiny_memory_seconds", "full_vae_seconds", "full_muq_seconds", "full_muq_windowed_seconds"):
        if any(s < 2.0 for s in getattr(args, name)):
            raise InputError(f"--{name.replace('_', '-')} values must be at least 2 s, got {getattr(args, name)}")


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    check_args(args)
    command = " ".join(["python bench/music_codecs.py", *(sys.argv[1:] if argv is None else argv)])
    start = time.perf_counter()
    results = read_results(args.results)
    run = {"command": command, "date": datetime.date.today().isoformat(), "minutes": 0.0}
    if args.parts:
        results["runs"].append(run)
    elif args.results is None or not args.results.exists():
        raise InputError("nothing to do: no --parts to measure and no --results file to write the section from")

    def save(speed: list[SpeedRow], memory: list[dict]) -> None:  # after every part: a killed run keeps them
        merge_results(results, speed, memory)
        run["minutes"] = (time.perf_counter() - start) / 60
        if args.results is not None:
            write_results(args.results, results)

    for size in args.sizes if args.parts else []:
        models = {m: build(m, size) for m in ("muq", "vae")}
        results["params"].update({f"{m}/{size}": num_params(v) for m, v in models.items()})
        if "speed" in args.parts:
            save(speed_rows(args, size, models), [])
        del models
        gc.collect()
        if "memory" in args.parts:
            save([], memory_points(args, size))
    if args.parts:
        save([], [])
    section = render(results, args)
    print(section, end="")
    if args.update is not None:
        update_doc(args.update, SECTION, section)
    return 0


if __name__ == "__main__":
    run_main(main)
