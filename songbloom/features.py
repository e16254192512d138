"""Training features of a song: VAE latents, sketch ids and the style prompt's latents.

* **Latents**: the Oobleck VAE's posterior mean of the song (48 kHz stereo; mono
  is repeated, other rates resampled), (D, T_vae) with T_vae = floor(N48 / ratio),
  25 Hz for the released VAE (ratio 1920). Long songs are encoded in overlapped
  chunks, so memory does not grow with the song.
* **Sketch ids**: MuQ hidden states of the codebook's layer (24 kHz mono, 25 Hz,
  T_muq = ceil(ceil(floor(N24 / 240) / 2) / 2) frames), each the id of its
  nearest codebook row.
* **Length rule**: latent frame ``t`` takes the sketch id of MuQ frame
  ``floor(t · 25 / vae_rate)``; both streams are cut to the frames that have
  both, T = min(T_vae, frames covered by T_muq). At the released rates (25 Hz
  and 25 Hz) this is the shorter of the two, and T_muq ≥ T_vae always holds
  (ceil against floor), so T = T_vae and the last latent frame keeps its id.
* **Prompt latents**: the VAE mean of the song's style prompt (10 s → 250
  frames at 25 Hz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from shirabe.codec import OobleckVAE
from songbloom.sketch import Codebook

MUQ_FRAME_RATE = 25.0


@dataclass
class SongFeatures:
    latent: np.ndarray  # (D, T) float32
    sketch: np.ndarray | None  # (T,) int64
    prompt_latent: np.ndarray | None  # (D, Tp) float32
    vae_frames: int
    muq_frames: int | None

    @property
    def frames(self) -> int:
        return self.latent.shape[1]


def sketch_at_latent_rate(ids: torch.Tensor, latent_rate: float, muq_rate: float = MUQ_FRAME_RATE) -> torch.Tensor:
    """Ids at the MuQ rate → one id per latent frame (see the length rule above), as many as the ids cover."""
    covered = math.floor(len(ids) * latent_rate / muq_rate + 1e-9)
    t = torch.arange(covered)
    return ids[torch.floor(t * (muq_rate / latent_rate) + 1e-9).long().clamp_max(len(ids) - 1)]


class FeatureExtractor:
    """Latents (and sketch ids when a MuQ model and codebook are given) of songs and prompts."""

    def __init__(self, vae: OobleckVAE, muq=None, codebook: Codebook | None = None,
                 chunk_seconds: float = 30.0, overlap_seconds: float = 2.0, muq_window_seconds: float = 30.0):
        if (muq is None) != (codebook is None):
            raise ValueError("sketch ids need both a MuQ model and a codebook")
        self.vae, self.muq, self.codebook = vae, muq, codebook
        self.chunk_seconds, self.overlap_seconds = chunk_seconds, overlap_seconds
        self.muq_window_seconds = muq_window_seconds

    @property
    def latent_rate(self) -> float:
        return self.vae.sample_rate / self.vae.downsampling_ratio

    @torch.no_grad()
    def latents(self, audio: np.ndarray, sample_rate: int) -> torch.Tensor:
        wav = torch.as_tensor(np.atleast_2d(audio), dtype=torch.float32).unsqueeze(0)  # (1, C, N)
        seconds = wav.shape[-1] / sample_rate
        chunked = seconds > self.chunk_seconds + self.overlap_seconds
        lat = self.vae.encode(wav, sample_rate, chunked=chunked, chunk_seconds=self.chunk_seconds,
                              overlap_seconds=self.overlap_seconds if chunked else None)
        return lat[0].float().cpu()

    @torch.no_grad()
    def sketch_ids(self, audio: np.ndarray, sample_rate: int) -> torch.Tensor:
        feats = self.muq.encode(np.atleast_2d(audio).mean(axis=0), sample_rate, layers=self.codebook.muq_layer,
                                window_seconds=self.muq_window_seconds)
        return self.codebook.quantize(feats.float()).cpu()

    def __call__(self, audio: np.ndarray, sample_rate: int, prompt: np.ndarray | None = None,
                 prompt_rate: int | None = None) -> SongFeatures:
        latent = self.latents(audio, sample_rate)
        vae_frames = latent.shape[1]
        sketch, muq_frames = None, None
        if self.muq is not None:
            ids = self.sketch_ids(audio, sample_rate)
            muq_frames = len(ids)
            at_rate = sketch_at_latent_rate(ids, self.latent_rate)
            frames = min(vae_frames, len(at_rate))
            latent, sketch = latent[:, :frames], at_rate[:frames].numpy().astype(np.int64)
        prompt_latent = None
        if prompt is not None:
            prompt_latent = self.latents(prompt, prompt_rate or sample_rate).numpy()
        return SongFeatures(latent.numpy(), sketch, prompt_latent, vae_frames, muq_frames)
