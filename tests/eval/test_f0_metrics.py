"""F0 metrics on synthetic tracks with known answers, and on extracted tracks of real audio."""

import numpy as np
import pytest

from shirabe.eval import f0_corr, f0_rmse, raw_pitch_accuracy, vuv_error
from shirabe.pitch import extract_f0, shift_semitones


def synthetic_track() -> np.ndarray:
    t = np.arange(300) / 100.0
    f0 = 220.0 * 2.0 ** (0.3 * np.sin(2 * np.pi * 0.7 * t))  # vibrato-like contour
    f0[50:80] = 0.0
    f0[200:210] = 0.0
    return f0


def test_octave_shift_is_exactly_1200_cents():
    ref = synthetic_track()
    hyp = shift_semitones(ref, 12)
    assert f0_rmse(ref, hyp, unit="cents") == pytest.approx(1200.0, abs=1e-9)
    voiced = ref > 0
    assert f0_rmse(ref, hyp, unit="hz") == pytest.approx(np.sqrt(np.mean(ref[voiced] ** 2)), rel=1e-12)
    assert f0_corr(ref, hyp) == pytest.approx(1.0, abs=1e-12)
    assert f0_corr(ref, hyp, log=True) == pytest.approx(1.0, abs=1e-12)
    assert vuv_error(ref, hyp) == 0.0
    assert raw_pitch_accuracy(ref, hyp) == 0.0
    assert raw_pitch_accuracy(ref, shift_semitones(ref, 0.4)) == 1.0  # 40 cents


def test_jointly_voiced_frames_and_voicing_error():
    ref = np.array([100.0, 100.0, 0.0, 0.0, 200.0, 200.0])
    hyp = np.array([110.0, 0.0, 0.0, 150.0, 200.0, 190.0, 500.0])  # one extra frame: cut
    assert vuv_error(ref, hyp) == pytest.approx(2 / 6)
    assert f0_rmse(ref, hyp) == pytest.approx(np.sqrt((10.0**2 + 0.0 + 10.0**2) / 3))
    assert f0_rmse(np.zeros(4), hyp[:4]) != f0_rmse(np.zeros(4), hyp[:4])  # NaN: no voiced frames
    with pytest.raises(ValueError):
        f0_rmse(ref, hyp, unit="semitones")


def test_identical_audio_gives_correlation_one():
    sr = 16000
    t = np.arange(sr) / sr
    phase = 2 * np.pi * np.cumsum(180.0 * 2 ** (0.5 * np.sin(2 * np.pi * 1.5 * t))) / sr
    audio = sum(0.3 / k * np.sin(k * phase) for k in range(1, 5)).astype(np.float32)
    a = extract_f0(audio, sr, "harvest")
    b = extract_f0(audio.copy(), sr, "harvest")
    assert f0_corr(a, b) == pytest.approx(1.0, abs=1e-12)
    assert f0_rmse(a, b, unit="cents") == 0.0
    # the audio shifted by an octave (frequencies x2) tracks 1200 cents higher
    phase2 = 2 * phase
    octave = sum(0.3 / k * np.sin(k * phase2) for k in range(1, 5)).astype(np.float32)
    c = extract_f0(octave, sr, "harvest")
    ref = shift_semitones(a, 12)
    assert f0_rmse(ref, c, unit="cents") < 30.0 and f0_corr(ref, c) > 0.99
