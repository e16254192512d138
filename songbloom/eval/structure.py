"""Does a song sing where its lyrics say it should? A vocal activity detector and section adherence.

**Vocal activity** (:func:`vocal_activity`), per frame of 40 ms every 20 ms, on the mono
signal resampled to 16 kHz. A frame is active when it is both

* loud: its RMS level is at least ``floor_db`` dBFS and no more than ``range_db`` below
  the song's loud frames (the 95th percentile of its frame levels), and
* voiced: the peak of its normalised autocorrelation
  ``r(t) = sum x[n] x[n+t] / sqrt(sum x[n]^2 * sum x[n+t]^2)`` over lags of a 60-1000 Hz
  pitch reaches ``voicing``: a sung vowel is periodic (r near 1), noise and silence are
  not (r near 0).

It hears any periodic sound: in a mix with accompaniment, pitched instruments count as
active too, so on full mixes the measure says where the song is musical rather than
where it sings. On a cappella audio (the mini corpus, jaCappella's lead vocal) it finds
the sung stretches; the breaths, rests and unvoiced consonants between are inactive.

**Section layout** (:func:`section_layout`): the lyric's sections in order, each given a
share of the song's duration proportional to its SongBloom symbol count (a tag, its
phonemes and separators; a non-vocal tag written once per second counts each time).

**Adherence** (:func:`structure_adherence`): per section, the share of active frames in
its span; a vocal section adheres when the share is at least ``min_active``, a non-vocal
one when it is below. The song's score is the share of sections that adhere.
"""

from __future__ import annotations

import numpy as np

from shirabe.audio.resample import resample

RATE = 16000
HOP_SECONDS = 0.02
WINDOW_SECONDS = 0.04
F0_RANGE = (60.0, 1000.0)
DEFAULT_RANGE_DB = 30.0
DEFAULT_FLOOR_DB = -55.0
DEFAULT_VOICING = 0.5
DEFAULT_MIN_ACTIVE = 0.3
_CHUNK = 512  # frames per FFT batch


def frames(wav: np.ndarray, hop: int, win: int) -> np.ndarray:
    """``(num_frames, win)`` frames every ``hop`` samples, the last zero-padded; frame ``j`` starts at ``j * hop``."""
    n = max(1, int(np.ceil(len(wav) / hop)))
    padded = np.zeros((n - 1) * hop + win, dtype=np.float64)
    padded[:len(wav)] = wav
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    return padded[idx]


def frame_levels_db(x: np.ndarray) -> np.ndarray:
    """RMS level of each frame in dBFS (a full-scale sine is -3 dB); -120 for silence."""
    rms = np.sqrt(np.mean(x ** 2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def voicing_strength(x: np.ndarray, rate: int = RATE, f0_range: tuple[float, float] = F0_RANGE) -> np.ndarray:
    """The peak of each frame's normalised autocorrelation over the lags of ``f0_range`` (module docstring)."""
    n = x.shape[1]
    lo, hi = int(np.floor(rate / f0_range[1])), int(np.ceil(rate / f0_range[0]))
    hi = min(hi, n - 2)
    if lo > hi:
        raise ValueError(f"frames of {n} samples are too short for lags {lo}..{hi}")
    size = 1 << int(np.ceil(np.log2(2 * n)))
    lags = np.arange(lo, hi + 1)
    out = np.zeros(x.shape[0])
    for s in range(0, x.shape[0], _CHUNK):
        c = x[s:s + _CHUNK]
        spec = np.fft.rfft(c, size, axis=1)
        acf = np.fft.irfft(spec * np.conj(spec), size, axis=1)[:, lags]
        energy = np.cumsum(c ** 2, axis=1)
        total = energy[:, -1:]
        head = energy[:, n - 1 - lags]  # sum of x[0 .. n-1-t]^2
        tail = total - np.concatenate([np.zeros((len(c), 1)), energy], axis=1)[:, lags]  # sum of x[t .. n-1]^2
        denom = np.sqrt(np.maximum(head * tail, 1e-20))
        out[s:s + len(c)] = np.max(acf / denom, axis=1)
    return out


def vocal_activity(wav, sr: int, range_db: float = DEFAULT_RANGE_DB, floor_db: float = DEFAULT_FLOOR_DB,
                   voicing: float = DEFAULT_VOICING) -> np.ndarray:
    """Boolean activity per 20 ms frame of mono or ``(samples, channels)`` audio (module docstring)."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    if wav.ndim != 1:
        raise ValueError(f"expected (samples,) or (samples, channels) audio, got shape {wav.shape}")
    mono = resample(wav, int(sr), RATE).astype(np.float64)
    x = frames(mono, int(round(HOP_SECONDS * RATE)), int(round(WINDOW_SECONDS * RATE)))
    levels = frame_levels_db(x)
    loud = levels >= max(floor_db, float(np.percentile(levels, 95)) - range_db)
    active = np.zeros(len(levels), dtype=bool)
    if loud.any():
        active[loud] = voicing_strength(x[loud]) >= voicing
    return active


def section_layout(weights, duration: float) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of consecutive sections sharing ``duration`` in proportion to ``weights``."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    edges = np.concatenate([[0.0], np.cumsum(w)]) / w.sum() * duration
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def active_share(active: np.ndarray, span: tuple[float, float], hop: float = HOP_SECONDS) -> float | None:
    """Share of active frames whose centre lies in ``span``; None when none does."""
    centres = (np.arange(len(active)) * hop) + WINDOW_SECONDS / 2
    inside = (centres >= span[0]) & (centres < span[1])
    return float(active[inside].mean()) if inside.any() else None


def structure_adherence(active: np.ndarray, sections: list[tuple[bool, float]], duration: float,
                        min_active: float = DEFAULT_MIN_ACTIVE, hop: float = HOP_SECONDS) -> dict:
    """Adherence of an activity track to sections given as ``(vocal, symbol count)`` (module docstring).

    Returns ``{"sections": [{"vocal", "start", "end", "active", "adheres"}], "accuracy", "vocal_active",
    "nonvocal_active"}``: the accuracy is the share of sections (with frames) that adhere; ``vocal_active``
    and ``nonvocal_active`` are the active shares over all vocal and all non-vocal spans (None without such).
    """
    spans = section_layout([n for _, n in sections], duration)
    rows = []
    sums = {True: [0.0, 0], False: [0.0, 0]}
    centres = (np.arange(len(active)) * hop) + WINDOW_SECONDS / 2
    for (vocal, _), (start, end) in zip(sections, spans, strict=True):
        share = active_share(active, (start, end), hop)
        adheres = None if share is None else bool(share >= min_active) == bool(vocal)
        rows.append({"vocal": bool(vocal), "start": start, "end": end, "active": share, "adheres": adheres})
        inside = (centres >= start) & (centres < end)
        sums[bool(vocal)][0] += float(active[inside].sum())
        sums[bool(vocal)][1] += int(inside.sum())
    judged = [r["adheres"] for r in rows if r["adheres"] is not None]
    return {"sections": rows, "accuracy": (sum(judged) / len(judged)) if judged else None,
            "vocal_active": sums[True][0] / sums[True][1] if sums[True][1] else None,
            "nonvocal_active": sums[False][0] / sums[False][1] if sums[False][1] else None}
