#!/usr/bin/env python3
"""Fit the mini stand-in tokenizer's k-means codebooks on a corpus and write them to one file.

    python -m songgeneration.bin.train_tokenizer --wavs data/mini/accompaniment \\
        --output exp/tokenizer/mini.safetensors --codebook-size 256 --seed 0

``--wavs`` is a folder (its .wav/.flac/.mp3 files, not recursive) or a list file
with one audio path per line (relative paths are relative to the list's folder;
blank lines and lines starting with ``#`` are skipped). Files are grouped by key:
``KEY_vocal`` and ``KEY_inst`` are the vocal and accompaniment stems of ``KEY``,
``KEY_mix`` (or any other name, the key being the whole name) its mixture. The
mixed codebook is fitted on the mixtures (a key with both stems and no mixture
uses their sum); the vocal and accompaniment codebooks on the keys that have
both stems. Without any stem pair the file holds the mixed codebook only.
Audio is read as 48 kHz stereo (other rates resampled, mono copied to both channels).
"""

from __future__ import annotations

from pathlib import Path

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

logger = get_logger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3")
STEM_SUFFIXES = {"_vocal": "vocal", "_inst": "accompaniment", "_mix": "mixed"}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songgeneration.bin.train_tokenizer", description=__doc__)
    p.add_argument("--wavs", type=Path, required=True, metavar="LIST_OR_DIR",
                   help="folder of audio files, or a list file of audio paths (required)")
    p.add_argument("--output", type=Path, required=True, help="tokenizer file to write (.safetensors; required)")
    p.add_argument("--codebook-size", type=int, default=256, metavar="K",
                   help="codes per stream (1..16384; ids 16384 and 16385 stay free for end of song and pad)")
    p.add_argument("--seed", type=int, default=0, help="k-means seed (the same seed gives the same codebooks)")
    add_bool_argument(p, "--progress", True, "show progress bars")
    add_device_argument(p, "k-means and the mel front end")
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def list_audio(source: Path) -> list[Path]:
    """The audio files of a folder, or the paths of a list file."""
    if source.is_dir():
        files = sorted(f for f in source.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InputError(f"{source}: no .wav, .flac or .mp3 files in this folder")
        return files
    if not source.is_file():
        raise InputError(f"{source}: no such folder or list file")
    files = []
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not a UTF-8 list of paths (an audio file? give its folder)") from e
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line) if Path(line).is_absolute() else source.parent / line
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            raise InputError(f"{source}:{number}: '{line}' is not a .wav, .flac or .mp3 path")
        if not path.is_file():
            raise InputError(f"{source}:{number}: {path}: no such audio file")
        files.append(path)
    if not files:
        raise InputError(f"{source}: the list holds no audio paths")
    return files


def group_by_key(files: list[Path]) -> dict[str, dict[str, Path]]:
    """``{key: {"mixed"|"vocal"|"accompaniment": path}}`` by the name rules of the module doc."""
    groups: dict[str, dict[str, Path]] = {}
    for f in files:
        key, role = f.stem, "mixed"
        for suffix, name in STEM_SUFFIXES.items():
            if f.stem.endswith(suffix) and len(f.stem) > len(suffix):
                key, role = f.stem[: -len(suffix)], name
                break
        entry = groups.setdefault(key, {})
        if role in entry:
            raise InputError(f"{f}: a second {role} file for key '{key}' (the other is {entry[role]})")
        entry[role] = f
    return groups


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if not 1 <= args.codebook_size <= 16384:
        raise InputError(f"--codebook-size {args.codebook_size}: must be between 1 and 16384")
    if args.output.suffix != ".safetensors":
        raise InputError(f"--output {args.output}: the tokenizer file must end in .safetensors")
    import torch

    from songgeneration.tokenizer.standin import MiniTokenizer

    torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    groups = group_by_key(list_audio(args.wavs))

    mixed, vocal, accompaniment = [], [], []
    for key, entry in sorted(groups.items()):
        pair = "vocal" in entry and "accompaniment" in entry
        if pair:
            vocal.append(entry["vocal"])
            accompaniment.append(entry["accompaniment"])
        elif "vocal" in entry or "accompaniment" in entry:
            logger.warning("%s: only one stem (%s); the stem codebooks skip it", key,
                           ", ".join(str(p) for r, p in entry.items() if r != "mixed"))
        if "mixed" in entry:
            mixed.append(entry["mixed"])
        elif pair:
            mixed.append((entry["vocal"], entry["accompaniment"]))
    if not mixed:
        raise InputError(f"{args.wavs}: no mixture and no vocal/inst pair to fit the mixed codebook on")

    logger.info("%d mixtures, %d vocal/accompaniment pairs; codebook size %d, seed %d, device %s",
                len(mixed), len(vocal), args.codebook_size, args.seed, device)
    tok = MiniTokenizer.train(mixed, vocal or None, accompaniment or None, k=args.codebook_size,
                              seed=args.seed, device=device, progress=args.progress)
    if not vocal:
        logger.warning("no KEY_vocal/KEY_inst pair: the tokenizer holds the mixed codebook only")
    out = tok.save(args.output)
    logger.info("wrote %s (streams: %s)", out, ", ".join(sorted(tok.codebooks)))
    return 0


if __name__ == "__main__":
    run_main(main)
