"""Content extractors: what is sung, as frame-level features for the length regulator.

Every extractor has ``name``, ``dim`` and ``extract(wav, sr) -> (T, dim)`` float32
features at the mel frame rate of :mod:`seedsvc.audio` (``len(wav_22k) // 256``
frames), so prompt and source features can be concatenated directly.

Extractors (``--content-extractor``):

* ``phone``: the small phone classifier of :mod:`seedsvc.content.phone_classifier`,
  trained by ``seedsvc.bin.train_content`` on corpora with known phone timings
  (the mini corpus); its posteriors are the content.
* ``astral``: reserved for an ASTRAL-quantization-compatible extractor (HuBERT + BSQ,
  as Seed-VC V2 uses) loading user checkpoints; not implemented yet, asking for it
  is a one-line error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seedsvc.audio import SAMPLE_RATE, mel_spectrogram
from seedsvc.content.phone_classifier import PhoneClassifier, load_phone_classifier
from shirabe.audio import resample
from shirabe.cli import InputError

EXTRACTORS = ("phone", "astral")


class ContentExtractor:
    name = "base"
    dim = 0

    def extract(self, wav: np.ndarray, sr: int) -> torch.Tensor:
        raise NotImplementedError


class PhoneContentExtractor(ContentExtractor):
    name = "phone"

    def __init__(self, model: PhoneClassifier, phones: list[str], device="cpu"):
        self.model = model.to(device).eval()
        self.phones = phones
        self.dim = len(phones)
        self.device = device

    @torch.inference_mode()
    def from_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """(80, T) log-mel → (T, dim) posteriors."""
        return self.model.posteriors(mel.unsqueeze(0).to(self.device))[0].float().cpu()

    def extract(self, wav: np.ndarray, sr: int) -> torch.Tensor:
        wav = resample(wav, sr, SAMPLE_RATE)
        return self.from_mel(mel_spectrogram(torch.from_numpy(wav))[0])


def load_content_extractor(name: str, checkpoint: str | Path | None, device="cpu") -> ContentExtractor:
    if name not in EXTRACTORS:
        raise InputError(f"unknown content extractor '{name}' (choose: {', '.join(EXTRACTORS)})")
    if checkpoint is None:
        raise InputError(f"--content-checkpoint is needed for the '{name}' content extractor")
    if name == "phone":
        model, phones = load_phone_classifier(checkpoint)
        return PhoneContentExtractor(model, phones, device)
    raise InputError("the 'astral' content extractor is not implemented yet (use --content-extractor phone)")


__all__ = ["EXTRACTORS", "ContentExtractor", "PhoneContentExtractor", "load_content_extractor"]
