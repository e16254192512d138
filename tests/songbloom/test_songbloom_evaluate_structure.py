"""songbloom.eval.structure and songbloom.eval.windows on synthetic audio and hand-made activity tracks."""

import numpy as np
import pytest

from songbloom.eval.structure import (
    section_layout,
    structure_adherence,
    vocal_activity,
    voicing_strength,
)
from songbloom.eval.windows import phrase_windows, quiet_windows, split_audio

SR = 48000
HOP = 0.02  # the detector's frame hop; frame j covers j*HOP .. j*HOP + 0.04 s


def tone(seconds: float, rms_db: float, f0: float = 220.0) -> np.ndarray:
    """A harmonic tone (five partials) at an RMS level of ``rms_db`` dBFS: a stand-in for a sung vowel."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (10 ** (rms_db / 20) * x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def share(active: np.ndarray, start: float, end: float) -> float:
    """Active share of the frames lying wholly inside [start, end] (edges excluded)."""
    j = np.arange(len(active))
    inside = (j * HOP >= start + 0.04) & (j * HOP + 0.04 <= end - 0.04)
    return float(active[inside].mean())


def test_voicing_strength_of_a_tone_and_of_noise():
    n = 640  # 40 ms at 16 kHz
    t = np.arange(n) / 16000
    frames = np.stack([np.sin(2 * np.pi * 200 * t), np.random.default_rng(0).standard_normal(n)])
    strength = voicing_strength(frames)
    assert strength[0] > 0.95 and strength[1] < 0.35


def test_vocal_activity_finds_loud_periodic_frames_only():
    rng = np.random.default_rng(0)
    segments = [
        ("silence", np.zeros(SR, dtype=np.float32), 0.0),
        ("tone", tone(2.0, -10.0), 1.0),
        ("white noise", (0.3 * rng.standard_normal(SR)).astype(np.float32), 0.0),
        ("tone 40 dB down: above the -55 dB floor, beyond the 30 dB range", tone(1.0, -50.0), 0.0),
        ("tone at -60 dBFS", tone(1.0, -60.0), 0.0),
        ("tone 25 dB down", tone(1.0, -35.0, 330.0), 1.0),
    ]
    wav = np.concatenate([s for _, s, _ in segments])
    active = vocal_activity(np.stack([wav, wav], axis=1), SR)  # stereo is averaged
    assert len(active) == int(np.ceil(len(wav) / SR / HOP))
    start = 0.0
    for name, seg, expected in segments:
        end = start + len(seg) / SR
        assert share(active, start, end) == pytest.approx(expected, abs=0.05), name
        start = end
    assert not vocal_activity(np.zeros(SR, dtype=np.float32), SR).any()  # silence alone: nothing is loud
    # alone, a quiet tone is the song's loudest sound: the -55 dBFS floor decides
    assert vocal_activity(tone(2.0, -50.0), SR).mean() > 0.95
    assert not vocal_activity(tone(2.0, -60.0), SR).any()


def test_sections_are_laid_out_by_their_weights():
    assert section_layout([3, 7], 20.0) == [(0.0, 6.0), (6.0, 20.0)]
    assert section_layout([1, 0, 1], 10.0) == [(0.0, 5.0), (5.0, 5.0), (5.0, 10.0)]
    with pytest.raises(ValueError, match="positive sum"):
        section_layout([0, 0], 10.0)


def test_structure_adherence_per_section():
    centres = np.arange(500) * HOP + 0.02  # 10 s of frames
    sections = [(False, 3), (True, 7)]  # an intro over 0-3 s, a verse over 3-10 s
    sung_verse = structure_adherence(centres >= 3.0, sections, 10.0)
    assert [r["adheres"] for r in sung_verse["sections"]] == [True, True]
    assert sung_verse["sections"][1]["start"] == pytest.approx(3.0)
    assert sung_verse["accuracy"] == 1.0
    assert sung_verse["vocal_active"] == pytest.approx(1.0) and sung_verse["nonvocal_active"] == 0.0
    swapped = structure_adherence(centres < 3.0, sections, 10.0)
    assert swapped["accuracy"] == 0.0
    # a verse sung for 2.8 of its 7 s (40 %) still counts as sung at --min-active 0.3, not at 0.5
    partly = (centres >= 3.0) & (centres < 5.8)
    assert structure_adherence(partly, sections, 10.0)["accuracy"] == 1.0
    assert structure_adherence(partly, sections, 10.0, min_active=0.5)["accuracy"] == 0.5
    assert structure_adherence(partly, sections, 10.0)["vocal_active"] == pytest.approx(0.4)
    silent = structure_adherence(np.zeros(500, dtype=bool), [(True, 1)], 10.0)
    assert silent["accuracy"] == 0.0 and silent["nonvocal_active"] is None


def test_quiet_windows_cut_at_the_dips():
    levels = np.full(1000, -10.0)  # 20 s at 20 ms
    dips = [(4.0, 4.3), (9.0, 9.3), (13.5, 13.8)]
    t = np.arange(1000) * HOP + 0.02
    for a, b in dips:
        levels[(t >= a) & (t < b)] = -80.0
    windows = quiet_windows(levels, 0.0, 20.0, max_seconds=6.0, min_seconds=3.0)
    assert windows[0][0] == 0.0 and windows[-1][1] == 20.0
    assert all(w[1] == n[0] for w, n in zip(windows, windows[1:]))  # contiguous
    assert all(b - a <= 6.0 + 1e-9 for a, b in windows)
    for (a, b), (_, cut) in zip(dips, windows):
        assert a <= cut <= b
    assert quiet_windows(levels, 2.0, 20.0, 25.0, 10.0) == [(2.0, 20.0)]
    with pytest.raises(ValueError, match="min_seconds"):
        quiet_windows(levels, 0.0, 20.0, 2.0, 3.0)


def test_phrase_windows_cut_at_rests():
    start = np.arange(1000) * HOP  # frame j starts at j * 20 ms: 20 s
    levels = np.full(1000, -120.0)
    levels[(start >= 2.0) & (start < 6.0)] = -10.0
    levels[(start >= 6.5) & (start < 12.0)] = -10.0  # a rest of 0.5 s at 6.0-6.5 s
    levels[(start >= 9.0) & (start < 9.1)] = -80.0  # 0.1 s: shorter than a rest
    # loud frames 2.00-5.98 s and 6.50-11.98 s (each 40 ms long), padded by 0.15 s; the first window
    # would reach 6.17 s, short of the middle of the rest (6.26 s)
    windows = phrase_windows(levels, 20.0, max_seconds=10.0)
    np.testing.assert_allclose(windows, [(1.85, 6.17), (6.35, 12.17)], atol=1e-9)
    (a0, b0), (a1, cut), (_, b1) = phrase_windows(levels, 20.0, max_seconds=5.0)
    assert (a0, a1, b1) == pytest.approx((1.85, 6.35, 12.17)) and 9.0 <= cut <= 9.2  # cut at the dip (levels averaged over 0.2 s)
    assert phrase_windows(np.full(1000, -120.0), 20.0, 10.0) == []  # silence: nothing to recognize
    mix = phrase_windows(np.full(1250, -10.0), 25.0, 10.0)  # never a rest: windows of at most 10 s
    assert mix[0][0] == 0.0 and mix[-1][1] == 25.0 and len(mix) == 3 and all(b - a <= 10.0 for a, b in mix)


def test_split_audio_keeps_the_phrases():
    wav = np.concatenate([tone(3.0, -10.0), np.zeros(SR // 2, dtype=np.float32), tone(3.0, -10.0)])
    pieces = split_audio(wav, SR, 10.0)
    assert [len(p) / SR for p in pieces] == pytest.approx([3.15, 3.15], abs=0.03)
    assert len(split_audio(wav, SR, 0.0)) == 1 and len(split_audio(wav, SR, 0.0)[0]) == len(wav)
    assert split_audio(np.zeros(SR, dtype=np.float32), SR, 10.0) == []
