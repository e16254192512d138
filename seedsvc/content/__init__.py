"""Content extractors: what is sung, as frame-level features for the length regulator.

Every extractor has ``name``, ``dim``, ``discrete`` and ``extract(wav, sr)`` giving
content at the mel frame rate of :mod:`seedsvc.audio` (``len(wav_22k) // 256``
frames, ``wav`` at its true rate ``sr``), so prompt and source content can be
concatenated directly:

* continuous extractors (``discrete = False``): ``(T, dim)`` float32 features,
  for a length regulator with ``is_discrete: false`` (``content_in_proj`` takes
  ``dim``);
* discrete extractors (``discrete = True``): ``(T,)`` int64 token ids in
  ``[0, codebook_size)``, for a length regulator with ``is_discrete: true`` whose
  ``codebook_size`` is at least as large; ``dim`` is the codebook size.

Extractors (``--content-extractor``):

* ``phone``: the small phone classifier of :mod:`seedsvc.content.phone_classifier`,
  trained by ``seedsvc.bin.train_content`` on corpora with known phone timings
  (the mini corpus); its posteriors are the content.
* ``astral``: Seed-VC V2's own content, ASTRAL quantization's wide tokens
  (:mod:`seedsvc.content.astral`): a local ``facebook/hubert-large-ll60k`` directory
  (``ssl_model``, truncated to 18 layers) and the ``bsq2048_light.pth`` weights
  (``checkpoint``; ConvNeXt-V2 encoder + binary spherical quantizer) give one of
  2048 ids per frame.
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


def fit_frames(x, t: int):
    """Nearest-neighbour resampling of (N, ...) frames to ``t`` (frame i takes floor(i·N/t)); numpy or torch."""
    if x.shape[0] == t:
        return x
    idx = np.minimum((np.arange(t) * x.shape[0] / t).astype(np.int64), x.shape[0] - 1)
    return x[idx]


class ContentExtractor:
    name = "base"
    dim = 0
    discrete = False
    codebook_size = 0

    def extract(self, wav: np.ndarray, sr: int, num_frames: int | None = None) -> torch.Tensor:
        """Content of ``wav`` (at its true rate ``sr``) at ``num_frames`` mel frames (default ``len(wav_22k) // 256``)."""
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

    def extract(self, wav: np.ndarray, sr: int, num_frames: int | None = None) -> torch.Tensor:
        wav = resample(wav, sr, SAMPLE_RATE)
        feats = self.from_mel(mel_spectrogram(torch.from_numpy(wav))[0])
        return feats if num_frames is None else fit_frames(feats, num_frames)


def load_content_extractor(name: str, checkpoint: str | Path | None, device="cpu",
                           ssl_model: str | Path | None = None) -> ContentExtractor:
    """``checkpoint``: the extractor's weights; ``ssl_model``: the HuBERT directory (``astral`` only)."""
    if name not in EXTRACTORS:
        raise InputError(f"unknown content extractor '{name}' (choose: {', '.join(EXTRACTORS)})")
    if checkpoint is None:
        raise InputError(f"--content-checkpoint is needed for the '{name}' content extractor")
    if name == "phone":
        model, phones = load_phone_classifier(checkpoint)
        return PhoneContentExtractor(model, phones, device)
    from seedsvc.content.astral import load_astral_extractor

    return load_astral_extractor(checkpoint, ssl_model, device)


__all__ = ["EXTRACTORS", "ContentExtractor", "PhoneContentExtractor", "fit_frames", "load_content_extractor"]
