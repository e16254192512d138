"""The options every song-corpus preparation binary shares, and the :class:`Options` they make."""

from __future__ import annotations

import argparse

from shirabe.cli import add_bool_argument, add_verbose_argument
from songbloom.data.corpus import Options
from songbloom.data.phrases import DEFAULT_PHRASE_REST, DEFAULT_SENTENCE_REST


def add_corpus_arguments(parser: argparse.ArgumentParser, prefix: str, clean_japanese: bool,
                         phrase_rests: bool = False) -> None:
    """Output, prompt, cleaning, G2P and split options (``phrase_rests``: the score-reading ones too)."""
    parser.add_argument("--output-dir", type=str, required=True, help="where the corpus is written (required)")
    parser.add_argument("--prefix", default=prefix, help="name prefix of the manifest and JSONL files")
    parser.add_argument("--prompt-sec", type=float, default=10.0,
                        help="length of the style prompt cut from each song (seconds; SongBloom uses 10)")
    if phrase_rests:
        parser.add_argument("--phrase-rest", type=float, default=DEFAULT_PHRASE_REST,
                            help="a rest at least this long (seconds) between two syllables writes ' , ' "
                                 "(an eighth rest at 120 BPM)")
        parser.add_argument("--sentence-rest", type=float, default=DEFAULT_SENTENCE_REST,
                            help="a rest at least this long (seconds) writes ' . ' (a half rest at 120 BPM)")
    add_bool_argument(parser, "--clean-japanese", clean_japanese,
                      "keep only kana, kanji, 々, ー, ・ and punctuation in the lyrics (Latin scat such as "
                      "LA BA DA goes; removed characters are reported per song); false keeps Latin words, "
                      "which the G2P reads in katakana")
    add_bool_argument(parser, "--allow-unknown", False,
                      "keep songs whose lyrics give symbols SongBloom's vocabulary lacks (counted in songs.tsv) "
                      "instead of rejecting them")
    parser.add_argument("--min-duration", type=float, default=10.0,
                        help="shortest song kept (seconds); a song must also be at least --prompt-sec long")
    parser.add_argument("--dev-songs", type=int, default=2, help="songs held out for dev")
    parser.add_argument("--test-songs", type=int, default=3, help="songs held out for test")
    parser.add_argument("--seed", type=int, default=0, help="seed of the song-level split")
    parser.add_argument("--nj", type=int, default=1, help="songs prepared in parallel (processes)")
    add_verbose_argument(parser)


def options_from_args(args: argparse.Namespace) -> Options:
    return Options(
        prompt_sec=args.prompt_sec,
        phrase_rest=getattr(args, "phrase_rest", DEFAULT_PHRASE_REST),
        sentence_rest=getattr(args, "sentence_rest", DEFAULT_SENTENCE_REST),
        clean_japanese=args.clean_japanese,
        allow_unknown=args.allow_unknown,
        min_duration=args.min_duration,
    )
