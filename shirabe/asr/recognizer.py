"""A trained phone recognizer on disk and in memory.

A model directory holds ``model.json`` (the :class:`~shirabe.asr.model.ModelConfig`),
``phones.txt`` (the output classes, :mod:`shirabe.asr.phones`) and ``model.pt``
(``{"model": state_dict, "config": ...}``, loadable with ``weights_only=True``).
:func:`save_recognizer` writes the three files atomically, ``model.pt`` last.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from shirabe.asr.ctc import greedy_decode
from shirabe.asr.features import fbank, wav_fbank
from shirabe.asr.model import ModelConfig, PhoneCTCModel
from shirabe.asr.phones import PHONES_FILE, read_phone_table, write_phone_table
from shirabe.cli import InputError
from shirabe.text.tokens import TokenTable

MODEL_FILE = "model.pt"
CONFIG_FILE = "model.json"

def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_recognizer(model: PhoneCTCModel, table: TokenTable, out_dir: str | Path) -> Path:
    """Write ``model.json``, ``phones.txt`` and then ``model.pt`` into ``out_dir``; returns the model file."""
    from shirabe.train.checkpoint import atomic_save

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(table) != model.config.num_classes:
        raise ValueError(f"the phone table has {len(table)} entries, the model {model.config.num_classes} classes")
    _write_text_atomic(out_dir / CONFIG_FILE, json.dumps(model.config.to_dict(), indent=2) + "\n")
    write_phone_table(table, out_dir / PHONES_FILE)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return atomic_save({"model": state, "config": model.config.to_dict()}, out_dir / MODEL_FILE)


class PhoneRecognizer:
    """A loaded model, its phone table and its device; :meth:`recognize` gives phone sequences."""

    def __init__(self, model: PhoneCTCModel, table: TokenTable, device: str | torch.device = "cpu",
                 model_dir: Path | None = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.table = table
        self.model_dir = model_dir

    @property
    def phones_file(self) -> str:
        return str(self.model_dir / PHONES_FILE) if self.model_dir is not None else PHONES_FILE

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> PhoneRecognizer:
        """Load a model directory (one-line InputErrors for a missing or broken one)."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise InputError(f"{model_dir}: no such model directory")
        for name in (MODEL_FILE, CONFIG_FILE, PHONES_FILE):
            if not (model_dir / name).is_file():
                raise InputError(f"{model_dir}: not a phone recognizer directory (no {name})")
        try:
            config = ModelConfig.from_dict(json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8")))
        except (ValueError, TypeError) as e:
            raise InputError(f"{model_dir / CONFIG_FILE}: bad model config ({e})") from e
        table = read_phone_table(model_dir / PHONES_FILE)
        if len(table) != config.num_classes:
            raise InputError(f"{model_dir / PHONES_FILE}: {len(table)} entries, but the model has "
                             f"{config.num_classes} output classes")
        from shirabe.train.checkpoint import safe_load

        ckpt = safe_load(model_dir / MODEL_FILE)
        if not isinstance(ckpt, dict) or "model" not in ckpt:
            raise InputError(f"{model_dir / MODEL_FILE}: not a phone recognizer model (no 'model' entry)")
        model = PhoneCTCModel(config)
        try:
            model.load_state_dict(ckpt["model"], strict=True)
        except RuntimeError as e:
            raise InputError(f"{model_dir / MODEL_FILE}: does not fit {CONFIG_FILE} ({str(e).splitlines()[0]})") from e
        return cls(model, table, device, model_dir)

    @torch.no_grad()
    def recognize_features(self, feats: Sequence[torch.Tensor], batch_size: int = 8) -> list[list[str]]:
        """Greedy CTC phone sequences of (T, 100) feature matrices."""
        out: list[list[str] | None] = [None] * len(feats)
        order = sorted(range(len(feats)), key=lambda i: feats[i].size(0))
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            lens = torch.tensor([max(1, feats[i].size(0)) for i in idx])
            x = torch.zeros(len(idx), int(lens.max()), feats[idx[0]].size(1))
            for row, i in enumerate(idx):
                x[row, : feats[i].size(0)] = feats[i]
            log_probs, out_lens = self.model(x.to(self.device), lens.to(self.device))
            for i, ids in zip(idx, greedy_decode(log_probs, out_lens), strict=True):
                out[i] = [self.table.id2token[j] for j in ids]
        return out  # type: ignore[return-value]

    def recognize(self, audio: Sequence, batch_size: int = 8) -> list[list[str]]:
        """Phone sequences of audio files or ``(samples, sample_rate)`` pairs (any rate)."""
        return self.recognize_features([audio_features(a) for a in audio], batch_size)


def audio_features(audio) -> torch.Tensor:
    """Features of a path or a ``(samples, sample_rate)`` pair."""
    if isinstance(audio, (str, Path)):
        return wav_fbank(audio)
    if isinstance(audio, tuple) and len(audio) == 2:
        samples, sr = audio
        return fbank(np.asarray(samples, dtype=np.float32), int(sr))
    raise TypeError(f"audio must be a path or a (samples, sample_rate) pair, got {type(audio).__name__}")


def load_recognizer(model_dir: str | Path, device: str | torch.device = "cpu") -> PhoneRecognizer:
    return PhoneRecognizer.from_dir(model_dir, device)
