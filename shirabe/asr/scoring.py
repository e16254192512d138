"""Phone error rate of audio against the texts it should say.

:func:`score` recognizes each recording greedily and aligns the phones to the
text's reference phones (:class:`shirabe.asr.phones.TextPhones`), giving the
substitutions, deletions and insertions per item and summed over all items.
:func:`nonspeech_baselines` scores white noise and a sine-click train of each
recording's length and level against the same texts: what a recognizer that
hears no speech scores (near 100 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shirabe.asr.features import SAMPLE_RATE
from shirabe.asr.nonspeech import click_train, white_noise
from shirabe.asr.per import EditCounts, edit_counts
from shirabe.asr.phones import TextPhones, phone_ids
from shirabe.asr.recognizer import PhoneRecognizer, audio_features, load_recognizer


@dataclass
class ItemScore:
    item_id: str
    ref: list[str]
    hyp: list[str]
    counts: EditCounts

    def to_dict(self) -> dict:
        c = self.counts
        return {"id": self.item_id, "per": c.per, "errors": c.errors, "ref_phones": c.ref_len,
                "substitutions": c.substitutions, "deletions": c.deletions, "insertions": c.insertions,
                "ref": " ".join(self.ref), "hyp": " ".join(self.hyp)}


@dataclass
class PERDetails:
    """Per-item scores and their totals; ``per`` is summed errors over summed reference phones."""

    items: list[ItemScore] = field(default_factory=list)

    @property
    def counts(self) -> EditCounts:
        total = EditCounts()
        for item in self.items:
            total = total + item.counts
        return total

    @property
    def per(self) -> float:
        return self.counts.per

    def summary(self) -> dict:
        c = self.counts
        return {"per": c.per, "errors": c.errors, "ref_phones": c.ref_len, "substitutions": c.substitutions,
                "deletions": c.deletions, "insertions": c.insertions, "items": len(self.items)}

    def to_dict(self) -> dict:
        return {"overall": self.summary(), "items": [i.to_dict() for i in self.items]}


def score(model: PhoneRecognizer | str | Path, wavs: Sequence, texts: Sequence[str],
          ids: Sequence[str] | None = None, where: Sequence[str] | None = None, device: str = "cpu",
          batch_size: int = 8, quiet: bool = False) -> PERDetails:
    """PER of ``wavs`` (paths or ``(samples, sample_rate)`` pairs, any rate) against ``texts``.

    ``model`` is a :class:`PhoneRecognizer` or a model directory (loaded on ``device``).
    ``ids`` name the items in the result (default ``0, 1, ...``) and ``where`` in
    error messages (default: the ids). Reference phones missing from the model's
    table raise :class:`shirabe.asr.phones.UnknownPhoneError` before any audio is
    processed.
    """
    if len(wavs) != len(texts):
        raise ValueError(f"{len(wavs)} recordings but {len(texts)} texts")
    recognizer = model if isinstance(model, PhoneRecognizer) else load_recognizer(model, device)
    ids = [str(i) for i in range(len(texts))] if ids is None else [str(i) for i in ids]
    where = list(ids) if where is None else list(where)
    to_phones = TextPhones(quiet=quiet)
    refs = []
    for text, w in zip(texts, where, strict=True):
        phones = to_phones(text)
        phone_ids(recognizer.table, phones, w, recognizer.phones_file)
        refs.append(phones)
    hyps = recognizer.recognize_features([audio_features(w) for w in wavs], batch_size)
    return PERDetails([ItemScore(i, r, h, edit_counts(r, h)) for i, r, h in zip(ids, refs, hyps, strict=True)])


def _samples(audio) -> tuple[np.ndarray, int]:
    from shirabe.audio.io import load_audio

    if isinstance(audio, (str, Path)):
        return load_audio(audio, sr=SAMPLE_RATE)
    samples, sr = audio
    samples = np.asarray(samples, dtype=np.float32)
    return (samples.mean(axis=1) if samples.ndim == 2 else samples), int(sr)


def nonspeech_baselines(recognizer: PhoneRecognizer, wavs: Sequence, texts: Sequence[str],
                        ids: Sequence[str] | None = None, batch_size: int = 8,
                        quiet: bool = False) -> dict[str, PERDetails]:
    """``{"white_noise": ..., "clicks": ...}``: the PER of white noise and of a 1 kHz sine-click
    train (5 ms bursts, 10 per second), each as long and as loud (RMS) as the recording it
    replaces, against the recordings' texts."""
    noise, clicks = [], []
    for k, audio in enumerate(wavs):
        samples, sr = _samples(audio)
        noise.append((white_noise(samples, seed=k), sr))
        clicks.append((click_train(samples, sr), sr))
    return {name: score(recognizer, signals, texts, ids=ids, batch_size=batch_size, quiet=quiet)
            for name, signals in (("white_noise", noise), ("clicks", clicks))}
