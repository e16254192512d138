"""A small frame-level phone classifier whose posteriors serve as content features.

Input: the 80-band log-mel of :mod:`seedsvc.audio`, mean-normalised over time per
utterance (removes some of the singer's spectral tilt). A 1-D conv stack with
residual connections looks at ~0.3 s of context; the output is a softmax over
phones. Trained with cross-entropy on frame labels from known phone timings of
several singers, its posteriors describe *what* is sung with little of *who*
sings it.

Checkpoint: ``{"model": state_dict, "config": {...}, "phones": [names]}``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shirabe.cli import InputError
from shirabe.train.checkpoint import atomic_save, safe_load

logger = logging.getLogger(__name__)


class PhoneClassifier(nn.Module):
    def __init__(self, num_phones: int, n_mels: int = 80, channels: int = 128, num_layers: int = 4,
                 kernel_size: int = 5, dropout: float = 0.1):
        super().__init__()
        self.config = dict(num_phones=num_phones, n_mels=n_mels, channels=channels, num_layers=num_layers,
                           kernel_size=kernel_size, dropout=dropout)
        self.inp = nn.Conv1d(n_mels, channels, 1)
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
                nn.GroupNorm(1, channels),
                nn.GELU(),
                nn.Dropout(dropout),
            )
            for _ in range(num_layers)
        )
        self.out = nn.Conv1d(channels, num_phones, 1)

    @staticmethod
    def normalise(mel: Tensor) -> Tensor:
        return mel - mel.mean(dim=-1, keepdim=True)

    def forward(self, mel: Tensor) -> Tensor:
        """(B, n_mels, T) log-mel → (B, num_phones, T) logits."""
        h = self.inp(self.normalise(mel))
        for layer in self.layers:
            h = h + layer(h)
        return self.out(h)

    @torch.inference_mode()
    def posteriors(self, mel: Tensor) -> Tensor:
        """(B, n_mels, T) → (B, T, num_phones) phone posteriors."""
        return F.softmax(self.forward(mel), dim=1).transpose(1, 2)


def save_phone_classifier(path: str | Path, model: PhoneClassifier, phones: list[str], extra: dict | None = None):
    return atomic_save({"model": model.state_dict(), "config": model.config, "phones": list(phones), **(extra or {})},
                       path)


def load_phone_classifier(path: str | Path) -> tuple[PhoneClassifier, list[str]]:
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or not {"model", "config", "phones"} <= set(ckpt):
        raise InputError(f"{path}: not a phone classifier checkpoint (needs model, config, phones)")
    model = PhoneClassifier(**ckpt["config"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), list(ckpt["phones"])
