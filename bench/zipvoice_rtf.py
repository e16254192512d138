#!/usr/bin/env python3
"""Real-time factor of the base-size ZipVoice on CPU: PyTorch vs ONNX vs ONNX int8.

Builds zipvoice_base.json with random weights (every parameter perturbed so that
no two layers share values, as in a trained checkpoint), exports it with
``zipvoice.export`` (fp32 + dynamic int8) into ``--work-dir`` (reused when
present), and generates ``--seconds`` of speech after a ``--prompt-seconds``
prompt (features and tokens synthesised at ``--tokens-per-second``, so the frame
count follows the model's own length rule) at upstream's sampling settings
(ZipVoice: 16 steps, guidance 1.0, the decoder runs on a doubled batch;
ZipVoiceDistill: 8 steps, guidance 3.0). The generated frames are then decoded
by the full-size Vocos (random weights): PyTorch rows in PyTorch, ONNX rows with
``vocoder.onnx``. One warm-up run, then the median of ``--repeats`` timed runs
per setting.

RTF without vocoder = sampling time / generated audio duration; RTF with
vocoder adds the decode time. Lower is faster.

``--profile true`` first times one decoder call per model and backend with the
onnxruntime profiler / torch profiler and lists where the time goes by op type.

    python bench/zipvoice_rtf.py --profile true           # print the tables
    python bench/zipvoice_rtf.py --update docs/benchmarks.md

``--update`` writes the section "## ZipVoice inference (CPU: PyTorch, ONNX, ONNX int8)"
into the file (replacing it, or the older PyTorch-only section) and keeps every
other section.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import cpu_name, update_doc  # noqa: E402

from shirabe.cli import add_bool_argument  # noqa: E402
from shirabe.vocoder import VOCOS_MEL_24KHZ_CONFIG, build_vocos  # noqa: E402
from zipvoice.models import BASE_CONFIG, SAMPLING_DEFAULTS, build_model, read_config  # noqa: E402
from zipvoice.utils.pipeline import SamplingOptions  # noqa: E402

SECTION = "## ZipVoice inference (CPU: PyTorch, ONNX, ONNX int8)"
OLD_SECTION = "## ZipVoice inference (PyTorch, CPU)"
FRAME_SECONDS = 256 / 24000
BACKENDS = ("torch", "onnx", "onnx-int8")
UPSTREAM = {"zipvoice": {"torch": 9.62, "onnx": 7.58, "onnx-int8": 3.94},
            "zipvoice_distill": {"torch": 2.40, "onnx": 1.84, "onnx-int8": 0.96}}


def build(name: str):
    cfg = read_config(BASE_CONFIG)["model"]
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=360, pad_id=0, model_name=name).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    return model


def build_vocoder():
    torch.manual_seed(0)
    vocos = build_vocos(VOCOS_MEL_24KHZ_CONFIG).eval()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in vocos.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    return vocos


def exported_dir(work_dir: Path, name: str, model, vocos) -> Path:
    from zipvoice.export.exporter import export_zipvoice

    out = work_dir / name
    want = ["text_encoder.onnx", "fm_decoder.onnx", "text_encoder_int8.onnx", "fm_decoder_int8.onnx", "vocoder.onnx"]
    if not all((out / f).is_file() for f in want):
        t0 = time.perf_counter()
        export_zipvoice(model, name, out, int8=True, vocos=vocos)
        print(f"exported {name} to {out} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def make_inputs(args, vocab_size: int):
    g = torch.Generator().manual_seed(0)
    prompt_frames = math.ceil(args.prompt_seconds / FRAME_SECONDS)
    n_prompt = max(1, round(args.prompt_seconds * args.tokens_per_second))
    n_text = max(1, round(args.seconds * args.tokens_per_second))
    prompt_features = (torch.randn(1, prompt_frames, 100, generator=g) * 2.0 - 5.0) * 0.1
    prompt_tokens = torch.randint(1, vocab_size, (n_prompt,), generator=g).tolist()
    tokens = torch.randint(1, vocab_size, (n_text,), generator=g).tolist()
    return prompt_features, prompt_tokens, tokens


def run_torch(model, vocoder, inputs, num_step: int, guidance: float):
    prompt_features, prompt_tokens, tokens = inputs
    c0, t0 = time.process_time(), time.perf_counter()
    gen, lens, _, _ = model.sample(
        [tokens], [prompt_tokens], prompt_features, torch.tensor([prompt_features.shape[1]]),
        speed=1.0, t_shift=0.5, num_step=num_step, guidance_scale=guidance,
    )
    t1, c1 = time.perf_counter(), time.process_time()
    vocoder.decode((gen[:, : int(lens[0])] / 0.1).permute(0, 2, 1))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, int(lens[0]), c1 - c0


def run_onnx(runner, vocoder, inputs, num_step: int, guidance: float):
    prompt_features, prompt_tokens, tokens = inputs
    opts = SamplingOptions(num_step=num_step, guidance_scale=guidance, t_shift=0.5)
    c0, t0 = time.process_time(), time.perf_counter()
    gen = runner.sample(tokens, prompt_tokens, prompt_features[0].numpy(), opts, rng=np.random.default_rng(0))
    t1, c1 = time.perf_counter(), time.process_time()
    vocoder.decode_np(gen / np.float32(0.1))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, gen.shape[0], c1 - c0


# -- profiling -------------------------------------------------------------------------------


def decoder_inputs(model, inputs):
    prompt_features, prompt_tokens, tokens = inputs
    with torch.no_grad():
        text, _ = model.forward_text_inference_ratio_duration([tokens], [prompt_tokens],
                                                              torch.tensor([prompt_features.shape[1]]), 1.0)
    n = text.shape[1]
    speech = torch.zeros(1, n, 100)
    speech[:, : prompt_features.shape[1]] = prompt_features
    x = torch.randn(1, n, 100, generator=torch.Generator().manual_seed(3))
    return x, text, speech


def profile_torch(model, feeds, guidance: float, threads: int) -> tuple[float, list[tuple[str, float]]]:
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads)
    x, text, speech = feeds
    call = lambda: model.solver.model(t=torch.tensor(0.3), x=x, text_condition=text,  # noqa: E731
                                      speech_condition=speech, padding_mask=None, guidance_scale=guidance)
    with torch.inference_mode():
        call()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            call()
            wall = time.perf_counter() - t0
    rows = [(e.key, e.self_cpu_time_total / 1e6) for e in prof.key_averages()]
    return wall, sorted(rows, key=lambda r: -r[1])


def profile_onnx(path: Path, feeds, guidance: float, threads: int) -> tuple[float, list[tuple[str, float]]]:
    from zipvoice.utils.onnx_infer import open_session

    tmp = tempfile.mkdtemp(prefix="ort_profile_")
    sess = open_session(path, threads, "decoder", profile_prefix=str(Path(tmp) / "prof"))
    x, text, speech = (f.numpy() for f in feeds)
    run = {"t": np.array(0.3, np.float32), "x": x, "text_condition": text, "speech_condition": speech,
           "guidance_scale": np.array(guidance, np.float32)}
    sess.run(None, run)
    sess.end_profiling()
    sess = open_session(path, threads, "decoder", profile_prefix=str(Path(tmp) / "prof"))
    sess.run(None, run)  # warm-up is part of this file's first run; use the second
    t0 = time.perf_counter()
    sess.run(None, run)
    wall = time.perf_counter() - t0
    events = json.loads(Path(sess.end_profiling()).read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    last_start = runs[-1]["ts"] if runs else 0
    by_op: Counter = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= last_start:
            by_op[e["args"].get("op_name", "?")] += e["dur"] / 1e6
    return wall, by_op.most_common()


def profile_table(args, models) -> list[str]:
    lines = []
    threads = args.threads[0]
    for name, (model, onnx_dir) in models.items():
        guidance = SAMPLING_DEFAULTS[name]["guidance_scale"]
        feeds = decoder_inputs(model, make_inputs(args, 360))
        results = {
            "torch": profile_torch(model, feeds, guidance, threads),
            "onnx": profile_onnx(onnx_dir / "fm_decoder.onnx", feeds, guidance, threads),
            "onnx-int8": profile_onnx(onnx_dir / "fm_decoder_int8.onnx", feeds, guidance, threads),
        }
        lines += [f"**{name}**, one decoder call ({feeds[0].shape[1]} frames"
                  + (", batch doubled by the guidance" if name == "zipvoice" else "") + f"), {threads} thread(s):", ""]
        lines += ["| backend | wall (s) | top ops by self time (share of the profiled op time) |", "|---|---:|---|"]
        for backend, (wall, rows) in results.items():
            total = sum(t for _, t in rows) or 1.0
            top = ", ".join(f"{op} {100 * t / total:.0f}%" for op, t in rows[:6])
            lines.append(f"| {backend} | {wall:.2f} | {top} |")
            print(f"profile {name} {backend}: {wall:.2f} s; {top}", file=sys.stderr)
        lines.append("")
    return lines


# -- report ----------------------------------------------------------------------------------


def render(rows, args, inputs, params: dict, profile_lines: list[str]) -> str:
    prompt_features, prompt_tokens, tokens = inputs
    lines = [
        SECTION,
        "",
        "`python bench/zipvoice_rtf.py` — zipvoice_base.json (vocab 360; "
        + ", ".join(f"{k} {v / 1e6:.2f} M parameters" for k, v in params.items())
        + "), random weights, batch 1. A "
        f"{args.prompt_seconds:g} s prompt ({prompt_features.shape[1]} frames, {len(prompt_tokens)} tokens) "
        f"and {len(tokens)} text tokens give the generated length below; sampling with t_shift 0.5, then the "
        "full-size Vocos (13.5 M parameters, random weights). `torch`: the PyTorch model (pure-PyTorch Swoosh, "
        "no k2); `onnx`: the exported graphs in onnxruntime (`zipvoice.utils.onnx_infer`, Euler loop in numpy, "
        "vocoder.onnx); `onnx-int8`: the same with the dynamic-int8 text encoder and decoder (vocoder in fp32). "
        f"Median of {args.repeats} run(s) after one warm-up. RTF = time / generated audio duration.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}, "
        f"onnxruntime {ort_version()}; {datetime.date.today().isoformat()}.",
        "",
        "| model | steps | backend | threads | audio (s) | sampling (s) | sampling CPU (s) | vocoder (s) "
        "| RTF w/o vocoder | RTF with vocoder | RTF from CPU time | upstream's published RTF (another CPU; context only) | 1-min load before |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        up = f"{UPSTREAM[r['model']][r['backend']]:.2f}" if r["threads"] == 1 else ""
        cpu_rtf = f"{(r['cpu'] + r['vocoder']) / r['audio']:.3f}" if r["threads"] == 1 else "—"
        lines.append(
            f"| {r['model']} | {r['steps']} | {r['backend']} | {r['threads']} | {r['audio']:.2f} | "
            f"{r['sample']:.2f} | {r['cpu']:.2f} | {r['vocoder']:.2f} | {r['sample'] / r['audio']:.3f} | "
            f"{(r['sample'] + r['vocoder']) / r['audio']:.3f} | {cpu_rtf} | {up} | {r['load']:.2f} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [
        "",
        f"Peak resident memory of the benchmark process: {peak:.0f} MiB. The upstream column is context only: "
        "upstream's published figures (its PR #33: 1 thread, ~3 s prompt → ~10 s output) were measured on a "
        "different CPU, so they do not compare the two implementations; the "
        "[side-by-side measurement](#shirabe-vs-upstream-zipvoice-on-one-machine) below does. Other processes "
        "on the machine slow a run down; compare wall-clock rows only when the load before them was well below "
        "the CPU count. \"Sampling CPU\" is the process CPU time of the sampling: with one thread it is what "
        "the run costs on an otherwise idle core, so \"RTF from CPU time\" ((sampling CPU + vocoder) / audio, "
        "1-thread rows only) is the figure to use when the machine is busy. The three backends of one model "
        "and thread count run back to back.",
    ]
    if profile_lines:
        lines += ["", "### Where the time goes", ""] + profile_lines
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="target generated duration (default: 10)")
    parser.add_argument("--prompt-seconds", type=float, default=3.0, help="prompt duration (default: 3)")
    parser.add_argument("--tokens-per-second", type=float, default=10.0,
                        help="speaking rate of prompt and text (default: 10)")
    parser.add_argument("--models", nargs="+", default=["zipvoice", "zipvoice_distill"],
                        choices=list(SAMPLING_DEFAULTS), help="models to time (default: both)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS,
                        help="backends to time (default: all)")
    parser.add_argument("--num-threads", dest="threads", metavar="N", type=int, nargs="+", default=[1, 2],
                        help="thread counts (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per setting (default: 1)")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "shirabe_zipvoice_bench",
                        help="where the exported graphs are written and reused (default: %(default)s)")
    add_bool_argument(parser, "--profile", False, "profile one decoder call per backend first (default: false)")
    parser.add_argument("--update", type=Path, default=None, help="markdown file to write the section into")
    parser.add_argument("--note", default="", help="extra paragraph under the table")
    args = parser.parse_args()

    from zipvoice.utils.onnx_infer import OnnxVocoder, OnnxZipVoice

    torch.set_num_threads(args.threads[0])
    vocos = build_vocoder()
    inputs = make_inputs(args, 360)
    models, params = {}, {}
    for name in args.models:
        model = build(name)
        params[name] = sum(p.numel() for p in model.parameters())
        models[name] = (model, exported_dir(args.work_dir, name, model, vocos))
    profile_lines = profile_table(args, models) if args.profile else []

    rows = []
    for name, (model, onnx_dir) in models.items():
        steps, guidance = SAMPLING_DEFAULTS[name]["num_step"], SAMPLING_DEFAULTS[name]["guidance_scale"]
        for threads in args.threads:
            torch.set_num_threads(threads)
            for backend in args.backends:
                if backend == "torch":
                    def once(k, model=model, guidance=guidance):
                        with torch.inference_mode():
                            return run_torch(model, vocos, inputs, k, guidance)
                else:
                    runner = OnnxZipVoice(onnx_dir, int8=backend == "onnx-int8", num_thread=threads)
                    voc = OnnxVocoder(onnx_dir / "vocoder.onnx", threads)

                    def once(k, runner=runner, voc=voc, guidance=guidance):
                        return run_onnx(runner, voc, inputs, k, guidance)
                once(1)  # warm-up
                load = os.getloadavg()[0]
                runs = [once(steps) for _ in range(args.repeats)]
                sample = statistics.median(r[0] for r in runs)
                voc_s = statistics.median(r[1] for r in runs)
                cpu = statistics.median(r[3] for r in runs)
                audio = runs[0][2] * FRAME_SECONDS
                rows.append({"model": name, "steps": steps, "backend": backend, "threads": threads,
                             "audio": audio, "sample": sample, "vocoder": voc_s, "cpu": cpu, "load": load})
                print(f"{name} {backend} threads={threads} audio={audio:.2f}s sample={sample:.2f}s "
                      f"(cpu {cpu:.2f}s) vocoder={voc_s:.2f}s RTF={sample / audio:.3f} / "
                      f"{(sample + voc_s) / audio:.3f} load={load:.2f}", file=sys.stderr, flush=True)
    section = render(rows, args, inputs, params, profile_lines)
    print(section)
    if args.update is not None:
        text = args.update.read_text(encoding="utf-8") if args.update.exists() else ""
        heading = OLD_SECTION if OLD_SECTION in text.splitlines() else SECTION
        update_doc(args.update, heading, section)


if __name__ == "__main__":
    main()
