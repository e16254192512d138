"""Synthetic non-speech: the fixed test signals and the random training clips."""

from __future__ import annotations

import numpy as np
import pytest

from shirabe.asr.nonspeech import KINDS, click_train, random_nonspeech, white_noise


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_click_train_places_bursts_at_the_rate():
    like = np.full(24000, 0.05, dtype=np.float32)  # 1 s at RMS 0.05
    clicks = click_train(like, 24000, freq=1000.0, rate=10.0, width_s=0.005)
    assert clicks.shape == like.shape and clicks.dtype == np.float32
    assert _rms(clicks) == pytest.approx(0.05, rel=1e-4)
    active = np.flatnonzero(np.abs(clicks) > 1e-6)
    # ten 120-sample bursts starting every 2400 samples
    assert sorted({int(i) // 2400 * 2400 for i in active}) == list(range(0, 24000, 2400))
    assert all(int(i) % 2400 < 120 for i in active)


def test_white_noise_matches_length_and_level():
    like = 0.05 * np.sin(np.linspace(0, 200, 12000)).astype(np.float32)
    noise = white_noise(like, seed=3)
    assert noise.shape == like.shape
    assert _rms(noise) == pytest.approx(_rms(like), rel=1e-3)
    assert np.array_equal(noise, white_noise(like, seed=3))
    assert not np.array_equal(noise, white_noise(like, seed=4))


@pytest.mark.parametrize("kind", KINDS)
def test_random_clips_are_reproducible_and_quiet_enough(kind):
    a = random_nonspeech(np.random.default_rng(5), 6000, kind=kind)
    b = random_nonspeech(np.random.default_rng(5), 6000, kind=kind)
    assert a.shape == (6000,) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert float(np.max(np.abs(a))) <= 1.0
    assert _rms(a) <= 10 ** (-10 / 20) * 1.001  # at most -10 dBFS


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown non-speech kind 'speech'"):
        random_nonspeech(np.random.default_rng(0), 100, kind="speech")
