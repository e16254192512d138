"""ACE-Step's Music-DCAE pipeline: stereo audio ⇄ latents ``[B, 8, 16, T]`` (10.77 latent frames/s).

encode(audios ``[B, C, N]``, audio_lengths, sr): mono (C = 1) is repeated to stereo; resample to
44.1 kHz (:mod:`acestep.dcae.resample`; ``sr=None`` means 48 kHz); right-pad with zeros to a
multiple of 4096 samples; per channel log-mel (the vocoder's front end) → ``[B, 2, 128, F]``;
``x = ((mel + 11) / 14 - 0.5) / 0.5`` (no clipping); the DCAE encoder one item at a time (the
output is the latent, nothing is sampled); ``latents = (z - SHIFT) · SCALE``. ``latent_lengths =
trunc(audio_lengths / sr · 44100 / 4096)`` (float32 steps); they exclude the padding, so ``T`` is usually one more.

decode(latents, audio_lengths, sr): ``z = latents / SCALE + SHIFT``; DCAE decoder per item →
normalised mel; ``mel = (m · 0.5 + 0.5) · 14 - 11``; the mono vocoder once per channel →
``[2, 4096 · T]`` at 44.1 kHz; resample to ``sr`` when given (returned rate ``sr``, else 44100);
cut each item to ``audio_lengths[b]`` samples at the output rate. Returns ``(sr, [wav_b])``.

Windowed decode (``chunked=True``) bounds memory for long latents: the latent axis is split by
:func:`shirabe.codec.chunking.chunk_plan` into windows of ``window_frames`` frames that overlap
by ``overlap_frames``; each window goes through the DCAE decoder and the vocoder on its own, and
its waveform is pasted into a preallocated output keeping only the samples of its kept latent
frames (``overlap_frames // 2`` frames are dropped at every inner window edge; each latent frame is
4096 samples). The seam differs from the unwindowed decode only through context the window does
not see: the decoder's linear attention spans the whole window (not the whole song) and the
convolutions' receptive field is cut at the window edge; a larger overlap shrinks that error.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from acestep.dcae.loading import load_dcae, load_vocoder
from acestep.dcae.resample import resample
from shirabe.cli import InputError
from shirabe.codec.chunking import chunk_plan

SAMPLE_RATE = 44100
DEFAULT_INPUT_SR = 48000
HOP_LENGTH = 512
LATENT_DOWNSAMPLE = 8
SAMPLES_PER_LATENT = HOP_LENGTH * LATENT_DOWNSAMPLE  # 4096
SHIFT_FACTOR = -1.9091
SCALE_FACTOR = 0.1786
MIN_MEL = -11.0
MAX_MEL = 3.0


class MusicDCAE(torch.nn.Module):
    """The DCAE (``self.dcae``, a diffusers ``AutoencoderDC``) and the vocoder (``self.vocoder``).

    The networks may run in a lower precision (``model.to(torch.bfloat16)``); the resampler, the mel
    front end and the latent scaling stay in float32, and latents and waveforms are returned as float32.
    """

    def __init__(self, dcae: torch.nn.Module, vocoder: torch.nn.Module):
        super().__init__()
        self.dcae = dcae
        self.vocoder = vocoder

    @classmethod
    def from_folders(cls, dcae_dir: str | Path, vocoder_dir: str | Path,
                     device: str | torch.device | None = None) -> MusicDCAE:
        """Load ``music_dcae_f8c8/`` and ``music_vocoder/`` strictly; eval mode."""
        return cls(load_dcae(dcae_dir, device), load_vocoder(vocoder_dir, device)).eval()

    @classmethod
    def from_checkpoint_dir(cls, root: str | Path, device: str | torch.device | None = None) -> MusicDCAE:
        """Load from a checkpoint folder holding ``music_dcae_f8c8/`` and ``music_vocoder/``."""
        root = Path(root)
        return cls.from_folders(root / "music_dcae_f8c8", root / "music_vocoder", device)

    # ---- helpers ------------------------------------------------------------------------------

    @property
    def _device(self) -> torch.device:
        return next(self.dcae.parameters()).device

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.dcae.parameters()).dtype

    @staticmethod
    def latent_lengths(audio_lengths: torch.Tensor, sr: int) -> torch.Tensor:
        """``trunc(audio_lengths / sr · 44100 / 512 / 8)`` as int64, each step in float32 as the reference does.

        (Float32 matters at the edges: 28672 samples at 44.1 kHz, exactly 7 latent frames, give 6.)
        """
        x = torch.as_tensor(audio_lengths).to(torch.float32)
        return (x / sr * SAMPLE_RATE / HOP_LENGTH / LATENT_DOWNSAMPLE).long()

    def log_mel(self, wav44: torch.Tensor) -> torch.Tensor:
        """``[..., Lp]`` 44.1 kHz audio (Lp a multiple of 512) → natural-log mel ``[..., 128, Lp / 512]``."""
        return self.vocoder.mel_transform(wav44)

    def padded_44k(self, audios: torch.Tensor, sr: int = DEFAULT_INPUT_SR) -> torch.Tensor:
        """``[B, C, N]`` at ``sr`` → 44.1 kHz, right-padded with zeros to a multiple of 4096 samples."""
        wav = resample(audios.to(device=self._device, dtype=torch.float32), int(sr), SAMPLE_RATE)
        pad = (-wav.shape[-1]) % SAMPLES_PER_LATENT
        return F.pad(wav, (0, pad)) if pad else wav

    # ---- encode -------------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, audios: torch.Tensor, audio_lengths: torch.Tensor | None = None,
               sr: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(latents [B, 8, 16, T] float32, latent_lengths [B] int64)``; see the module docstring."""
        if audios.dim() != 3 or audios.shape[1] not in (1, 2):
            raise InputError(f"encode: audios must be [B, 1 or 2, N], got {list(audios.shape)}")
        if audios.shape[1] == 1:
            audios = audios.repeat(1, 2, 1)
        batch, _, length = audios.shape
        if audio_lengths is None:
            audio_lengths = torch.full((batch,), length, dtype=torch.long)
        audio_lengths = torch.as_tensor(audio_lengths)
        if audio_lengths.shape != (batch,):
            raise InputError(f"encode: audio_lengths must be [{batch}], got {list(audio_lengths.shape)}")
        rate = DEFAULT_INPUT_SR if sr is None else int(sr)
        mel = self.log_mel(self.padded_44k(audios, rate))  # [B, 2, 128, F]
        x = ((mel - MIN_MEL) / (MAX_MEL - MIN_MEL) - 0.5) / 0.5
        x = x.to(self._dtype)
        latents = torch.cat([self.dcae.encoder(x[b:b + 1]).float() for b in range(batch)], dim=0)
        latents = (latents - SHIFT_FACTOR) * SCALE_FACTOR
        return latents, self.latent_lengths(audio_lengths, rate)

    # ---- decode -------------------------------------------------------------------------------

    def _latents_to_wav44(self, latents: torch.Tensor) -> torch.Tensor:
        """One item ``[1, 8, 16, T]`` (scaled latents) → ``[2, 4096 · T]`` at 44.1 kHz."""
        z = latents / SCALE_FACTOR + SHIFT_FACTOR
        m = self.dcae.decoder(z.to(self._dtype))
        mel = (m * 0.5 + 0.5) * (MAX_MEL - MIN_MEL) + MIN_MEL
        mel = mel.to(next(self.vocoder.parameters()).dtype)
        return torch.cat([self.vocoder(mel[:, c]).reshape(1, -1).float() for c in range(mel.shape[1])], dim=0)

    def _windowed_wav44(self, latents: torch.Tensor, window_frames: int, overlap_frames: int) -> torch.Tensor:
        total = latents.shape[-1]
        try:
            plan = chunk_plan(total, window_frames, overlap_frames)
        except ValueError as e:
            raise InputError(f"decode: {e}") from None
        out = torch.empty(2, total * SAMPLES_PER_LATENT, dtype=torch.float32, device=latents.device)
        for piece in plan:
            wav = self._latents_to_wav44(latents[..., piece.start:piece.stop])
            a = (piece.keep_start - piece.start) * SAMPLES_PER_LATENT
            b = (piece.keep_end - piece.start) * SAMPLES_PER_LATENT
            out[:, piece.keep_start * SAMPLES_PER_LATENT:piece.keep_end * SAMPLES_PER_LATENT] = wav[:, a:b]
            del wav
        return out

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, audio_lengths: torch.Tensor | None = None, sr: int | None = None,
               chunked: bool = False, window_frames: int = 128, overlap_frames: int = 32
               ) -> tuple[int, list[torch.Tensor]]:
        """``(sr, [wav [2, N_b] float32])``; see the module docstring (``chunked``: windowed decode)."""
        if latents.dim() != 4:
            raise InputError(f"decode: latents must be [B, 8, 16, T], got {list(latents.shape)}")
        if audio_lengths is not None and len(audio_lengths) != latents.shape[0]:
            raise InputError(f"decode: {len(audio_lengths)} audio_lengths for {latents.shape[0]} latents")
        latents = latents.to(device=self._device, dtype=torch.float32)
        out_sr = SAMPLE_RATE if sr is None else int(sr)
        wavs = []
        for b in range(latents.shape[0]):
            item = latents[b:b + 1]
            if chunked:
                wav = self._windowed_wav44(item, window_frames, overlap_frames)
            else:
                wav = self._latents_to_wav44(item)
            wav = resample(wav, SAMPLE_RATE, out_sr)
            if audio_lengths is not None:
                wav = wav[:, :int(audio_lengths[b])]
            wavs.append(wav)
        return out_sr, wavs

    @staticmethod
    def output_length(latent_frames: int, sr: int | None = None) -> int:
        """Samples that decode returns for ``latent_frames`` frames before any cut."""
        n44 = latent_frames * SAMPLES_PER_LATENT
        if sr is None or int(sr) == SAMPLE_RATE:
            return n44
        g = math.gcd(SAMPLE_RATE, int(sr))
        return math.ceil(n44 * (int(sr) // g) / (SAMPLE_RATE // g))
