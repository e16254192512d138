#!/usr/bin/env python3
"""Your own songs -> a SongBloom corpus (the same output as prepare_jacappella.py).

Input, one of:
  --audio-dir DIR [--lyrics-dir DIR]
            <id>.wav|flac|mp3 with <id>.txt lyrics (UTF-8, in --lyrics-dir, default
            the audio folder): SongBloom format ([verse] ... . [chorus] ... .) or
            plain Japanese, one sung line per line (read as one [verse] with ' . '
            after each line; what transcribe_lyrics.py writes)
  --jsonl FILE
            one JSON object per line: idx (or id), audio (or wav), lyrics, and
            optionally prompt_wav (used instead of a prompt cut from the song);
            relative paths are relative to the JSONL's folder

Per song: audio at 48 kHz (other rates resampled into audio/, channels kept),
the G2P check, a --prompt-sec style prompt (the window with the most sung
frames, prompts/<id>.wav), the same rejects (missing audio or lyrics file, bad
JSONL line, no Japanese lyrics after cleaning, unknown lyric symbols, too short,
silent audio, ...) and the same song-level train/dev/test split.

Writes to --output-dir: <prefix>_{recordings,supervisions}_{train,dev,test}.jsonl.gz
(lhotse), <prefix>_{train,dev,test}.jsonl (SongBloom's inference input),
songs.tsv, rejects.tsv, prompts/, audio/, cache/.

Examples:
  local/prepare_song_corpus.py --audio-dir my_songs --output-dir data/my_songs
  local/transcribe_lyrics.py --model-dir whisper-ja --audio-dir my_songs --output-dir data/my_lyrics
  local/prepare_song_corpus.py --audio-dir my_songs --lyrics-dir data/my_lyrics --output-dir data/my_songs
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shirabe.cli import ArgumentParser, InputError, get_logger, run_main, setup_logging  # noqa: E402
from songbloom.data.arguments import add_corpus_arguments, options_from_args  # noqa: E402
from songbloom.data.corpus import prepare_corpus  # noqa: E402
from songbloom.data.custom import list_folder, list_jsonl  # noqa: E402

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="prepare_song_corpus.py", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--audio-dir", type=Path, default=None, help="folder of <id>.wav|flac|mp3 (with --lyrics-dir)")
    p.add_argument("--lyrics-dir", type=Path, default=None, help="folder of <id>.txt lyrics (default: --audio-dir)")
    p.add_argument("--jsonl", type=Path, default=None, help="a JSONL of idx/audio/lyrics[/prompt_wav] instead")
    add_corpus_arguments(p, prefix="songs", clean_japanese=False)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if (args.audio_dir is None) == (args.jsonl is None):
        raise InputError("give either --audio-dir or --jsonl")
    if args.jsonl is not None and args.lyrics_dir is not None:
        raise InputError("--lyrics-dir goes with --audio-dir, not --jsonl")
    options = options_from_args(args)
    options.check()
    sources = list_jsonl(args.jsonl) if args.jsonl is not None else list_folder(args.audio_dir, args.lyrics_dir)
    logger.info("%d songs in %s", len(sources), args.jsonl or args.audio_dir)
    prepare_corpus(sources, args.output_dir, options, dev_songs=args.dev_songs, test_songs=args.test_songs,
                   seed=args.seed, num_jobs=args.nj, prefix=args.prefix)
    return 0


if __name__ == "__main__":
    run_main(main)
