"""MCD with DTW: zero for identical audio, exact mel-cepstra of synthetic envelopes, DTW optimality."""

import itertools

import numpy as np
import pytest

from shirabe.audio import load_audio
from shirabe.eval import all_pass_alpha, mcd_dtw
from shirabe.eval.dtw import dtw_path
from shirabe.eval.mcd import MCD_CONST, envelope_to_mcep, frame_mcd, warp_frequency


def test_alpha_matches_sptk_table():
    # The usual all-pass constants for mel-cepstral analysis.
    for sr, alpha in [(8000, 0.31), (16000, 0.41), (22050, 0.455), (44100, 0.544), (48000, 0.554)]:
        assert all_pass_alpha(sr) == pytest.approx(alpha, abs=0.003)


def test_mcep_of_a_synthetic_envelope():
    """An envelope built from known mel-cepstral coefficients gives them back."""
    rng = np.random.default_rng(1)
    coeffs = rng.normal(0.0, 0.3, size=(3, 25))
    alpha = 0.455
    omega = np.pi * np.arange(1025) / 1024
    warped = warp_frequency(omega, alpha)
    log_amp = coeffs[:, :1] + coeffs[:, 1:] @ np.cos(np.arange(1, 25)[:, None] * warped[None, :])
    envelope = np.exp(2.0 * log_amp)  # power
    np.testing.assert_allclose(envelope_to_mcep(envelope, 24, alpha), coeffs, atol=2e-3)
    # MCD of two such frames = RMS dB difference of the log-amplitude envelopes on the warped axis
    theta = np.linspace(0, np.pi, 20001)
    d = coeffs[0, 1:] - coeffs[1, 1:]
    db = (20 / np.log(10)) * (np.cos(np.arange(1, 25)[:, None] * theta[None, :]).T @ d)
    assert frame_mcd(coeffs[:1], coeffs[1:2])[0] == pytest.approx(np.sqrt(np.mean(db**2)), rel=1e-3)
    assert MCD_CONST == pytest.approx(10 / np.log(10) * np.sqrt(2))


def test_dtw_finds_the_cheapest_monotone_path():
    rng = np.random.default_rng(2)
    cost = rng.uniform(0, 1, size=(4, 5))
    # brute force over all step sequences from (0,0) to (3,4)
    best = np.inf
    for steps in itertools.product([(1, 0), (0, 1), (1, 1)], repeat=7):
        i = j = 0
        total = cost[0, 0]
        for di, dj in steps:
            if (i, j) == (3, 4):
                break
            i, j = i + di, j + dj
            if i > 3 or j > 4:
                total = np.inf
                break
            total += cost[i, j]
        if (i, j) == (3, 4):
            best = min(best, total)
    pi, pj, total = dtw_path(cost)
    assert total == pytest.approx(best)
    assert cost[pi, pj].sum() == pytest.approx(best)
    assert (pi[0], pj[0], pi[-1], pj[-1]) == (0, 0, 3, 4)
    assert np.all(np.diff(pi) >= 0) and np.all(np.diff(pj) >= 0)


def test_mcd_on_speech(speech_by_speaker):
    speakers = sorted(speech_by_speaker)
    a, sr = load_audio(speech_by_speaker[speakers[0]][0])
    assert mcd_dtw(a, a, sr) == 0.0
    # a gain only moves c0, which MCD leaves out
    assert mcd_dtw(a, 0.5 * a, sr) < 0.01
    # a delayed copy (0.1 s of faint noise in front): DTW re-aligns it
    rng = np.random.default_rng(0)
    lead = (1e-4 * rng.standard_normal(int(0.1 * sr))).astype(np.float32)
    delayed = mcd_dtw(a, np.concatenate([lead, a]), sr)
    other, _ = load_audio(speech_by_speaker[speakers[1]][0])
    different = mcd_dtw(a, other, sr)
    print(f"MCD: delayed copy {delayed:.2f} dB, another voice {different:.2f} dB")
    assert delayed < 1.0 and different > 5.0
