"""Objective measures of a generated accompaniment against its vocal (and the true instrumental).

All signals are mono float arrays at one sample rate (:func:`to_mono` folds stereo ``[2, N]`` or
``[N, 2]``); pairs are cut to their common length. No learned model is involved.

- :func:`beat_alignment`: the fraction of vocal onsets (librosa onset detector) that lie within
  ``±tolerance`` (70 ms) of a beat of the accompaniment (librosa beat tracker). 1 = every sung onset
  falls on the accompaniment's beat grid; NaN when the vocal has no onset or the accompaniment no beat.
- :func:`estimate_key` / :func:`key_agreement`: the key of each signal is the major or minor
  Krumhansl–Kessler profile (rotated to all 12 tonics) that correlates best with the time-averaged
  constant-Q chroma. Agreement: 1.0 for the same key; 0.5 for a closely related key: the relative
  major/minor (C major ~ A minor) or a fifth neighbour in the same mode (C major ~ G major, F major);
  0.0 otherwise.
- :func:`energy_correlation`: the Pearson correlation of the two frame RMS envelopes
  (2048-sample frames, hop 512), in [-1, 1].
- :func:`mel_distance`: the mean absolute difference of the log-mel power spectrograms of the
  generated and the true instrumental, in dB (80 mel bands, 2048-point FFT, hop 512, floor 1e-10):
  ``mean |10·log10(M_gen + ε) − 10·log10(M_ref + ε)|``. 0 for identical signals; a gain ``g`` on a
  signal without silent bands gives ``|20·log10 g|``.
- :func:`vocal_leakage`: how much of the vocal's time–frequency pattern is in the accompaniment, in
  dB. Both STFT magnitudes (2048-point FFT, hop 512) have each frequency bin's mean over time
  removed (a steady spectral shape is not leakage); ``r`` is the normalised inner product of the two
  centred magnitudes, maximised over lags up to ``max_lag`` (0.1 s) either way. Read as a projection,
  ``r²`` is the share of the accompaniment's (centred) magnitude energy explained by the vocal, and
  the leakage is the ratio of the explained to the rest, ``10·log10(r² / (1 − r²))`` (clipped to
  ``[-100, 100]`` dB). An accompaniment independent of the vocal scores far below 0 dB; adding the
  vocal raises the score.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

N_FFT = 2048
HOP = 512

# Krumhansl-Kessler key profiles, tonic first (C major / C minor).
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def to_mono(audio) -> np.ndarray:
    """A 1-D float64 array from ``[N]``, ``[C, N]`` (channels first, C <= 8) or ``[N, C]``."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D signal, got shape {x.shape}")
    return x.mean(axis=0) if x.shape[0] <= 8 and x.shape[0] < x.shape[1] else x.mean(axis=1)


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_mono(a), to_mono(b)
    n = min(len(a), len(b))
    return a[:n], b[:n]


def beat_alignment(vocal, accompaniment, sr: int, tolerance: float = 0.07) -> float:
    """Fraction of vocal onsets within ``tolerance`` seconds of an accompaniment beat."""
    import librosa

    vocal, accompaniment = _pair(vocal, accompaniment)
    onsets = librosa.onset.onset_detect(y=vocal.astype(np.float32), sr=sr, units="time", hop_length=HOP // 2)
    _, beats = librosa.beat.beat_track(y=accompaniment.astype(np.float32), sr=sr, units="time",
                                       hop_length=HOP // 2)
    beats = np.asarray(beats, dtype=np.float64)
    if len(onsets) == 0 or len(beats) == 0:
        return math.nan
    nearest = np.min(np.abs(onsets[:, None] - beats[None, :]), axis=1)
    return float(np.mean(nearest <= tolerance))


def estimate_key(audio, sr: int) -> tuple[int, str]:
    """``(tonic pitch class 0..11, "major" | "minor")`` by chroma/Krumhansl profile correlation."""
    import librosa

    y = to_mono(audio).astype(np.float32)
    with warnings.catch_warnings():  # short clips: the lowest CQT octaves see few samples
        warnings.simplefilter("ignore", UserWarning)
        chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=HOP).mean(axis=1)
    best, best_r = (0, "major"), -np.inf
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
            if r > best_r:
                best, best_r = (tonic, mode), r
    return best


def key_name(key: tuple[int, str]) -> str:
    return f"{PITCH_NAMES[key[0]]} {key[1]}"


def key_relation(a: tuple[int, str], b: tuple[int, str]) -> float:
    """1.0 same key, 0.5 relative major/minor or fifth neighbour (same mode), else 0.0."""
    (ta, ma), (tb, mb) = a, b
    if a == b:
        return 1.0
    if ma == mb:
        return 0.5 if (ta - tb) % 12 in (5, 7) else 0.0
    major, minor = (ta, tb) if ma == "major" else (tb, ta)
    return 0.5 if (major - minor) % 12 == 3 else 0.0  # the relative minor lies 3 semitones below


def key_agreement(vocal, accompaniment, sr: int) -> float:
    """:func:`key_relation` of the two estimated keys."""
    vocal, accompaniment = _pair(vocal, accompaniment)
    return key_relation(estimate_key(vocal, sr), estimate_key(accompaniment, sr))


def rms_envelope(audio) -> np.ndarray:
    import librosa

    return librosa.feature.rms(y=to_mono(audio).astype(np.float32), frame_length=N_FFT, hop_length=HOP)[0]


def energy_correlation(a, b) -> float:
    """Pearson correlation of the frame RMS envelopes (NaN when one is constant)."""
    a, b = _pair(a, b)
    ea, eb = rms_envelope(a), rms_envelope(b)
    if ea.std() == 0 or eb.std() == 0:
        return math.nan
    return float(np.corrcoef(ea, eb)[0, 1])


def mel_distance(generated, reference, sr: int, n_mels: int = 80, floor: float = 1e-10) -> float:
    """Mean absolute log-mel (power, dB) difference to the reference."""
    import librosa

    generated, reference = _pair(generated, reference)

    def logmel(y):
        m = librosa.feature.melspectrogram(y=y.astype(np.float32), sr=sr, n_fft=N_FFT, hop_length=HOP,
                                           n_mels=n_mels, power=2.0)
        return 10.0 * np.log10(m.astype(np.float64) + floor)

    return float(np.mean(np.abs(logmel(generated) - logmel(reference))))


def _centred_magnitude(y: np.ndarray) -> np.ndarray:
    import librosa

    mag = np.abs(librosa.stft(y.astype(np.float32), n_fft=N_FFT, hop_length=HOP)).astype(np.float64)
    return mag - mag.mean(axis=1, keepdims=True)


def vocal_leakage(accompaniment, vocal, sr: int, max_lag: float = 0.1) -> float:
    """Leakage of ``vocal`` into ``accompaniment`` in dB (see the module docstring)."""
    accompaniment, vocal = _pair(accompaniment, vocal)
    a, v = _centred_magnitude(accompaniment), _centred_magnitude(vocal)
    lags = int(round(max_lag * sr / HOP))
    frames = a.shape[1]
    best = 0.0
    for lag in range(-lags, lags + 1):
        if lag >= 0:
            x, y = a[:, lag:], v[:, :frames - lag]
        else:
            x, y = a[:, :frames + lag], v[:, -lag:]
        norm = np.linalg.norm(x) * np.linalg.norm(y)
        if norm > 0:
            best = max(best, float(np.sum(x * y) / norm))
    r2 = min(max(best * best, 1e-10), 1.0 - 1e-10)
    return float(10.0 * np.log10(r2 / (1.0 - r2)))


METRICS = ("beat_alignment", "key_agreement", "energy_correlation", "vocal_leakage_db", "mel_distance_db")


def compute_metrics(accompaniment, vocal, sr: int, reference=None) -> dict[str, float]:
    """Every metric of one generated accompaniment; ``mel_distance_db`` only with the true ``reference``."""
    out = {
        "beat_alignment": beat_alignment(vocal, accompaniment, sr),
        "key_agreement": key_agreement(vocal, accompaniment, sr),
        "energy_correlation": energy_correlation(vocal, accompaniment),
        "vocal_leakage_db": vocal_leakage(accompaniment, vocal, sr),
    }
    if reference is not None:
        out["mel_distance_db"] = mel_distance(accompaniment, reference, sr)
    return out


def read_audio(path: str | Path, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Mono float audio of ``path`` (resampled to ``sr`` when given)."""
    import soundfile as sf

    try:
        y, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        from shirabe.cli import InputError

        raise InputError(f"{path}: not a readable audio file ({exc})") from None
    y = y.mean(axis=1)
    if sr is not None and sr != rate:
        import librosa

        y, rate = librosa.resample(y, orig_sr=rate, target_sr=sr), sr
    return y, int(rate)


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation and count (NaN entries left out) of each metric over ``rows``."""
    out = {}
    for name in METRICS:
        values = np.array([r[name] for r in rows if name in r and not math.isnan(r[name])], dtype=np.float64)
        if len(values):
            out[name] = {"mean": float(values.mean()), "std": float(values.std()), "n": int(len(values))}
    return out


def evaluate_folder(system_dir: str | Path, vocals_dir: str | Path, reference_dir: str | Path | None = None,
                    sr: int = 22050, system_suffix: str = "", progress: bool = False) -> dict:
    """Metrics of every sample of ``system_dir`` that has a vocal in ``vocals_dir`` (and a true
    instrumental in ``reference_dir``, when given, for the mel distance). Files are paired by sample key
    as on the comparison page (:func:`acestep.accompaniment.compare.find_audio`). Returns
    ``{"samples": {key: metrics}, "summary": summarise(...), "missing_vocal": [keys]}``."""
    from tqdm import tqdm

    from acestep.accompaniment.compare import find_audio

    outputs = find_audio(Path(system_dir), system_suffix, "system folder")
    vocals = find_audio(Path(vocals_dir), "", "vocals folder")
    references = find_audio(Path(reference_dir), "", "reference folder") if reference_dir is not None else {}
    samples, missing = {}, []
    for key in tqdm(sorted(outputs), desc=f"metrics {Path(system_dir).name}", disable=not progress):
        if key not in vocals:
            missing.append(key)
            continue
        generated, _ = read_audio(outputs[key], sr)
        vocal, _ = read_audio(vocals[key], sr)
        reference = read_audio(references[key], sr)[0] if key in references else None
        samples[key] = compute_metrics(generated, vocal, sr, reference)
    return {"samples": samples, "summary": summarise(list(samples.values())), "missing_vocal": missing}
