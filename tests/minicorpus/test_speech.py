"""The speech part of the mini corpus: layout, formats, splits, voices, determinism, resume."""

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pyopenjtalk
import pytest
import pyworld
import soundfile as sf

from shirabe.minicorpus.config import CorpusConfig
from shirabe.minicorpus.sentences import assign_sentences, load_pool
from shirabe.minicorpus.speakers import held_out_speakers, roster
from shirabe.minicorpus.speech import build_speech
from shirabe.minicorpus.voices import set_kokoro_cache

CFG = CorpusConfig(seed=0, num_speakers=3, sentences_per_speaker=3)


def build(part_dir, cfg=CFG):
    set_kokoro_cache(part_dir.parent / ".kokoro")
    return build_speech(part_dir, cfg, progress=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    part = tmp_path_factory.mktemp("mini") / "speech"
    summary = build(part)
    return part, summary


def read_tsv(path):
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_layout_formats_and_tsv_columns(corpus):
    part, summary = corpus
    rows = {s: read_tsv(part / f"{s}.tsv") for s in ("train", "dev", "test")}
    assert summary["utterances"] == {s: len(r) for s, r in rows.items()}
    assert sum(len(r) for r in rows.values()) == 9
    for split_rows in rows.values():
        for utt_id, text, wav in split_rows:
            assert re.fullmatch(r"[a-z0-9_]+_\d{4}", utt_id)
            assert text and Path(wav).is_absolute() and Path(wav).name == f"{utt_id}.wav"
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype, info.format) == (24000, 1, "PCM_16", "WAV")
            assert 0.5 < info.duration < 15
            audio, _ = sf.read(wav)
            # trimmed: at most ~0.2 s of near-silence at either end
            loud = np.flatnonzero(np.abs(audio) > 0.01)
            assert loud[0] < 0.25 * 24000 and len(audio) - loud[-1] < 0.25 * 24000


def test_test_speakers_are_disjoint_and_documented(corpus):
    part, summary = corpus
    spk = {s: {r[0].rsplit("_", 1)[0] for r in read_tsv(part / f"{s}.tsv")} for s in ("train", "dev", "test")}
    assert spk["test"] and spk["train"]
    assert spk["test"].isdisjoint(spk["train"] | spk["dev"])
    assert spk["dev"] <= spk["train"]
    with open(part / "speakers.tsv", encoding="utf-8") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    assert [r["speaker"] for r in table] == [v.speaker for v in roster(3)]
    assert {r["speaker"] for r in table if r["split"] == "test"} == spk["test"] == set(summary["test_speakers"])
    hts = [r for r in table if r["source"] == "pyopenjtalk-plus"]
    assert hts and all(float(r["formant_ratio"]) != 1.0 for r in hts)


def test_roster_and_splits_at_default_size():
    voices = roster(10)
    assert len({v.speaker for v in voices}) == 10
    assert sum(v.is_kokoro for v in voices) == 5
    held = held_out_speakers(voices)
    assert len(held) == 2 and {v.is_kokoro for v in voices if v.speaker in held} == {True, False}
    assert held_out_speakers(roster(1)) == []


def test_voices_really_differ(corpus):
    """Two HTS variants differ in median F0 by their half-tone settings."""
    voices = [v for v in roster(10) if not v.is_kokoro][:2]
    from shirabe.minicorpus.speech import synthesize

    f0s = []
    for v in voices:
        wav = synthesize(v, "今日はとても良い天気ですね。").astype(np.float64)
        f0, _ = pyworld.dio(wav, 24000)
        f0s.append(np.median(f0[f0 > 0]))
    semitones = 12 * np.log2(f0s[1] / f0s[0])
    expected = voices[1].half_tone - voices[0].half_tone
    assert abs(semitones - expected) < 2.0


def digest(part):
    return {p.relative_to(part): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(part.rglob("*.wav"))}


def test_deterministic_and_seed_dependent(tmp_path, corpus):
    small = CorpusConfig(seed=0, num_speakers=2, sentences_per_speaker=1)
    a, b = tmp_path / "a" / "speech", tmp_path / "b" / "speech"
    build(a, small)
    build(b, small)
    assert digest(a) == digest(b) and len(digest(a)) == 2
    assert (a / "train.tsv").read_text() != ""
    assert assign_sentences(3, 5, seed=0) != assign_sentences(3, 5, seed=1)


def test_resume_rebuilds_only_what_is_missing(corpus):
    part, _ = corpus
    wavs = sorted(part.rglob("*.wav"))
    victim = wavs[0]
    before = {p: p.stat().st_mtime_ns for p in wavs if p != victim}
    victim_hash = hashlib.sha1(victim.read_bytes()).hexdigest()
    victim.unlink()
    build(part)
    assert hashlib.sha1(victim.read_bytes()).hexdigest() == victim_hash
    assert {p: p.stat().st_mtime_ns for p in before} == before


GOJUON = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
VOICED = "ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポ"
YOON = ["キャ", "キュ", "キョ", "シャ", "シュ", "ショ", "チャ", "チュ", "チョ", "ニャ", "ニュ", "ニョ", "ヒャ", "ヒュ", "ヒョ",
        "ミャ", "ミュ", "ミョ", "リャ", "リュ", "リョ", "ギャ", "ギュ", "ギョ", "ジャ", "ジュ", "ジョ", "ビャ", "ビュ", "ビョ",
        "ピャ", "ピュ", "ピョ"]


def test_sentence_pool_coverage():
    pool = load_pool()
    texts = [s.text for s in pool]
    assert len(texts) >= 120
    readings = "".join(pyopenjtalk.g2p(t, kana=True) for t in texts)
    missing = [k for k in GOJUON + VOICED if k not in readings] + [y for y in YOON if y not in readings]
    # OpenJTalk pronounces ぢ/づ as ジ/ズ: those two are checked in the spelling
    assert missing == ["ヂ", "ヅ"]
    assert "ぢ" in "".join(texts) and "づ" in "".join(texts)
    assert "ッ" in readings and "ー" in readings
    joined = "".join(texts)
    for word in ("箸", "橋", "端", "雨", "飴", "柿", "牡蠣"):
        assert word in joined, word
    assert any(t.endswith(("？", "か？")) for t in texts)
    assert re.search(r"\d,\d{3}", joined) and re.search(r"[A-Z]{2,}", joined)
    phones = " ".join(pyopenjtalk.g2p(t) for t in texts).split()
    assert {"I", "U"} <= set(phones)  # devoiced vowels
    # ん before bilabial, alveolar and velar consonants and at the end of a word
    n_next = {phones[i + 1] for i, p in enumerate(phones[:-1]) if p == "N"}
    assert {"b", "t", "k"} <= n_next or {"m", "d", "g"} & n_next
