"""The recognizer's input: the Vocos 100-bin log-mel fbank at 24 kHz, and its cache.

Features are :func:`shirabe.audio.mel.vocos_mel` (the features ZipVoice trains on
and the Vocos vocoder reads), ``(frames, 100)`` at 93.75 frames per second. Audio
at any other rate is resampled to 24 kHz first, and multichannel audio averaged.

:class:`FbankCache` keeps the features of a TSV's utterances in one torch file
(``utt_id → features``, each with the wav's path, size and modification time);
entries whose wav changed are recomputed, and those of utterances no longer
asked for are dropped. The file loads with
``weights_only=True`` and is written atomically.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from shirabe.audio.io import load_audio
from shirabe.audio.mel import N_MELS, vocos_mel
from shirabe.audio.resample import resample
from shirabe.cli import InputError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24000
CACHE_VERSION = 1


def fbank(wav: np.ndarray | torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """``(frames, 100)`` float32 log-mel features of mono (S,) or (S, C) audio at ``sample_rate``."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    if wav.ndim != 1:
        raise ValueError(f"expected audio of shape (samples,) or (samples, channels), got {wav.shape}")
    if sample_rate != SAMPLE_RATE:
        wav = resample(wav, sample_rate, SAMPLE_RATE)
    if wav.size == 0:
        return torch.zeros(0, N_MELS)
    return vocos_mel(torch.from_numpy(np.ascontiguousarray(wav)))[0].t().contiguous()


def wav_fbank(path: str | Path) -> torch.Tensor:
    """Features of an audio file (any rate; an InputError naming a missing or unreadable file)."""
    wav, sr = load_audio(path, sr=SAMPLE_RATE)
    return fbank(wav, sr)


def _stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


class FbankCache:
    """Features by utterance id, kept in ``path`` (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        self.used: set[str] = set()
        self.changed = False
        if self.path.is_file():
            try:
                data = torch.load(self.path, map_location="cpu", weights_only=True)
            except Exception as e:  # a damaged cache is rebuilt, not fatal
                logger.warning("%s: unreadable feature cache, recomputing (%s)", self.path, str(e).splitlines()[0])
                data = {}
            if isinstance(data, dict) and data.get("version") == CACHE_VERSION:
                self.entries = dict(data.get("items", {}))

    def get(self, utt_id: str, wav: str | Path) -> torch.Tensor:
        """The features of ``wav``, from the cache when the file is unchanged."""
        wav = Path(wav)
        if not wav.is_file():
            raise InputError(f"{wav}: no such audio file (utterance {utt_id})")
        size, mtime = _stamp(wav)
        self.used.add(utt_id)
        entry = self.entries.get(utt_id)
        if entry is not None and entry["path"] == str(wav) and entry["size"] == size and entry["mtime_ns"] == mtime:
            return entry["feats"]
        feats = wav_fbank(wav)
        self.entries[utt_id] = {"path": str(wav), "size": size, "mtime_ns": mtime, "feats": feats}
        self.changed = True
        return feats

    def save(self) -> None:
        """Write the cache (atomically) if anything was added, or entries not asked for since it was
        opened were dropped."""
        stale = set(self.entries) - self.used
        for utt_id in stale:
            del self.entries[utt_id]
        if not self.changed and not stale:
            return
        from shirabe.train.checkpoint import atomic_save

        atomic_save({"version": CACHE_VERSION, "items": self.entries}, self.path)
        self.changed = False
