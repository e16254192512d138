"""Features at any sample rate, and their cache."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from shirabe.asr.features import FbankCache, fbank


def _tone(sr: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_features_resample_to_24k():
    at16, at24 = fbank(_tone(16000), 16000), fbank(_tone(24000), 24000)
    assert tuple(at24.shape) == (1 + 24000 // 256, 100)
    assert at16.shape == at24.shape
    # the 440 Hz tone falls in the same mel bin at both rates
    assert int(at16[10:-10].mean(0).argmax()) == int(at24[10:-10].mean(0).argmax())
    stereo = np.stack([_tone(24000), _tone(24000)], axis=1)
    assert torch.allclose(fbank(stereo, 24000), at24)


def test_cache_reuses_recomputes_and_drops(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, _tone(24000, 0.5), 24000)
    sf.write(b, _tone(24000, 0.7), 24000)
    cache = FbankCache(tmp_path / "cache.pt")
    fa = cache.get("a", a)
    cache.get("b", b)
    cache.save()
    assert (tmp_path / "cache.pt").is_file()

    again = FbankCache(tmp_path / "cache.pt")
    assert set(again.entries) == {"a", "b"}
    assert torch.equal(again.get("a", a), fa) and not again.changed  # from the cache
    sf.write(a, _tone(24000, 0.3, freq=1000.0), 24000)  # a changes (size too)
    fa2 = again.get("a", a)
    assert again.changed and fa2.shape[0] == 1 + int(24000 * 0.3) // 256
    again.save()  # b was not asked for: dropped

    last = FbankCache(tmp_path / "cache.pt")
    assert set(last.entries) == {"a"}
    assert torch.equal(last.entries["a"]["feats"], fa2)
