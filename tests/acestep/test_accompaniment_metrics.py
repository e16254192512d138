"""Objective accompaniment metrics on synthetic signals whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from acestep.accompaniment.metrics import (
    beat_alignment,
    compute_metrics,
    energy_correlation,
    estimate_key,
    key_agreement,
    key_relation,
    mel_distance,
    summarise,
    vocal_leakage,
)

SR = 22050


def tone(freq: float, seconds: float, sr: int = SR) -> np.ndarray:
    """A sine with a sharp attack, an exponential decay and a smooth (half-cosine) release."""
    t = np.arange(int(seconds * sr)) / sr
    release = np.clip((seconds - t) / 0.08, 0.0, 1.0)
    return np.sin(2 * np.pi * freq * t) * np.exp(-3.0 * t) * np.sin(0.5 * np.pi * release) ** 2


def click_track(bpm: float, seconds: float) -> np.ndarray:
    """Short noise bursts on every beat."""
    rng = np.random.default_rng(0)
    y = np.zeros(int(seconds * SR))
    burst = rng.standard_normal(int(0.01 * SR)) * np.hanning(int(0.01 * SR))
    for start in np.arange(0.0, seconds - 0.02, 60.0 / bpm):
        i = int(start * SR)
        y[i:i + len(burst)] += burst
    return 0.5 * y


def sung_notes(onsets: np.ndarray, seconds: float) -> np.ndarray:
    """A decaying tone starting at each onset (a stand-in for sung syllables)."""
    y = np.zeros(int(seconds * SR))
    for k, start in enumerate(onsets):
        note = tone(330.0 * 2 ** ((k % 5) / 12), 0.2)
        i = int(start * SR)
        y[i:i + len(note)] += 0.5 * note[: len(y) - i]
    return y


def test_beat_alignment_on_and_off_the_beat():
    seconds = 8.0
    clicks = click_track(120.0, seconds)  # beats every 0.5 s
    beats = np.arange(0.5, seconds - 0.5, 0.5)
    on = beat_alignment(sung_notes(beats, seconds), clicks, SR)
    off = beat_alignment(sung_notes(beats + 0.25, seconds), clicks, SR)  # halfway between beats
    assert on >= 0.9
    assert off <= 0.1


def chords(roots_and_thirds: list[tuple[int, int]], seconds_each: float = 1.0) -> np.ndarray:
    """Triads (root, third above root, fifth) as sustained sines over three octaves (MIDI roots)."""
    out = []
    for root, third in roots_and_thirds:
        t = np.arange(int(seconds_each * SR)) / SR
        y = np.zeros_like(t)
        for interval in (0, third, 7):
            for octave in (-12, 0, 12):
                f = 440.0 * 2 ** ((root + interval + octave - 69) / 12)
                y += np.sin(2 * np.pi * f * t)
        out.append(y / 9)
    return np.concatenate(out)


C_MAJOR = chords([(60, 4), (65, 4), (67, 4), (60, 4)])  # I IV V I in C
F_SHARP_MAJOR = chords([(66, 4), (71, 4), (73, 4), (66, 4)])  # I IV V I in F#


def test_key_estimate_and_agreement():
    assert estimate_key(C_MAJOR, SR) == (0, "major")
    assert estimate_key(F_SHARP_MAJOR, SR) == (6, "major")
    assert key_agreement(C_MAJOR, C_MAJOR[::-1].copy(), SR) == 1.0
    assert key_agreement(C_MAJOR, F_SHARP_MAJOR, SR) == 0.0


def test_key_relation_table():
    assert key_relation((0, "major"), (9, "minor")) == 0.5  # C major / A minor
    assert key_relation((9, "minor"), (0, "major")) == 0.5
    assert key_relation((0, "major"), (7, "major")) == 0.5  # C / G
    assert key_relation((0, "major"), (5, "major")) == 0.5  # C / F
    assert key_relation((0, "major"), (0, "minor")) == 0.0  # parallel minor: not counted
    assert key_relation((0, "major"), (2, "major")) == 0.0


def modulated_noise(envelope: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(len(envelope)) * envelope


def test_energy_correlation_identical_vs_unrelated_envelopes():
    n = 6 * SR
    t = np.arange(n) / SR
    env = 0.5 + 0.4 * np.sin(2 * np.pi * 0.5 * t)
    rng = np.random.default_rng(3)
    other = np.repeat(rng.uniform(0.1, 1.0, n // 2048 + 1), 2048)[:n]  # random steps, unrelated
    same = energy_correlation(modulated_noise(env, 1), modulated_noise(env, 2))
    unrelated = energy_correlation(modulated_noise(env, 1), modulated_noise(other, 2))
    assert same > 0.9
    assert abs(unrelated) < 0.3


def test_mel_distance_zero_for_identical_and_6db_for_half_amplitude():
    x = np.random.default_rng(4).standard_normal(2 * SR)
    assert mel_distance(x, x, SR) == pytest.approx(0.0, abs=1e-9)
    assert mel_distance(0.5 * x, x, SR) == pytest.approx(20 * np.log10(2), abs=0.05)


def test_vocal_leakage_higher_for_a_leaked_mix():
    seconds = 6.0
    rng = np.random.default_rng(5)
    vocal = sung_notes(np.sort(rng.uniform(0, seconds - 0.3, 14)), seconds)
    accompaniment = 0.5 * chords([(48, 4), (53, 4), (55, 4)], seconds / 3) + 0.3 * click_track(100, seconds)
    clean = vocal_leakage(accompaniment, vocal, SR)
    leaked = vocal_leakage(accompaniment + 0.5 * vocal, vocal, SR)
    assert leaked > clean + 10.0
    assert clean < 0.0
    assert vocal_leakage(vocal, vocal, SR) > leaked


def test_compute_metrics_and_summary_keys():
    x = chords([(60, 4), (67, 4)])
    row = compute_metrics(x, x, SR, reference=x)
    assert set(row) == {"beat_alignment", "key_agreement", "energy_correlation", "vocal_leakage_db",
                        "mel_distance_db"}
    assert row["mel_distance_db"] == pytest.approx(0.0, abs=1e-9)
    summary = summarise([{"key_agreement": 1.0}, {"key_agreement": 0.0}, {"key_agreement": float("nan")}])
    assert summary == {"key_agreement": {"mean": 0.5, "std": 0.5, "n": 2}}


def test_evaluate_folder_pairs_files_by_key(tmp_path):
    import soundfile as sf

    from acestep.accompaniment.metrics import evaluate_folder

    for name in ("system", "vocals", "truth"):
        (tmp_path / name).mkdir()
    x = chords([(60, 4), (67, 4)])
    noise = 0.2 * np.random.default_rng(6).standard_normal(len(x))  # energy in every mel band
    sf.write(tmp_path / "system" / "a_accompaniment.wav", 0.5 * noise, SR, subtype="FLOAT")
    sf.write(tmp_path / "system" / "b_accompaniment.wav", x, SR)  # no vocal for b
    sf.write(tmp_path / "vocals" / "a_vocal.wav", x, SR)
    sf.write(tmp_path / "truth" / "a_inst.wav", noise, SR, subtype="FLOAT")
    result = evaluate_folder(tmp_path / "system", tmp_path / "vocals", tmp_path / "truth", sr=SR)
    assert list(result["samples"]) == ["a"] and result["missing_vocal"] == ["b"]
    assert result["samples"]["a"]["mel_distance_db"] == pytest.approx(20 * np.log10(2), abs=0.1)
    assert result["summary"]["mel_distance_db"]["n"] == 1
