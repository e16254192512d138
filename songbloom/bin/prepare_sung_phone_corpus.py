"""Cut the lead vocal of every song into phrase clips: a corpus for a phone recognizer of singing.

    python -m songbloom.bin.prepare_sung_phone_corpus --songs-dir data/mini/songs --output-dir data/sung_phones
    python -m shirabe.bin.train_phone_recognizer --corpus-dir data/sung_phones --exp-dir exp/sung_phone_recognizer

--songs-dir is a jaCappella tree or one laid out like it (the mini corpus's ``songs`` part):
each song's ``lead_vocal`` recording and its score (``<title>_SVS.musicxml`` by default).
The lead part's syllables are grouped into phrases at rests of at least --phrase-rest
seconds (songbloom.eval.sung_corpus); each phrase becomes a clip of the lead vocal,
--pad seconds wider on each side (never past the middle of the rest to the next
phrase), mono at 24 kHz, with the phrase's kana as its text.

Songs are split whole: --test-songs for test (held out from training), --dev-songs for
dev, the rest for train, in the order of a hash of ``--split-seed:id`` (as the SongBloom
corpus preparation splits). Written to --output-dir:

* ``train.tsv``, ``dev.tsv``, ``test.tsv``: ``utt_id<TAB>text<TAB>wav`` lines (wav paths
  relative to the directory), what ``shirabe.bin.train_phone_recognizer`` reads;
* ``wavs/<song>/<song>_pNNN.wav``: the clips;
* ``rejects.tsv`` (``id path reason``): songs that cannot be read (missing audio or score,
  broken MusicXML, no lead part, no lyrics in lead part) and clips that cannot be used
  (no Japanese text, text the frontend cannot read, shorter than --min-clip, silent);
* ``summary.json``: songs, clips and seconds per split, the songs of each split, the options.

Clips already written are rewritten; a finished run can be repeated and gives the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from shirabe.audio import load_audio, resample, save_audio
from shirabe.audio.io import is_silent
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from shirabe.data.rejects import Rejects, reason_of
from songbloom.data.corpus import SPLITS, split_songs
from songbloom.data.jacappella import MUSICXML_TYPES, list_songs
from songbloom.data.lead import LeadError
from songbloom.data.musicxml import ScoreError, read_score
from songbloom.data.phrases import DEFAULT_PHRASE_REST
from songbloom.eval.sung_corpus import DEFAULT_PAD, score_phrases

logger = get_logger(__name__)
SAMPLE_RATE = 24000  # the phone recognizer's rate


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.prepare_sung_phone_corpus", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--songs-dir", type=Path, required=True,
                   help="a jaCappella tree (meta.csv, <subset>/<title>/lead_vocal.wav and scores) (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="where the corpus is written (required)")
    p.add_argument("--musicxml-type", choices=MUSICXML_TYPES, default="svs",
                   help="svs: <title>_SVS.musicxml (lyrics as sung, kana); plain: <title>.musicxml")
    p.add_argument("--phrase-rest", type=float, default=DEFAULT_PHRASE_REST,
                   help="a silence of at least this many seconds between two syllables ends a phrase")
    p.add_argument("--pad", type=float, default=DEFAULT_PAD, help="seconds of audio kept around a phrase's notes")
    p.add_argument("--min-clip", type=float, default=0.3, help="clips shorter than this (seconds) are rejected")
    p.add_argument("--dev-songs", type=int, default=1, help="songs held out for dev")
    p.add_argument("--test-songs", type=int, default=2, help="songs held out for test")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the song split")
    add_verbose_argument(p)
    return p


def check_args(args) -> None:
    if not args.songs_dir.is_dir():
        raise InputError(f"{args.songs_dir}: no such songs directory")
    if not args.phrase_rest > 0:
        raise InputError(f"--phrase-rest must be positive, got {args.phrase_rest}")
    if args.pad < 0 or args.min_clip < 0:
        raise InputError(f"--pad and --min-clip must not be negative, got {args.pad} and {args.min_clip}")
    if args.dev_songs < 0 or args.test_songs < 0:
        raise InputError(f"--dev-songs and --test-songs must not be negative, got {args.dev_songs} and "
                         f"{args.test_songs}")


def read_lead_vocal(path: Path) -> np.ndarray:
    """Mono float32 at 24 kHz; raises InputError for a missing or unreadable file."""
    wav, sr = load_audio(path)
    return resample(wav, sr, SAMPLE_RATE)


def song_clips(src, args, to_phones, rejects: Rejects, out_dir: Path) -> list[tuple[str, str, str, float]]:
    """``(utt_id, text, relative wav, seconds)`` of one song's usable clips; rejects what is not."""
    from shirabe.text import TextError

    if src.problem:
        rejects.add(src.id, src.path, src.problem)
        return []
    if src.audio is None or not Path(src.audio).is_file():
        rejects.add(src.id, str(src.audio), "missing audio file")
        return []
    try:
        wav = read_lead_vocal(Path(src.audio))
    except InputError as e:
        rejects.add(src.id, str(src.audio), f"unreadable audio: {reason_of(e, src.audio)}")
        return []
    total = len(wav) / SAMPLE_RATE
    try:
        phrases = score_phrases(read_score(src.score), total, args.phrase_rest, args.pad, where=src.id)
    except (ScoreError, LeadError) as e:
        rejects.add(src.id, str(src.score), reason_of(e, src.score))
        return []
    song_dir = out_dir / "wavs" / src.id
    shutil.rmtree(song_dir, ignore_errors=True)
    out = []
    for k, ph in enumerate(phrases):
        utt = f"{src.id}_p{k:03d}"
        where = f"{src.score} phrase {k} ({ph.start:.2f}-{ph.end:.2f} s)"
        if not ph.text:
            rejects.add(utt, where, f"no Japanese text: {ph.removed!r} only")
            continue
        if ph.start >= total:
            rejects.add(utt, where, f"after the end of the recording ({total:.2f} s)")
            continue
        try:
            if not to_phones(ph.text):
                rejects.add(utt, where, f"no phones: {ph.text!r}")
                continue
        except (TextError, InputError) as e:
            rejects.add(utt, where, f"unreadable text: {ph.text!r} ({reason_of(e)})")
            continue
        clip = wav[int(round(ph.clip_start * SAMPLE_RATE)):int(round(ph.clip_end * SAMPLE_RATE))]
        seconds = len(clip) / SAMPLE_RATE
        if seconds < args.min_clip:
            rejects.add(utt, where, f"too short: {seconds:.2f} s (--min-clip {args.min_clip})")
            continue
        if is_silent(clip):
            rejects.add(utt, where, "silent audio: the clip peaks below -80 dBFS")
            continue
        rel = f"wavs/{src.id}/{utt}.wav"
        save_audio(out_dir / rel, clip, SAMPLE_RATE)
        out.append((utt, ph.text, rel, seconds))
    return out


def write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    check_args(args)
    from shirabe.asr.phones import TextPhones

    sources = list_songs(args.songs_dir, "lead_vocal", args.musicxml_type)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    to_phones = TextPhones(quiet=True)
    rejects = Rejects()
    clips: dict[str, list] = {}
    for src in sources:
        found = song_clips(src, args, to_phones, rejects, args.output_dir)
        if found:
            clips[src.id] = found
        logger.info("%s: %d clips, %.1f s", src.id, len(found), sum(c[3] for c in found))
    if not clips:
        rejects.write(args.output_dir / "rejects.tsv")
        raise InputError(f"{args.songs_dir}: no usable song ({len(sources)} listed; see "
                         f"{args.output_dir / 'rejects.tsv'})")
    split = split_songs(sorted(clips), args.dev_songs, args.test_songs, args.split_seed)
    summary = {"songs_dir": str(args.songs_dir), "options": {k: getattr(args, k) for k in (
        "musicxml_type", "phrase_rest", "pad", "min_clip", "dev_songs", "test_songs", "split_seed")},
        "rejected": len(rejects), "splits": {}}
    for name in SPLITS:
        songs = [s for s in sorted(clips) if split[s] == name]
        rows = [c for s in songs for c in clips[s]]
        write_text_atomic(args.output_dir / f"{name}.tsv", "".join(f"{u}\t{t}\t{w}\n" for u, t, w, _ in rows))
        summary["splits"][name] = {"songs": songs, "clips": len(rows), "seconds": round(sum(r[3] for r in rows), 2)}
        logger.info("%s: %d songs, %d clips, %.1f min", name, len(songs), len(rows), sum(r[3] for r in rows) / 60)
    rejects.write(args.output_dir / "rejects.tsv")
    write_text_atomic(args.output_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=1) + "\n")
    logger.info("rejected %s (%s); wrote %s", rejects.summary(), args.output_dir / "rejects.tsv", args.output_dir)
    return 0


if __name__ == "__main__":
    run_main(main)
