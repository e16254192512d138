"""Vocos log-mel features as a lhotse feature extractor (ZipVoice's training features).

``VocosFbank`` computes :func:`shirabe.audio.mel.vocos_mel` (24 kHz, n_fft 1024,
hop 256, 100 HTK mels, magnitude, natural log floored at 1e-7) and fixes the
frame count to lhotse's ``compute_num_frames`` (``(S + 128) // 256`` at the
default settings: the extra centred frame is dropped, or the last frame is
repeated if the count ever falls short), so ``cut.num_frames`` and the stored
matrix agree. It is registered under the name ``VocosFbank``, the name that
ZipVoice's manifests carry, so their feature manifests load here and ours load
there.

This module imports lhotse; code that only needs the features should use
:func:`vocos_mel` from :mod:`shirabe.audio.mel` (re-exported here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from lhotse.features.base import FeatureExtractor, register_extractor
from lhotse.utils import Seconds, compute_num_frames

from shirabe.audio.mel import vocos_mel
from shirabe.cli import InputError

__all__ = ["VocosFbank", "VocosFbankConfig", "fix_num_frames", "vocos_mel"]


@dataclass
class VocosFbankConfig:
    sampling_rate: int = 24000
    n_mels: int = 100
    n_fft: int = 1024
    hop_length: int = 256

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VocosFbankConfig:
        return cls(**data)


def fix_num_frames(feats: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Trim (T, D) features to ``num_frames`` rows, or repeat the last row to reach it."""
    if feats.shape[0] > num_frames:
        return feats[:num_frames]
    if feats.shape[0] < num_frames:
        pad = feats[-1:].expand(num_frames - feats.shape[0], -1)
        return torch.cat([feats, pad], dim=0)
    return feats


@register_extractor
class VocosFbank(FeatureExtractor):
    """Vocos log-mel fbank, (T, n_mels) per mono signal.

    ``num_channels=1`` (default) averages multichannel input to mono;
    ``num_channels=2`` expects stereo and returns (T, 2 * n_mels): channel 0's
    mels then channel 1's.
    """

    name = "VocosFbank"
    config_type = VocosFbankConfig

    def __init__(self, config: VocosFbankConfig | None = None, num_channels: int = 1):
        super().__init__(config=config)
        if num_channels not in (1, 2):
            raise ValueError(f"num_channels must be 1 or 2, got {num_channels}")
        self.num_channels = num_channels

    @property
    def frame_shift(self) -> Seconds:
        return self.config.hop_length / self.config.sampling_rate

    def feature_dim(self, sampling_rate: int) -> int:
        return self.config.n_mels * self.num_channels

    def extract(self, samples: np.ndarray | torch.Tensor, sampling_rate: int) -> np.ndarray | torch.Tensor:
        """(S,) or (C, S) float32 samples at the configured rate → (T, feature_dim) float32.

        Returns a tensor for tensor input, a numpy array otherwise.
        """
        cfg = self.config
        if sampling_rate != cfg.sampling_rate:
            raise InputError(
                f"VocosFbank expects {cfg.sampling_rate} Hz audio, got {sampling_rate} Hz (resample first)"
            )
        as_numpy = not isinstance(samples, torch.Tensor)
        x = torch.from_numpy(np.asarray(samples, dtype=np.float32)) if as_numpy else samples.float()
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2:
            raise ValueError(f"expected samples of shape (S,) or (C, S), got {tuple(x.shape)}")
        if self.num_channels == 1:
            if x.shape[0] > 1:
                x = x.mean(dim=0, keepdim=True)
        elif x.shape[0] != 2:
            raise ValueError(f"VocosFbank(num_channels=2) expects stereo input, got {x.shape[0]} channel(s)")
        mel = vocos_mel(x, cfg.sampling_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels)  # (C, M, T)
        feats = mel.reshape(-1, mel.shape[-1]).t()  # (T, C * M)
        num_frames = compute_num_frames(x.shape[1] / sampling_rate, self.frame_shift, sampling_rate)
        feats = fix_num_frames(feats, num_frames).contiguous()
        return feats.numpy() if as_numpy else feats
