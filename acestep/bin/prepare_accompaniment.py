"""Prepare vocal → accompaniment pairs: check, 48 kHz stereo, loudness, common length, train/test split.

Reads a folder of ``{key}_vocal``/``{key}_inst``/``{key}_mix`` files (wav/flac/mp3) with
``{key}_prompt.txt`` and optional ``{key}_lyrics.txt`` (see :mod:`acestep.accompaniment.pairs`) and
writes ``OUT/{train,test}/{vocal,target}/{key}.flac`` + the key's prompt and lyrics files, ready for
``acestep.bin.cache_latents --target audio``. The last ``--num-test`` complete keys (sorted) go to test.
Bad keys are skipped and listed in ``OUT/rejects.txt``; keys already written are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from acestep.accompaniment.pairs import SAMPLE_RATE, check_pair, find_pairs, lyrics_of, prepare_pair
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)

logger = get_logger("acestep.bin.prepare_accompaniment")


def loudness_arg(value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(f"--loudness: expected LUFS (e.g. -14) or none, got {value!r}") from None


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.prepare_accompaniment", description=__doc__)
    p.add_argument("--data-dir", type=Path, required=True, help="folder of vocal/inst/mix files (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="prepared pairs (required)")
    p.add_argument("--output-type", choices=["accompaniment", "mix"], default="accompaniment",
                   help="target: the instrumental (_inst) or the full mix (_mix)")
    p.add_argument("--loudness", default="-14", help="LUFS each file is normalised to; none keeps the levels")
    p.add_argument("--num-test", type=int, default=1, help="keys held out for generation and evaluation")
    add_bool_argument(p, "--progress", True, "show a progress bar")
    add_verbose_argument(p)
    return p


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    from shirabe.audio import save_audio

    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    loudness = loudness_arg(args.loudness)
    if args.num_test < 0:
        raise InputError(f"--num-test must be >= 0, got {args.num_test}")
    pairs = find_pairs(args.data_dir, args.output_type)
    if not pairs:
        raise InputError(f"{args.data_dir}: no *_vocal / *_inst / *_mix audio files")
    rejects, complete = [], []
    for pair in pairs:  # files and prompts first, so that the test keys are complete ones
        try:
            check_pair(pair, args.data_dir, args.output_type)
            complete.append(pair)
        except InputError as exc:
            rejects.append(f"{pair.key}\t{exc}")
            logger.warning("skipped %s: %s", pair.key, exc)
    test_keys = {p.key for p in complete[len(complete) - args.num_test:]} if args.num_test else set()
    kept = done = 0
    for pair in tqdm(complete, desc="pairs", disable=not args.progress):
        split = "test" if pair.key in test_keys else "train"
        out = {part: args.output_dir / split / part for part in ("vocal", "target")}
        if all((out[part] / f"{pair.key}.flac").is_file() for part in out):
            done += 1
            continue
        try:
            vocal, target = prepare_pair(pair, loudness)
        except InputError as exc:
            rejects.append(f"{pair.key}\t{exc}")
            logger.warning("skipped %s: %s", pair.key, exc)
            continue
        prompt, lyrics = pair.prompt.read_text(encoding="utf-8"), lyrics_of(pair)
        for part in out:
            out[part].mkdir(parents=True, exist_ok=True)
            write_text(out[part] / f"{pair.key}_prompt.txt", prompt)
            write_text(out[part] / f"{pair.key}_lyrics.txt", lyrics)
        # the target last: a key counts as done when both audio files exist
        save_audio(out["vocal"] / f"{pair.key}.flac", vocal, SAMPLE_RATE)
        save_audio(out["target"] / f"{pair.key}.flac", target, SAMPLE_RATE)
        kept += 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    write_text(args.output_dir / "rejects.txt", "".join(f"{r}\n" for r in rejects))
    logger.info("%d pairs prepared, %d already done, %d rejected (%s); train/test under %s", kept, done,
                len(rejects), args.output_dir / "rejects.txt", args.output_dir)
    return 0


if __name__ == "__main__":
    run_main(main)
