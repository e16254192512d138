"""The ``songs`` part: a cappella songs laid out like jaCappella.

::

    <part_dir>/meta.csv
    <part_dir>/<subset>/<title>/<title>.musicxml          all six parts, lyrics as written
    <part_dir>/<subset>/<title>/<title>_SVS.musicxml      lyrics as sung (は -> わ, へ -> え, を -> お)
    <part_dir>/<subset>/<title>/<part>.wav                48 kHz mono PCM_16, for each part in PARTS
    <part_dir>/<subset>/<title>/<part>.f0.npy             sung parts: float32 Hz at 100 frames/s, 0 = unvoiced
    <part_dir>/<subset>/<title>/mixture.wav               the sum of the part files, scaled to a 0.9 peak

Every wav of a song has the same length: the score plus :data:`TAIL_SECONDS`.
The F0 file of a part has ``ceil(samples / 480)`` frames, frame ``j`` at
``j * 10`` ms (see :mod:`shirabe.minicorpus.singing`); the vocal percussion,
unpitched noise, has none.

Singers rotate with the song index (:data:`CAST`): the five sung parts of a
song have five different voices, consecutive songs have different leads, every
song mixes kokoro and HTS voices, and pysinsy sings in the first and fourth
of every four songs.
Files already written are kept, so an interrupted build resumes where it
stopped.
"""

from __future__ import annotations

import csv
import io
from functools import partial
from pathlib import Path

import numpy as np

from shirabe.audio import load_audio, save_audio
from shirabe.minicorpus.config import CorpusConfig
from shirabe.minicorpus.files import write_text
from shirabe.minicorpus.jobs import run_jobs
from shirabe.minicorpus.musicxml import COMPOSER, write_musicxml
from shirabe.minicorpus.percussion import render_percussion
from shirabe.minicorpus.score import PARTS, SUNG_PARTS, Song, generate_song
from shirabe.minicorpus.singing import SAMPLE_RATE, SINGERS, Singer, sing

TAIL_SECONDS = 0.5
MIX_PEAK = 0.9
# peak level each part is written at (the lead above the harmony)
PART_PEAK = {"lead_vocal": 0.7, "soprano": 0.4, "alto": 0.4, "tenor": 0.4, "bass": 0.45, "vocal_percussion": 0.4}
# singer of each sung part, by song index modulo the length of the rotation
# (one kokoro lead in four: kokoro speaks each mora several times slower than HTS)
CAST = {
    "lead_vocal": ("sinsy_f001", "kokoro_jf_alpha", "hts_mei", "hts_mei_dark"),
    "soprano": ("kokoro_jf_nezumi", "hts_mei", "kokoro_jf_gongitsune", "sinsy_f001"),
    "alto": ("hts_mei_dark", "kokoro_jf_tebukuro", "kokoro_jf_alpha", "kokoro_jf_tebukuro"),
    "tenor": ("kokoro_jm_kumo", "hts_mei_low", "kokoro_jm_kumo", "hts_mei_low"),
    "bass": ("hts_mei_low", "kokoro_jm_kumo_deep", "hts_mei_low", "kokoro_jm_kumo_deep"),
}
PERCUSSION_SINGER = "noise_percussion"
META_COLUMNS = (
    "title_in_en",
    "title_in_ja",
    "lyric_writer",
    "copyright_of_lyric_writer",
    "composer",
    "copyright_of_composer",
    "arranger_in_en",
    "arranger_in_ja",
    "subset",
    "voice_part",
    "singer_id",
    "gender",
    "first_lang",
)
COPYRIGHT = "Shirabe project (Apache-2.0)"


def cast(index: int) -> dict[str, Singer]:
    """The singer of each sung part of song ``index``."""
    return {part: SINGERS[ids[index % len(ids)]] for part, ids in CAST.items()}


def num_samples(song: Song) -> int:
    return int(round((song.seconds + TAIL_SECONDS) * SAMPLE_RATE))


def song_dir(part_dir: Path, song: Song) -> Path:
    return Path(part_dir) / song.subset / song.title


def plan_songs(cfg: CorpusConfig) -> list[tuple[Song, dict[str, Singer]]]:
    """The songs of the part and their singers, without rendering anything."""
    return [(generate_song(cfg.seed, i, "songs"), cast(i)) for i in range(cfg.num_songs)]


def meta_rows(plan: list[tuple[Song, dict[str, Singer]]]) -> list[dict[str, str]]:
    """meta.csv rows: one per song and voice part, in jaCappella's columns."""
    rows = []
    for song, singers in plan:
        for part in PARTS:
            singer = singers.get(part)
            rows.append(
                {
                    "title_in_en": song.title,
                    "title_in_ja": song.title_ja,
                    "lyric_writer": COMPOSER,
                    "copyright_of_lyric_writer": COPYRIGHT,
                    "composer": COMPOSER,
                    "copyright_of_composer": COPYRIGHT,
                    "arranger_in_en": COMPOSER,
                    "arranger_in_ja": COMPOSER,
                    "subset": song.subset,
                    "voice_part": part,
                    "singer_id": singer.id if singer else PERCUSSION_SINGER,
                    "gender": singer.gender if singer else "none",
                    "first_lang": "Japanese" if singer else "none",
                }
            )
    return rows


def _scaled(wav: np.ndarray, peak: float) -> np.ndarray:
    return wav * (peak / max(float(np.abs(wav).max()), 1e-9))


def _render_part(out: Path, song: Song, part: str, singers: dict[str, Singer], seed: int) -> None:
    """Write ``<part>.wav`` (and ``<part>.f0.npy`` for sung parts) unless already there."""
    wav_path = out / f"{part}.wav"
    f0_path = out / f"{part}.f0.npy"
    sung = part in SUNG_PARTS
    if wav_path.is_file() and (not sung or f0_path.is_file()):
        return
    n = num_samples(song)
    if sung:
        wav, f0 = sing(song, part, singers[part], n)
        tmp = f0_path.with_name(f".{f0_path.name}.tmp.npy")
        np.save(tmp, f0)
        tmp.replace(f0_path)
    else:
        rng = np.random.default_rng([seed, song.index, PARTS.index(part)])
        wav = render_percussion(song.parts[part], song.step_seconds, n, SAMPLE_RATE, rng)
    save_audio(wav_path, _scaled(wav, PART_PEAK[part]), SAMPLE_RATE)


def _write_mixture(out: Path) -> None:
    path = out / "mixture.wav"
    if path.is_file():
        return
    total = sum(load_audio(out / f"{part}.wav")[0].astype(np.float64) for part in PARTS)
    save_audio(path, _scaled(total, MIX_PEAK), SAMPLE_RATE)


def build_songs(part_dir: str | Path, cfg: CorpusConfig, progress: bool = True) -> dict:
    """Build (or finish) the songs part in ``part_dir``; returns a summary."""
    part_dir = Path(part_dir)
    plan = plan_songs(cfg)
    for song, _ in plan:
        out = song_dir(part_dir, song)
        for name, svs in ((f"{song.title}.musicxml", False), (f"{song.title}_SVS.musicxml", True)):
            if not (out / name).is_file():
                write_musicxml(out / name, song, svs=svs)
    jobs = [
        partial(_render_part, song_dir(part_dir, song), song, part, singers, cfg.seed)
        for song, singers in plan
        for part in PARTS
    ]
    run_jobs(jobs, "songs", "track", progress)
    for song, _ in plan:
        _write_mixture(song_dir(part_dir, song))

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=META_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(meta_rows(plan))
    write_text(part_dir / "meta.csv", buf.getvalue())
    return {
        "songs": len(plan),
        "seconds": round(sum(num_samples(song) for song, _ in plan) / SAMPLE_RATE, 1),
        "subsets": sorted({song.subset for song, _ in plan}),
        "singers": sorted({s.id for _, singers in plan for s in singers.values()}),
    }
