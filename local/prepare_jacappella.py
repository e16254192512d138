#!/usr/bin/env python3
"""jaCappella (or a tree laid out like it) -> a SongBloom corpus: manifests, inference JSONL, prompts.

Reads <corpus-dir>/meta.csv and <corpus-dir>/<subset>/<title>/ (audio per part,
<title>.musicxml, <title>_SVS.musicxml); without meta.csv, every folder with a
score or a lead_vocal/mixture wav is a song. Per song:

  audio     <audio-type>.wav, 48 kHz (other rates are resampled into audio/)
  lyrics    the lead-vocal part of the score only (harmony parts sing scat):
            syllables joined into phrases, ' , ' after a rest >= --phrase-rest,
            ' . ' after a rest >= --sentence-rest and at the end of each section,
            structure tags from rehearsal marks / section words ([verse] when
            the score has none)
  phonemes  the lyrics through SongBloom's Japanese G2P (unknown symbols reject
            the song unless --allow-unknown)
  prompt    the --prompt-sec window with the most sung frames, prompts/<id>.wav

Songs that cannot be used are listed in rejects.tsv with the reason (missing
audio file, broken MusicXML with its line, no lead part, no lyrics in lead
part, no Japanese lyrics after cleaning, unknown lyric symbols, too short,
silent audio, ...); the others are split by song into train/dev/test.

Writes to --output-dir: <prefix>_{recordings,supervisions}_{train,dev,test}.jsonl.gz
(lhotse), <prefix>_{train,dev,test}.jsonl (SongBloom's inference input: idx,
lyrics, prompt_wav), songs.tsv, rejects.tsv, prompts/, cache/ (each song's
outcome: a re-run reuses it and rewrites nothing that did not change).

Example:
  local/prepare_jacappella.py --corpus-dir download/jaCappella --output-dir data/jacappella
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shirabe.cli import ArgumentParser, get_logger, run_main, setup_logging  # noqa: E402
from songbloom.data.arguments import add_corpus_arguments, options_from_args  # noqa: E402
from songbloom.data.corpus import prepare_corpus  # noqa: E402
from songbloom.data.jacappella import AUDIO_TYPES, MUSICXML_TYPES, list_songs  # noqa: E402

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="prepare_jacappella.py", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--corpus-dir", type=Path, required=True, help="the jaCappella root (with meta.csv) (required)")
    p.add_argument("--audio-type", choices=AUDIO_TYPES, default="lead_vocal",
                   help="which recording is the song: the lead vocal alone or the a cappella mixture")
    p.add_argument("--musicxml-type", choices=MUSICXML_TYPES, default="svs",
                   help="svs: <title>_SVS.musicxml (lyrics as sung, kana); plain: <title>.musicxml (as written)")
    add_corpus_arguments(p, prefix="jacappella", clean_japanese=True, phrase_rests=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    options = options_from_args(args)
    options.check()
    sources = list_songs(args.corpus_dir, args.audio_type, args.musicxml_type)
    logger.info("%d songs in %s (%s audio, %s scores)", len(sources), args.corpus_dir, args.audio_type,
                args.musicxml_type)
    prepare_corpus(sources, args.output_dir, options, dev_songs=args.dev_songs, test_songs=args.test_songs,
                   seed=args.seed, num_jobs=args.nj, prefix=args.prefix)
    return 0


if __name__ == "__main__":
    run_main(main)
