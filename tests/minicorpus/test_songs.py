"""The songs part of the mini corpus: jaCappella layout, scores, F0 truth, determinism, resume."""

from __future__ import annotations

import csv
import math
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import pyworld
import soundfile as sf

from shirabe.audio import resample
from shirabe.cli import InputError
from shirabe.minicorpus import singing
from shirabe.minicorpus.config import CorpusConfig
from shirabe.minicorpus.score import (
    INTRO_BARS,
    PARTICLE_READINGS,
    PARTS,
    STEPS_PER_BAR,
    SUNG_PARTS,
    generate_song,
)
from shirabe.minicorpus.songs import META_COLUMNS, build_songs, meta_rows, plan_songs, song_dir
from shirabe.minicorpus.voices import kokoro_tts, sinsy_sing

CFG = CorpusConfig(seed=0, num_songs=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One song, built once for the module: ``(part_dir, song_dir)``."""
    root = tmp_path_factory.mktemp("songs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOKORO_JA_CACHE", str(root / "kokoro"))
        part_dir = root / "songs"
        build_songs(part_dir, CFG, progress=False)
        song, _ = plan_songs(CFG)[0]
        yield part_dir, song_dir(part_dir, song)


def _files(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_layout_and_audio_format(built):
    part_dir, out = built
    song, _ = plan_songs(CFG)[0]
    assert out == part_dir / song.subset / song.title
    names = {p.name for p in out.iterdir()}
    expected = {f"{part}.wav" for part in (*PARTS, "mixture")}
    expected |= {f"{part}.f0.npy" for part in SUNG_PARTS}
    expected |= {f"{song.title}.musicxml", f"{song.title}_SVS.musicxml"}
    assert names == expected
    lengths = set()
    for part in (*PARTS, "mixture"):
        info = sf.info(out / f"{part}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "PCM_16")
        lengths.add(info.frames)
    assert len(lengths) == 1
    assert 15 < lengths.pop() / 48000 < 35


def test_meta_csv(built):
    part_dir, out = built
    with open(part_dir / "meta.csv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == META_COLUMNS
        rows = list(reader)
    assert [r["voice_part"] for r in rows] == list(PARTS)
    for row in rows:
        assert (row["subset"], row["title_in_en"]) == (out.parent.name, out.name)
        assert row["singer_id"] and row["gender"] and row["composer"]


def test_mixture_is_the_scaled_sum_of_parts(built):
    _, out = built
    total = sum(sf.read(out / f"{part}.wav")[0] for part in PARTS)
    mixture = sf.read(out / "mixture.wav")[0]
    gain = float(mixture @ total / (total @ total))
    assert gain > 0
    assert np.abs(mixture - gain * total).max() < 3 / 32768


def _lyrics(root, part_name):
    part_id = next(sp.get("id") for sp in root.iter("score-part") if sp.findtext("part-name") == part_name)
    part = next(p for p in root.iter("part") if p.get("id") == part_id)
    return [note.findtext("lyric/text") for note in part.iter("note") if note.find("lyric") is not None]


def test_musicxml_scores(built):
    _, out = built
    song, _ = plan_songs(CFG)[0]
    written = ET.parse(out / f"{song.title}.musicxml").getroot()
    svs = ET.parse(out / f"{song.title}_SVS.musicxml").getroot()
    assert written.tag == "score-partwise"
    assert len(list(written.iter("part"))) == len(PARTS)
    lead_notes = [n for n in song.parts["lead_vocal"] if n.pitch is not None]
    lead, lead_svs = _lyrics(written, "Lead Vocal"), _lyrics(svs, "Lead Vocal")
    assert len(lead) == len(lead_svs) == len(lead_notes)
    assert "".join(lead) == "".join(song.lyric_lines)
    changed = [(a, b) for a, b in zip(lead, lead_svs) if a != b]
    assert ("は", "わ") in changed  # every song has a particle は
    assert all(PARTICLE_READINGS[a] == b for a, b in changed)
    # a は that is not a particle (はな, のはら, ...) stays は in the _SVS score
    assert lead_svs.count("は") == sum(n.sung == "は" for n in lead_notes)
    # every harmony note carries a scat syllable
    for part, name in (("soprano", "Soprano"), ("bass", "Bass")):
        assert len(_lyrics(written, name)) == sum(n.pitch is not None for n in song.parts[part])


@pytest.mark.parametrize("part", SUNG_PARTS)
def test_f0_truth_agrees_with_audio(built, part):
    """harvest on the written wav agrees with <part>.f0.npy within 50 cents on >= 90 % of frames voiced in both."""
    _, out = built
    song, _ = plan_songs(CFG)[0]
    wav, sr = sf.read(out / f"{part}.wav")
    truth = np.load(out / f"{part}.f0.npy")
    assert truth.dtype == np.float32
    assert len(truth) == math.ceil(len(wav) * 100 / sr)
    assert (truth > 0).mean() > 0.3
    # a 5 s window from the first sung bar keeps harvest quick
    start = int(INTRO_BARS * STEPS_PER_BAR * song.step_seconds * 100)
    frames = slice(start, start + 500)
    x = resample(wav[frames.start * sr // 100 : frames.stop * sr // 100], sr, 16000).astype(np.float64)
    voiced_truth = truth[frames][truth[frames] > 0]
    f0, _ = pyworld.harvest(
        x, 16000, f0_floor=0.7 * voiced_truth.min(), f0_ceil=1.4 * voiced_truth.max(), frame_period=10.0
    )
    n = min(len(f0), len(truth[frames]))
    f0, ref = f0[:n], truth[frames][:n]
    both = (f0 > 0) & (ref > 0)
    assert both.sum() > 200
    cents = np.abs(1200 * np.log2(f0[both] / ref[both]))
    assert (cents < 50).mean() >= 0.9, f"{part}: {(cents < 50).mean():.3f} of frames within 50 cents"


def test_more_than_one_singer_across_songs():
    plan = plan_songs(CorpusConfig(seed=0, num_songs=2))
    leads = [singers["lead_vocal"] for _, singers in plan]
    assert leads[0].id != leads[1].id
    engines = {s.engine for _, singers in plan for s in singers.values()}
    assert engines == {"sinsy", "kokoro", "hts"}
    ids = {r["singer_id"] for r in meta_rows(plan) if r["voice_part"] == "lead_vocal"}
    assert len(ids) == 2
    for _, singers in plan:  # within a song, each part has its own voice
        assert len({s.id for s in singers.values()}) == len(SUNG_PARTS)


def test_seed_changes_the_score():
    a, b = generate_song(0, 0), generate_song(1, 0)
    assert (a.parts, a.lyric_lines, a.bpm, a.tonic) != (b.parts, b.lyric_lines, b.bpm, b.tonic)
    assert generate_song(0, 0) == a


def test_same_seed_gives_identical_files(built, tmp_path):
    part_dir, _ = built
    # a second build; morae come from the process cache, so check the voices themselves repeat
    assert np.array_equal(kokoro_tts("ルー", "jf_nezumi")[0], kokoro_tts("ルー", "jf_nezumi")[0])
    build_songs(tmp_path / "again", CFG, progress=False)
    assert _files(tmp_path / "again") == _files(part_dir)


def test_resume_restores_a_deleted_file(built):
    part_dir, out = built
    before = _files(part_dir)
    kept = out / "lead_vocal.wav"
    mtime = kept.stat().st_mtime_ns
    (out / "alto.wav").unlink()
    build_songs(part_dir, CFG, progress=False)
    assert _files(part_dir) == before
    assert kept.stat().st_mtime_ns == mtime  # finished files are not rewritten


def test_missing_pysinsy_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pysinsy", None)
    with pytest.raises(InputError, match="pysinsy.*tools/install.sh"):
        sinsy_sing(tmp_path / "score.musicxml")


def test_target_f0_is_the_note_pitch():
    song = generate_song(0, 0)
    frames = round(song.seconds * 200)
    f0 = singing.target_f0(song.parts["bass"], song.step_seconds, frames, 0.005)
    note = next(n for n in song.parts["bass"] if n.pitch is not None and n.length >= 2)
    a = round(note.start * song.step_seconds / 0.005)
    mid = f0[a + 10 : a + 30]  # after the glide, before the vibrato
    assert np.allclose(mid, singing.midi_to_hz(note.pitch), rtol=1e-3)
    rest = next(n for n in song.parts["bass"] if n.pitch is None)
    assert f0[round(rest.start * song.step_seconds / 0.005) + 1] == 0
