"""The numpy Vocos front end (used by the torch-free ONNX runner) equals the torch one."""

import numpy as np
import pytest
import torch
from zipvoice_onnx_testlib import VOCOS_TINY

from shirabe.audio.fbank import VocosFbank
from shirabe.audio.mel import vocos_mel
from shirabe.audio.mel_numpy import vocos_fbank_np, vocos_mel_np


def test_matches_the_vocos_package_features():
    with np.load(VOCOS_TINY / "cases.npz", allow_pickle=False) as f:
        wav, mel = f["wav"], f["mel"]
    got = vocos_mel_np(wav)
    assert got.shape == mel.shape == (1, 100, 94)
    assert np.abs(got - mel).max() <= 1e-4


@pytest.mark.parametrize("num_samples", [300, 512, 513, 7777, 24000])
def test_matches_the_torch_front_end(num_samples):
    wav = (0.1 * np.random.default_rng(num_samples).standard_normal(num_samples)).astype(np.float32)
    want = vocos_mel(torch.from_numpy(wav)).numpy()
    got = vocos_mel_np(wav)
    assert got.shape == want.shape == (1, 100, 1 + num_samples // 256)
    assert np.abs(got - want).max() <= 1e-4
    feats = vocos_fbank_np(wav)
    ref = VocosFbank().extract(wav, 24000)
    assert feats.shape == ref.shape == ((num_samples + 128) // 256, 100)
    assert np.abs(feats - ref).max() <= 1e-4
