#!/usr/bin/env python3
"""Parallel singing for the SeedSVC recipe: every singer sings the same mini-corpus songs.

The songs are the mini corpus's generated songs (``shirabe.minicorpus``: same
seed, same titles and notes); the lead part of each is sung by every singer in
--singers, male voices an octave lower, so the same song by two singers is a
parallel pair (ground truth for a conversion with a ±12 semitone shift).

Writes, under --output-dir:

  songs/<singer>/<title>.wav          48 kHz mono
  songs/<singer>/<title>.f0.npy       the F0 it was sung on (Hz, 100 frames/s, 0 = unvoiced)
  songs/<singer>/<title>.phones.tsv   phone timings: start, end (s), phone
  phones.txt                          phone table ('<phone> <id>', sil = 0)
  train.tsv, test.tsv                 utterance lists (utt_id, speaker, song, wav, f0, phones)
  singers.tsv                         singer, gender, octave offset

The first --num-train-songs songs are for training, the rest for testing.
Phone timings come from the score: each note's mora is split into its consonant
(the unvoiced frames at the note's start, at least 40 ms and at most half the
note) and its vowel; rests are silence. Files already written are kept.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import cache, partial
from pathlib import Path

import numpy as np

from seedsvc.content.labels import SILENCE, build_table, write_timings
from seedsvc.features import Utterance, write_list
from shirabe.audio import save_audio
from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging
from shirabe.minicorpus.jobs import run_jobs
from shirabe.minicorpus.score import Song, generate_song
from shirabe.minicorpus.singing import F0_RATE, SAMPLE_RATE, SINGERS, sing
from shirabe.minicorpus.songs import num_samples
from shirabe.minicorpus.voices import set_kokoro_cache, set_kokoro_threads

logger = logging.getLogger("make_parallel_songs")
PART = "lead_vocal"
MIN_CONSONANT = 0.04


def get_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--output-dir", type=Path, required=True, help="where the songs go (required)")
    p.add_argument("--seed", type=int, default=0, help="mini corpus seed (the songs)")
    p.add_argument("--num-songs", type=int, default=6, help="songs in all")
    p.add_argument("--num-train-songs", type=int, default=4, help="songs used for training")
    p.add_argument("--singers", default="sinsy_f001,hts_mei,hts_mei_low,kokoro_jm_kumo",
                   help=f"comma-separated singers (of: {', '.join(SINGERS)})")
    return p


def transposed(song: Song, semitones: int) -> Song:
    if semitones == 0:
        return song
    notes = tuple(dataclasses.replace(n, pitch=n.pitch + semitones) if n.pitch is not None else n
                  for n in song.parts[PART])
    return dataclasses.replace(song, parts={**song.parts, PART: notes})


@cache
def mora_phones(mora: str) -> tuple[str, ...]:
    import pyopenjtalk

    kata = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in mora)
    phones = tuple(p if p in ("N", "cl") else p.lower() for p in pyopenjtalk.g2p(kata).split())
    if not phones:
        raise InputError(f"no phones for mora '{mora}'")
    return phones


def phone_timings(song: Song, f0: np.ndarray) -> list[tuple[float, float, str]]:
    out = []
    for note in song.parts[PART]:
        if note.pitch is None or not note.sung:
            continue
        start, end = note.start * song.step_seconds, note.end * song.step_seconds
        phones = mora_phones(note.sung)
        if len(phones) == 1:
            out.append((start, end, phones[0]))
            continue
        a, b = int(round(start * F0_RATE)), min(int(round(end * F0_RATE)), len(f0))
        voiced = np.flatnonzero(f0[a:b] > 0)
        lead = (voiced[0] if voiced.size else 0) / F0_RATE
        cons = min(max(lead, MIN_CONSONANT), (end - start) / 2)
        step = cons / (len(phones) - 1)
        for k, ph in enumerate(phones[:-1]):
            out.append((start + k * step, start + (k + 1) * step, ph))
        out.append((start + cons, end, phones[-1]))
    return out


def render(out_dir: Path, song: Song, singer_id: str) -> None:
    d = out_dir / "songs" / singer_id
    wav_path, f0_path, ph_path = d / f"{song.title}.wav", d / f"{song.title}.f0.npy", d / f"{song.title}.phones.tsv"
    if wav_path.is_file() and f0_path.is_file() and ph_path.is_file():
        return
    singer = SINGERS[singer_id]
    sung = transposed(song, -12 if singer.gender == "male" else 0)
    wav, f0 = sing(sung, PART, singer, num_samples(song))
    d.mkdir(parents=True, exist_ok=True)
    tmp = f0_path.with_name(f".{f0_path.name}.tmp.npy")
    np.save(tmp, f0.astype(np.float32))
    tmp.replace(f0_path)
    write_timings(ph_path, phone_timings(sung, f0))
    save_audio(wav_path, wav * (0.7 / max(float(np.abs(wav).max()), 1e-9)), SAMPLE_RATE)


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    singers = [s.strip() for s in args.singers.split(",") if s.strip()]
    unknown = [s for s in singers if s not in SINGERS]
    if unknown:
        raise InputError(f"unknown singer(s) {', '.join(unknown)} (choose from {', '.join(SINGERS)})")
    if not 0 < args.num_train_songs < args.num_songs:
        raise InputError("--num-train-songs must be between 1 and --num-songs - 1")
    out = args.output_dir
    set_kokoro_cache(out / ".kokoro_cache")
    set_kokoro_threads(1)
    songs = [generate_song(args.seed, i, "songs") for i in range(args.num_songs)]
    jobs = [partial(render, out, song, s) for song in songs for s in singers]
    run_jobs(jobs, "parallel songs", "track")
    phones = {SILENCE}
    for song in songs:
        for note in song.parts[PART]:
            if note.pitch is not None and note.sung:
                phones.update(mora_phones(note.sung))
    table = build_table(phones)
    (out / "phones.txt").write_text("".join(f"{p} {i}\n" for p, i in table.items()), encoding="utf-8")
    (out / "singers.tsv").write_text(
        "singer\tgender\toctave\n" + "".join(
            f"{s}\t{SINGERS[s].gender}\t{-1 if SINGERS[s].gender == 'male' else 0}\n" for s in singers),
        encoding="utf-8")
    for name, subset in (("train", songs[: args.num_train_songs]), ("test", songs[args.num_train_songs :])):
        utts = []
        for song in subset:
            for s in singers:
                d = Path("songs") / s
                utts.append(Utterance(f"{s}-{song.title}", s, d / f"{song.title}.wav", d / f"{song.title}.f0.npy",
                                      d / f"{song.title}.phones.tsv", song.title))
        write_list(out / f"{name}.tsv", utts)
    logger.info("wrote %d songs x %d singers under %s (%d train songs), %d phones",
                len(songs), len(singers), out, args.num_train_songs, len(table))
    return 0


if __name__ == "__main__":
    run_main(main)
