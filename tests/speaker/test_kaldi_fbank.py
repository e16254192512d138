"""Kaldi fbank against lhotse's independent Kaldi-compatible implementation."""

import warnings

import numpy as np
import torch
from lhotse.features.kaldi.layers import Wav2LogFilterBank

from shirabe.speaker import campplus_features, kaldi_fbank
from shirabe.speaker.fbank import kaldi_mel_banks, povey_window


def lhotse_fbank(x: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lhotse warns that snip_edges=True is unusual for it
        layer = Wav2LogFilterBank(sampling_rate=16000, snip_edges=True, dither=0.0, high_freq=0.0,
                                  low_freq=20.0, num_filters=80, preemph_coeff=0.97, window_type="povey",
                                  remove_dc_offset=True, round_to_power_of_two=True)
    return layer(x[None])[0]


def test_matches_lhotse_kaldi_fbank():
    rng = np.random.default_rng(3)
    t = np.arange(16000 + 123) / 16000
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size)
    x = torch.from_numpy(x.astype(np.float32))
    ours, ref = kaldi_fbank(x), lhotse_fbank(x)
    assert ours.shape == ref.shape == (1 + (len(x) - 400) // 160, 80)
    torch.testing.assert_close(ours, ref, atol=2e-4, rtol=0)


def test_tables():
    w = povey_window().double().numpy()
    n = np.arange(400)
    np.testing.assert_allclose(w, (0.5 - 0.5 * np.cos(2 * np.pi * n / 399)) ** 0.85, atol=1e-7)
    banks = kaldi_mel_banks()
    assert banks.shape == (257, 80) and (banks[-1] == 0).all() and (banks[:1] == 0).all()
    # peaks of 1 at most; every filter covers some bins
    assert banks.max() <= 1.0 and (banks.sum(0) > 0).all()


def test_campplus_features_are_mean_normalised_at_16k():
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(24000)).astype(np.float32)  # 1 s at 24 kHz
    feats = campplus_features(audio, 24000)
    assert feats.shape == (98, 80)
    torch.testing.assert_close(feats.mean(0), torch.zeros(80), atol=1e-5, rtol=0)
