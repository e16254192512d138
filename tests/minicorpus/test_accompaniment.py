"""The accompaniment part of the mini corpus: ACE-Step seed files, true prompt tags, alignment."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from shirabe.cli import InputError
from shirabe.minicorpus import accompaniment
from shirabe.minicorpus.accompaniment import (
    ARRANGEMENTS,
    DRUM_TAG,
    INSTRUMENT_TAGS,
    build_accompaniment,
    check_renderer,
    plan_pieces,
)
from shirabe.minicorpus.config import CorpusConfig
from shirabe.minicorpus.score import INTRO_BARS, STEPS_PER_BAR

CFG = CorpusConfig(seed=0, num_songs=1)
KEY = "mini_0001"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("accompaniment")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOKORO_JA_CACHE", str(root / "kokoro"))
        part_dir = root / "accompaniment"
        build_accompaniment(part_dir, CFG, progress=False)
        yield part_dir


def _files(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_seed_file_layout(built):
    names = {p.name for p in built.iterdir() if p.is_file()}
    assert names == {f"{KEY}_{s}" for s in ("vocal.wav", "inst.wav", "mix.wav", "prompt.txt", "lyrics.txt")}
    assert (built / "midi" / f"{KEY}.mid").is_file()
    frames = set()
    for kind in ("vocal", "inst", "mix"):
        info = sf.info(built / f"{KEY}_{kind}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_16")
        frames.add(info.frames)
    assert len(frames) == 1


def test_vocal_and_inst_are_aligned_and_sum_to_the_mix(built):
    (_, song, _), = plan_pieces(CFG)
    vocal, sr = sf.read(built / f"{KEY}_vocal.wav")
    inst, _ = sf.read(built / f"{KEY}_inst.wav")
    mix, _ = sf.read(built / f"{KEY}_mix.wav")
    assert vocal.shape == inst.shape == mix.shape
    assert np.abs(mix - (vocal + inst)).max() <= 1.5 / 32768
    # the band plays from the first beat; the singer comes in after the introduction
    intro = int(INTRO_BARS * STEPS_PER_BAR * song.step_seconds * sr)
    assert np.sqrt(np.mean(inst[: sr // 2] ** 2)) > 0.01
    assert np.abs(vocal[: intro - sr // 10]).max() < 1e-3
    assert np.sqrt(np.mean(vocal[intro : intro + sr] ** 2)) > 0.01


def test_prompt_tags_are_true_of_the_midi(built):
    (_, song, singer), = plan_pieces(CFG)
    tags = (built / f"{KEY}_prompt.txt").read_text(encoding="utf-8").strip().split(", ")
    midi = pretty_midi.PrettyMIDI(str(built / "midi" / f"{KEY}.mid"))
    _, tempi = midi.get_tempo_changes()
    assert len(tempi) == 1
    bpm_tags = [t for t in tags if t.endswith(" bpm")]
    assert bpm_tags == [f"{round(tempi[0])} bpm"]
    played = {INSTRUMENT_TAGS[i.program] for i in midi.instruments if not i.is_drum and i.notes}
    if any(i.is_drum and i.notes for i in midi.instruments):
        played.add(DRUM_TAG)
    listed = {t for t in tags if t in INSTRUMENT_TAGS.values() or t == DRUM_TAG}
    assert listed == played
    assert song.key_name in tags and song.key_name.endswith(" major")
    assert ARRANGEMENTS[song.subset][0] == tags[0]
    assert f"{singer.gender} vocal" in tags


def test_lyrics_have_structure_tags(built):
    (_, song, _), = plan_pieces(CFG)
    text = (built / f"{KEY}_lyrics.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert "[verse]" in lines and "[chorus]" in lines
    assert [x for x in lines if x and not x.startswith("[")] == list(song.lyric_lines)


def test_same_seed_gives_identical_files(built, tmp_path):
    build_accompaniment(tmp_path / "again", CFG, progress=False)
    assert _files(tmp_path / "again") == _files(built)


def test_seed_changes_the_score():
    (_, a, _), = plan_pieces(CFG)
    (_, b, _), = plan_pieces(CorpusConfig(seed=1, num_songs=1))
    assert (a.parts, a.lyric_lines) != (b.parts, b.lyric_lines)


def test_pieces_have_male_and_female_singers():
    genders = {singer.gender for _, _, singer in plan_pieces(CorpusConfig(num_songs=4))}
    assert genders == {"female", "male"}


@pytest.mark.parametrize("kind", ["mix", "vocal"])
def test_resume_restores_a_deleted_file(built, kind):
    before = _files(built)
    (built / f"{KEY}_{kind}.wav").unlink()
    build_accompaniment(built, CFG, progress=False)
    assert _files(built) == before


def test_missing_fluidsynth_or_soundfont_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr(accompaniment.shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="fluidsynth.*tools/install.sh"):
        check_renderer()
    monkeypatch.undo()
    monkeypatch.setattr(accompaniment, "SOUNDFONT", tmp_path / "missing.sf2")
    with pytest.raises(InputError, match="missing.sf2.*fluid-soundfont-gm"):
        build_accompaniment(tmp_path / "out", CFG, progress=False)
