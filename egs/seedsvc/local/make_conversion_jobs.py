#!/usr/bin/env python3
"""Conversion jobs for the SeedSVC recipe's test songs (and the references they use).

For every test song and every --pairs entry SRC:TGT:SHIFT the source singer's
rendition is converted to the target singer twice: with the pair's shift (the
octave between the two voices, so the target's own rendition of the song is
the ground truth) and without a shift. The reference is a clip of the target
singer from a training song, starting at its first sung note
(--reference-seconds long), so test songs never leak into the prompt.

Writes --output-dir/references/<singer>.wav and --output-dir/jobs.tsv with the
columns the convert and evaluate binaries read: id, source, reference, output,
semitone_shift, shift, source_f0, target. With --max-source-seconds the sources, their
F0 tracks, phone timings (the lyrics, ``<song>.phones.tsv`` beside each excerpt, as beside
the songs) and the targets are excerpts (the same span of the score) written under
--output-dir/excerpts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from seedsvc.content.labels import read_timings, write_timings
from shirabe.audio import load_audio, save_audio
from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data-dir", type=Path, required=True, help="output of make_parallel_songs.py (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="where jobs.tsv and references go (required)")
    p.add_argument("--pairs", default="sinsy_f001:kokoro_jm_kumo:-12,kokoro_jm_kumo:hts_mei:12",
                   help="comma-separated SOURCE:TARGET:SHIFT triples")
    p.add_argument("--reference-seconds", type=float, default=2.0, help="length of each reference clip")
    p.add_argument("--max-source-seconds", type=float, default=0.0,
                   help="convert only this long an excerpt of each test song, from its first sung note (0: whole song)")
    return p


def read_tsv(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"{path}: no such file (run stage 0 first)")
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    data = args.data_dir.resolve()
    out = args.output_dir.resolve()
    train, test = read_tsv(data / "train.tsv"), read_tsv(data / "test.tsv")
    pairs = []
    for spec in args.pairs.split(","):
        try:
            src, tgt, shift = spec.split(":")
            pairs.append((src, tgt, float(shift)))
        except ValueError:
            raise InputError(f"--pairs: bad entry '{spec}' (expected SOURCE:TARGET:SHIFT)") from None
    refs = {}
    for _, tgt, _ in pairs:
        rows = [r for r in train if r["speaker"] == tgt]
        if not rows:
            raise InputError(f"singer {tgt} has no training song")
        wav, sr = load_audio(data / rows[0]["wav"])
        f0 = np.load(data / rows[0]["f0"])
        start = max(0.0, float(np.flatnonzero(f0 > 0)[0]) / 100.0 - 0.05)
        clip = wav[int(start * sr) : int((start + args.reference_seconds) * sr)]
        refs[tgt] = save_audio(out / "references" / f"{tgt}.wav", clip, sr)
    by_key = {(r["speaker"], r["song"]): r for r in test}

    def excerpt(row: dict, start: float) -> tuple[Path, Path]:
        wav_path, f0_path = data / row["wav"], data / row["f0"]
        if args.max_source_seconds <= 0:
            return wav_path, f0_path
        wav, sr = load_audio(wav_path)
        f0 = np.load(f0_path)
        a, n = int(round(start * 100)), int(round(args.max_source_seconds * 100))
        d = out / "excerpts" / row["speaker"]
        clip = save_audio(d / f"{row['song']}.wav", wav[int(start * sr) : int((start + args.max_source_seconds) * sr)], sr)
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / f"{row['song']}.f0.npy", f0[a : a + n])
        if row.get("phones") and (data / row["phones"]).is_file():  # the phones sung in the excerpt
            end = start + args.max_source_seconds
            write_timings(d / f"{row['song']}.phones.tsv",
                          [(max(s, start) - start, min(e, end) - start, ph) for s, e, ph in read_timings(data / row["phones"])
                           if start <= (s + e) / 2 < end])
        return clip, d / f"{row['song']}.f0.npy"

    jobs = []
    for song in sorted({r["song"] for r in test}):
        for src, tgt, shift in pairs:
            if (src, song) not in by_key or (tgt, song) not in by_key:
                raise InputError(f"test song {song} lacks singer {src} or {tgt}")
            s, t = by_key[(src, song)], by_key[(tgt, song)]
            f0 = np.load(data / s["f0"])
            start = max(0.0, float(np.flatnonzero(f0 > 0)[0]) / 100.0 - 0.05)
            src_wav, src_f0 = excerpt(s, start)
            tgt_wav, _ = excerpt(t, start)
            for sh in (shift, 0.0):
                jid = f"{song}-{src}-to-{tgt}-{sh:+g}"
                jobs.append({"id": jid, "source": src_wav, "reference": refs[tgt], "output": f"{jid}.wav",
                             "semitone_shift": sh, "shift": sh, "source_f0": src_f0,
                             "target": tgt_wav if sh == shift else ""})
    out.mkdir(parents=True, exist_ok=True)
    with (out / "jobs.tsv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(jobs[0]), delimiter="\t")
        w.writeheader()
        w.writerows(jobs)
    print(f"wrote {out / 'jobs.tsv'}: {len(jobs)} conversions")
    return 0


if __name__ == "__main__":
    run_main(main)
