"""Cache what ACE-Step training needs per song: DCAE latents, UMT5 prompt states and lyric ids.

Reads a folder in ACE-Step's seed-file layout (``{key}.mp3|wav|flac`` or, with ``--target mix|inst``,
the mini corpus's ``{key}_mix.wav`` / ``{key}_inst.wav``, plus ``{key}_prompt.txt`` and an optional
``{key}_lyrics.txt``) and writes, under ``--output-dir``:

- ``cuts.jsonl.gz``: a lhotse CutSet, one cut per song, whose custom fields reference the arrays
  (see :mod:`acestep.training.cache`; ``acestep.bin.train --cache-dir`` reads it);
- ``storage/``: the arrays (``.npy``, exact float32);
- ``rejects.txt``: the songs left out by this run and why (tab-separated: id, path, reason);
- ``cache_settings.json``: the settings the cache was made with (a rerun must use the same).

Resumable: every finished song is appended to a journal at once, and a rerun skips the keys the
output already holds (finished songs of an interrupted run included); the manifest is rebuilt from
all finished songs and replaced atomically at the end. Songs added to the folder later are cached
by a rerun. Bad songs (undecodable or empty audio, silent audio, a missing or empty prompt file,
lyrics that fail to tokenize, two audio files for one key) are skipped, counted and listed.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import torch
from tqdm import tqdm

from acestep.text.lyrics import add_lyrics_arguments, lyric_tokenizer_from_args
from acestep.training.cache import (
    JOURNAL,
    MANIFEST,
    REJECTS,
    SETTINGS,
    STORAGE,
    TARGETS,
    SongEncoder,
    find_items,
    song_cut,
)
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
from shirabe.data.rejects import Rejects, reason_of

logger = get_logger(__name__)
DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.cache_latents", description=__doc__)
    p.add_argument("--checkpoint-dir", type=Path, required=True,
                   help="released checkpoint folder (music_dcae_f8c8/, music_vocoder/, umt5-base/ are used) "
                        "(required)")
    p.add_argument("--data-dir", type=Path, required=True, help="folder of songs in the seed-file layout (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="cache folder (required)")
    p.add_argument("--target", choices=TARGETS, default="audio",
                   help="which audio of a key: audio = {key}.mp3|wav|flac, mix = {key}_mix.wav, "
                        "inst = {key}_inst.wav (the mini corpus's accompaniment part)")
    p.add_argument("--max-duration", type=float, default=240.0, help="songs are cut to this many seconds")
    p.add_argument("--num-tag-orders", type=int, default=1,
                   help="prompts cached per song, each its tags in another random order (training picks one "
                        "per song and epoch)")
    p.add_argument("--seed", type=int, default=0, help="seed of the tag orders")
    add_lyrics_arguments(p)
    add_device_argument(p, "the DCAE and UMT5")
    p.add_argument("--dtype", choices=list(DTYPES), default="float32",
                   help="precision of the DCAE and UMT5 (the cache is float32 either way)")
    add_num_threads_argument(p)
    add_bool_argument(p, "--progress", True, "show a progress bar")
    add_verbose_argument(p)
    return p


def settings_of(args) -> dict:
    return {"checkpoint_dir": str(args.checkpoint_dir.resolve()), "target": args.target,
            "max_duration": args.max_duration, "num_tag_orders": args.num_tag_orders, "seed": args.seed,
            "lyrics_language": args.lyrics_language, "romanizer": args.romanizer}


def check_settings(out: Path, settings: dict) -> None:
    """Write ``cache_settings.json``, or check that an existing cache was made with the same settings."""
    path = out / SETTINGS
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: unreadable ({exc})") from None
        diff = [k for k in settings if old.get(k) != settings[k]]
        if diff:
            k = diff[0]
            raise InputError(f"{path}: this cache was made with {k} {old.get(k)!r}, this run has {settings[k]!r}; "
                             "use another --output-dir")
        return
    tmp = path.with_name(f".tmp.{path.name}")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def finished_cuts(out: Path) -> dict:
    """``{key: cut}`` of the songs already cached: the manifest's and the journal's (a killed run's)."""
    from lhotse import CutSet
    from lhotse.serialization import deserialize_item

    done = {}
    manifest = out / MANIFEST
    if manifest.is_file():
        for cut in CutSet.from_file(manifest):
            done[cut.id] = cut
    journal = out / JOURNAL
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                cut = deserialize_item(json.loads(line))
            except (json.JSONDecodeError, KeyError, ValueError):
                continue  # a line cut short by a kill
            done[cut.id] = cut
    return done


def write_manifest(out: Path, cuts: list) -> Path:
    from lhotse import CutSet

    path = out / MANIFEST
    tmp = path.with_name(f".tmp.{path.name}")
    if cuts:
        CutSet.from_cuts(cuts).to_file(tmp)
    else:
        with gzip.open(tmp, "wb"):
            pass
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.max_duration <= 0:
        raise InputError(f"--max-duration must be positive, got {args.max_duration}")
    if args.num_tag_orders < 1:
        raise InputError(f"--num-tag-orders must be at least 1, got {args.num_tag_orders}")
    if not args.checkpoint_dir.is_dir():
        raise InputError(f"{args.checkpoint_dir}: no such checkpoint folder")
    items, ambiguous = find_items(args.data_dir, args.target)
    if not items and not ambiguous:
        hint = ""
        if args.target == "audio" and any(args.data_dir.glob("*_mix.wav")):
            hint = " (it holds {key}_mix.wav files: use --target mix or inst)"
        raise InputError(f"{args.data_dir}: no songs for --target {args.target}{hint}")
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, settings_of(args))
    done = finished_cuts(out)
    todo = [it for it in items if it.key not in done]
    logger.info("%d songs in %s, %d already cached, %d to do", len(items), args.data_dir,
                sum(it.key in done for it in items), len(todo))

    rejects = Rejects()
    for key, path, reason in ambiguous:
        rejects.add(key, path, reason)
    if todo:
        from acestep.dcae import MusicDCAE
        from acestep.text.encoder import TextEncoder

        torch.set_num_threads(args.num_threads)
        device = resolve_device(args.device)
        dtype = DTYPES[args.dtype]
        dcae = MusicDCAE.from_checkpoint_dir(args.checkpoint_dir, device).to(dtype)
        text = TextEncoder.from_dir(args.checkpoint_dir / "umt5-base", device, dtype)
        encoder = SongEncoder(dcae, text, lyric_tokenizer_from_args(args), {"language": args.lyrics_language},
                              args.max_duration, args.num_tag_orders, args.seed)
        from lhotse.features.io import NumpyFilesWriter

        with NumpyFilesWriter(out / STORAGE) as writer, open(out / JOURNAL, "a", encoding="utf-8") as journal:
            for item in tqdm(todo, desc="caching", unit="song", disable=not args.progress):
                try:
                    song = encoder(item)
                except (InputError, OSError, ValueError, RuntimeError) as exc:
                    reason = reason_of(exc, item.audio)
                    rejects.add(item.key, str(item.audio), reason)
                    logger.warning("skipping %s: %s", item.key, reason)
                    continue
                cut = song_cut(item.key, song, writer, item.audio)
                journal.write(json.dumps(cut.to_dict()) + "\n")
                journal.flush()
                done[cut.id] = cut
    cuts = [done[k] for k in sorted(done)]
    path = write_manifest(out, cuts)
    if (out / JOURNAL).is_file():
        (out / JOURNAL).unlink()
    rejects.write(out / REJECTS)
    frames = sum(int(c.custom["frames"]) for c in cuts)
    lyrics = sum(bool(c.custom["has_lyrics"]) for c in cuts)
    logger.info("wrote %s: %d songs (%d with lyrics), %d latent frames (%.1f min), %d tag order(s) each; "
                "%s rejected (%s)", path, len(cuts), lyrics, frames, sum(c.duration for c in cuts) / 60,
                args.num_tag_orders, rejects.summary(), out / REJECTS)
    if not cuts:
        raise InputError(f"{args.data_dir}: every song was rejected (see {out / REJECTS})")
    return 0


if __name__ == "__main__":
    run_main(main)
