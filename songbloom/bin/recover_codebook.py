"""Estimate the sketch codebook a released SongBloom model was trained with, from songs it generated.

Each line of ``--songs`` (JSONL) is one generated song: ``audio`` (or
``path``; the decoded song, any format and rate), ``sketch`` (a ``.npy`` of the sketch ids
the model sampled for it) and optionally ``id_rate`` (ids per second, 25 for
the released models): the ``generated.jsonl`` that ``songbloom.bin.infer
--save-sketch true`` writes is such a file. Songs are split (``--heldout-fraction``, ``--seed``)
into fitting and held-out songs; for every MuQ layer in ``--layers`` the
centroid of each id's frames is its estimated row, and the layer whose rows
re-quantise the held-out frames to the sampled ids most often wins
(:mod:`songbloom.sketch.recover`). Writes the codebook (``source
"recovered"``; ids never sampled are marked unknown and never produced), a
per-id TSV of frame counts (``--report``, default beside the codebook) and a
JSON of every layer's agreement.

Training data quantised with a recovered codebook keeps the meaning of the
released model's sketch embedding and classifier; a codebook from
``songbloom.bin.train_vq`` starts a new sketch vocabulary the model must learn.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shirabe.audio import load_audio
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_device_argument,
    add_num_threads_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from songbloom.sketch import Song, recover_codebook

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.recover_codebook", description=__doc__)
    p.add_argument("--songs", type=Path, required=True,
                   help="JSONL of generated songs: audio, sketch (.npy ids), optional id_rate (required)")
    p.add_argument("--muq-dir", type=Path, required=True,
                   help="local MuQ directory (config.json + model.safetensors) (required)")
    p.add_argument("--output", type=Path, required=True, help="codebook file to write (required)")
    p.add_argument("--codebook-size", type=int, default=16384,
                   help="number of sketch ids of the model (num_pitch; 16384 released)")
    p.add_argument("--layers", default="all",
                   help="comma-separated MuQ hidden states to try (0 = subsampling output), or 'all'")
    p.add_argument("--heldout-fraction", type=float, default=0.2, help="share of songs kept to score the layers")
    p.add_argument("--min-count", type=int, default=1, help="an id needs this many frames to get a row")
    p.add_argument("--report", type=Path, default=None, help="per-id counts TSV (default: <output>.counts.tsv)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fit/held-out split")
    add_device_argument(p, "MuQ")
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def read_songs(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{lineno}: not JSON ({e.msg})") from None
        if "audio" not in item and isinstance(item.get("path"), str):
            item["audio"] = item["path"]  # songbloom.bin.infer's generated.jsonl
        for key in ("audio", "sketch"):
            if not isinstance(item.get(key), str):
                raise InputError(f"{path}:{lineno}: field {key!r} (a path) is missing")
            p = Path(item[key])
            item[key] = p if p.is_absolute() else path.parent / p
            if not item[key].is_file():
                raise InputError(f"{path}:{lineno}: field {key!r}: no such file {item[key]}")
        item["lineno"] = lineno
        out.append(item)
    if len(out) < 2:
        raise InputError(f"{path}: needs at least 2 songs (fitting and held-out), got {len(out)}")
    return out


def parse_layers(text: str, depth: int) -> list[int]:
    if text == "all":
        return list(range(depth + 1))
    try:
        layers = [int(v) % (depth + 1) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--layers: expected comma-separated integers or 'all', got {text!r}") from None
    return sorted(set(layers))


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(args.num_threads)
    if not 0 < args.heldout_fraction < 1:
        raise InputError(f"--heldout-fraction must be between 0 and 1, got {args.heldout_fraction}")
    from shirabe.ssl import encode, load_muq

    items = read_songs(args.songs)
    muq = load_muq(args.muq_dir, device=resolve_device(args.device))
    depth = len(muq.model.conformer.layers)
    layers = parse_layers(args.layers, depth)
    songs = []
    for item in tqdm(items, desc="MuQ features", unit="song"):
        where = f"{args.songs}:{item['lineno']}"
        ids = torch.from_numpy(np.load(item["sketch"])).long().reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= args.codebook_size):
            raise InputError(f"{where}: sketch ids must lie in 0..{args.codebook_size - 1}")
        audio, sr = load_audio(item["audio"])
        feats = encode(muq, audio, sr, layers=layers)
        songs.append(Song(str(item["audio"]), {layer: feats[i].cpu() for i, layer in enumerate(layers)}, ids,
                          float(item.get("id_rate", 25.0))))
    order = list(range(len(songs)))
    random.Random(args.seed).shuffle(order)
    n_held = max(1, round(args.heldout_fraction * len(songs)))
    held = [songs[i] for i in order[:n_held]]
    fit = [songs[i] for i in order[n_held:]]
    result = recover_codebook(fit, held, args.codebook_size, layers, args.min_count)
    for r in result.layers:
        logger.info("layer %d: %.1f %% of %d held-out frames re-quantised to the sampled id (%.1f %% of frames "
                    "have an id the fitting songs sampled)", r.layer, 100 * r.agreement, r.frames, 100 * r.coverage)
    cb = result.codebook
    cb.save(args.output)
    report = args.report or args.output.with_name(args.output.stem + ".counts.tsv")
    lines = ["id\tframes\tknown"] + [f"{i}\t{int(c)}\t{int(k)}" for i, (c, k) in enumerate(zip(cb.counts, cb.known))]
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = {"best_layer": cb.muq_layer, "fit_songs": len(fit), "heldout_songs": len(held),
               "ids_known": int(cb.known.sum()), "codebook_size": args.codebook_size,
               "layers": [vars(r) for r in result.layers]}
    args.output.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s: MuQ layer %d, %d of %d ids estimated; per-id counts in %s", args.output, cb.muq_layer,
                int(cb.known.sum()), args.codebook_size, report)
    return 0


if __name__ == "__main__":
    run_main(main)
