"""Train a sketch codebook: MuQ frames of the training songs clustered by k-means.

Frames of one MuQ hidden state (``--muq-layer``, default the last) are gathered
from the songs of ``--manifest`` (at most ``--max-frames``, drawn evenly from
every song with ``--seed``), then clustered (k-means++ start, then mini-batch
or EMA updates with dead-code restarts; see :mod:`songbloom.sketch.kmeans`).
Usage and perplexity are logged; the codebook is written atomically (read
with ``weights_only=True``) with a JSON report beside it.

A codebook trained here gives ids whose meaning a released SongBloom model
does not know; to fine-tune a released model keeping its sketch vocabulary,
recover its codebook instead (``python -m songbloom.bin.recover_codebook``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_num_threads_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from songbloom.manifests import load_song_cuts
from songbloom.sketch import UPDATES, Codebook, fit_codebook

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.train_vq", description=__doc__)
    p.add_argument("--manifest", type=Path, required=True,
                   help="training songs: a lhotse CutSet or RecordingSet (required)")
    p.add_argument("--muq-dir", type=Path, required=True,
                   help="local MuQ directory (config.json + model.safetensors) (required)")
    p.add_argument("--output", type=Path, required=True, help="codebook file to write (required)")
    p.add_argument("--muq-layer", type=int, default=-1,
                   help="MuQ hidden state to cluster: 0 = subsampling output, depth = last; negative counts "
                        "from the end")
    p.add_argument("--codebook-size", type=int, default=16384, help="number of sketch ids (16384 as released)")
    p.add_argument("--max-frames", type=int, default=500000, help="at most this many 25 Hz frames are clustered")
    p.add_argument("--steps", type=int, default=2000, help="mini-batch updates")
    p.add_argument("--batch-size", type=int, default=8192, help="frames per update")
    p.add_argument("--update", choices=UPDATES, default="minibatch",
                   help="minibatch: running mean per code; ema: exponential moving average")
    p.add_argument("--decay", type=float, default=0.99, help="EMA decay for --update ema")
    p.add_argument("--init-sample", type=int, default=65536, help="frames k-means++ chooses the start from")
    p.add_argument("--restart-every", type=int, default=50, help="dead-code check every N steps (0: never)")
    p.add_argument("--dead-fraction", type=float, default=0.1,
                   help="a code used less than this fraction of the mean over those steps is restarted")
    p.add_argument("--seed", type=int, default=0, help="random seed (frame sampling, initialisation, batches)")
    add_bool_argument(p, "--progress", True, "progress bars")
    add_device_argument(p, "MuQ and k-means")
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def gather_frames(cuts, muq, layer: int, max_frames: int, seed: int, progress: bool) -> tuple[torch.Tensor, int]:
    """Up to ``max_frames`` frames, the same share from every song; returns (frames, songs used)."""
    from shirabe.ssl import encode

    total_seconds = sum(c.duration for c in cuts)
    share = min(1.0, max_frames / max(total_seconds * 25.0, 1.0))
    g = torch.Generator().manual_seed(seed)
    pieces, used = [], 0
    for cut in tqdm(cuts, desc="MuQ features", unit="song", disable=not progress):
        try:
            audio = cut.load_audio()
        except Exception as e:  # unreadable audio: skip, say so
            logger.warning("skipping %s: cannot read its audio (%s)", cut.id, str(e).splitlines()[0])
            continue
        try:
            mono = np.asarray(audio, dtype=np.float32).mean(axis=0)
            feats = encode(muq, mono, cut.sampling_rate, layers=layer)
        except ValueError as e:
            logger.warning("skipping %s: %s", cut.id, e)
            continue
        keep = max(1, round(share * feats.shape[0]))
        idx = torch.randperm(feats.shape[0], generator=g)[:keep].sort().values
        pieces.append(feats[idx.to(feats.device)].float())
        used += 1
    if not pieces:
        raise InputError("no song gave MuQ features (see the warnings above)")
    return torch.cat(pieces), used


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(args.num_threads)
    for name in ("codebook_size", "max_frames", "steps", "batch_size", "init_sample"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    from shirabe.ssl import load_muq

    device = resolve_device(args.device)
    cuts = load_song_cuts(args.manifest)
    muq = load_muq(args.muq_dir, device=device)
    depth = len(muq.model.conformer.layers)
    if not -(depth + 1) <= args.muq_layer <= depth:
        raise InputError(f"--muq-layer {args.muq_layer}: this MuQ has hidden states 0..{depth}")
    layer = args.muq_layer % (depth + 1)
    frames, songs = gather_frames(cuts, muq, layer, args.max_frames, args.seed, args.progress)
    logger.info("clustering %d frames of MuQ layer %d from %d songs into %d codes", len(frames), layer, songs,
                args.codebook_size)
    if len(frames) < args.codebook_size:
        raise InputError(f"{args.manifest}: {len(frames)} frames cannot fit {args.codebook_size} codes; "
                         "give more songs or a smaller --codebook-size")
    rows, counts, stats = fit_codebook(
        frames.to(device), args.codebook_size, steps=args.steps, batch_size=args.batch_size, update=args.update,
        decay=args.decay, init_sample=args.init_sample, restart_every=args.restart_every,
        dead_fraction=args.dead_fraction, seed=args.seed, log_every=max(1, args.steps // 20),
        progress=args.progress)
    Codebook(rows, layer, "kmeans", counts=counts).save(args.output)
    used = int((counts > 0).sum())
    report = {"muq_layer": layer, "codebook_size": args.codebook_size, "frames": len(frames), "songs": songs,
              "codes_used": used, "final_mse_per_dim": stats.mse[-1], "final_perplexity": stats.perplexity[-1],
              "restarts": stats.restarts, "update": args.update, "steps": args.steps}
    report_path = args.output.with_suffix(".json")
    tmp = report_path.with_name(f".{report_path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    tmp.replace(report_path)
    logger.info("wrote %s: %d of %d codes hold frames, perplexity %.1f, mse %.4g per dim, %d restarts",
                args.output, used, args.codebook_size, stats.perplexity[-1], stats.mse[-1], stats.restarts)
    return 0


if __name__ == "__main__":
    run_main(main)
