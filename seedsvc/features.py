"""Per-utterance features of SeedSVC, cached with lhotse.

An utterance list is a TSV with a header naming its columns: ``utt_id``,
``speaker``, ``wav`` (required), ``f0`` (a ``.npy`` F0 track in Hz at 100
frames/s, else one is extracted) and ``phones`` (a phone-timing TSV, see
:mod:`seedsvc.content.labels`). Relative paths are relative to the list.

Each cut carries custom arrays: ``mel`` (T, 80) log-mel of :mod:`seedsvc.audio`
(lilcom), ``f0`` (T,) Hz at mel frames, ``style`` (192,), ``phone_ids`` (T,)
when timings are given, and later ``content`` (T, D) (see
``seedsvc.bin.compute_content``). Bad rows (missing or silent audio, unreadable
F0) are skipped, counted and written to a rejects file.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seedsvc.audio import FRAME_RATE, HOP, SAMPLE_RATE, mel_spectrogram
from seedsvc.content.labels import frame_labels, read_timings
from shirabe.audio import load_audio
from shirabe.audio.world import repitch
from shirabe.cli import InputError
from shirabe.pitch import extract_f0, resample_f0, shift_semitones

logger = logging.getLogger(__name__)

REQUIRED = ("utt_id", "speaker", "wav")
SILENCE_PEAK = 1e-4
F0_FILE_RATE = 100.0
COPY_F0_RANGE = (100.0, 700.0)  # Hz: median sung F0 a re-pitched training copy may have


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    speaker: str
    wav: Path
    f0: Path | None = None
    phones: Path | None = None
    song: str = ""


def read_list(path: str | Path) -> list[Utterance]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such utterance list")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: header lacks column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})")
        rows = []
        for n, row in enumerate(reader, 2):
            if not row.get("utt_id"):
                raise InputError(f"{path}:{n}: empty utt_id")

            def rel(key, row=row):
                v = (row.get(key) or "").strip()
                return None if not v else (Path(v) if Path(v).is_absolute() else path.parent / v)

            rows.append(Utterance(row["utt_id"], row["speaker"], rel("wav"), rel("f0"), rel("phones"),
                                  (row.get("song") or "").strip()))
    return rows


def write_list(path: str | Path, utts: list[Utterance]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write("utt_id\tspeaker\tsong\twav\tf0\tphones\n")
        for u in utts:
            f.write(f"{u.utt_id}\t{u.speaker}\t{u.song}\t{u.wav}\t{u.f0 or ''}\t{u.phones or ''}\n")
    tmp.replace(path)


def load_wav_22k(path: Path) -> np.ndarray:
    """Mono 22.05 kHz audio; InputError for missing, unreadable or silent files."""
    wav, _ = load_audio(path, sr=SAMPLE_RATE)
    if wav.size < HOP * 4:
        raise InputError(f"{path}: too short ({wav.size} samples at {SAMPLE_RATE} Hz)")
    if float(np.abs(wav).max()) < SILENCE_PEAK:
        raise InputError(f"{path}: silent (peak below {SILENCE_PEAK})")
    return wav


def f0_at_mel_frames(f0_100: np.ndarray, num_frames: int) -> np.ndarray:
    return np.asarray(resample_f0(np.asarray(f0_100, dtype=np.float64), F0_FILE_RATE, FRAME_RATE, n_frames=num_frames),
                      dtype=np.float32)


def utterance_features(utt: Utterance, style_encoder, f0_method: str = "harvest", phone_table=None,
                       rmvpe_model: str | None = None, pitch_shifts=(),
                       copy_f0_range: tuple[float, float] = COPY_F0_RANGE) -> dict[float, dict[str, np.ndarray] | None]:
    """Features of one utterance (key 0.0) and of its WORLD re-pitched copies (one key per shift).

    The audio and F0 are read (or tracked) once. A copy keeps the singer's spectral
    envelope and timing and has F0 × 2^(shift/12); its 22.05 kHz audio is under
    ``"wav"``. A copy whose median voiced F0 would fall outside ``copy_f0_range`` (Hz)
    is not made: None.
    """
    wav = load_wav_22k(utt.wav)
    f0 = utterance_f0(utt, wav, f0_method, rmvpe_model)
    timings = read_timings(utt.phones) if utt.phones is not None and phone_table is not None else None
    out = {0.0: _features(wav, f0, style_encoder, timings, phone_table)}
    for semitones in pitch_shifts:
        shifted = shift_semitones(f0, semitones)
        voiced = shifted[shifted > 0]
        if not voiced.size or not copy_f0_range[0] <= float(np.median(voiced)) <= copy_f0_range[1]:
            out[semitones] = None
            continue
        repitched = repitch(wav, SAMPLE_RATE, semitones, f0, F0_FILE_RATE)
        out[semitones] = {"wav": repitched, **_features(repitched, shifted, style_encoder, timings, phone_table)}
    return out


def _features(wav: np.ndarray, f0: np.ndarray, style_encoder, timings, phone_table) -> dict[str, np.ndarray]:
    mel = mel_spectrogram(torch.from_numpy(wav))[0]  # (80, T)
    t = mel.shape[1]
    out = {
        "mel": mel.t().contiguous().numpy(),
        "f0": f0_at_mel_frames(f0, t),
        "style": style_encoder(wav, SAMPLE_RATE).numpy().astype(np.float32),
    }
    if timings is not None:
        out["phone_ids"] = frame_labels(timings, t, phone_table, SAMPLE_RATE, HOP)
    return out


def utterance_f0(utt: Utterance, wav: np.ndarray, f0_method: str, rmvpe_model: str | None) -> np.ndarray:
    """The utterance's F0 at 100 frames/s: its ``f0`` file, else tracked on ``wav`` (22.05 kHz)."""
    if utt.f0 is not None:
        if not utt.f0.is_file():
            raise InputError(f"{utt.f0}: no such F0 file")
        try:
            f0 = np.load(utt.f0, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InputError(f"{utt.f0}: not a readable .npy F0 track ({e})") from e
        if f0.ndim != 1:
            raise InputError(f"{utt.f0}: expected a 1-D F0 track, got shape {f0.shape}")
        return np.asarray(f0, dtype=np.float64)
    return np.asarray(extract_f0(wav, SAMPLE_RATE, method=f0_method, rmvpe_model_path=rmvpe_model), dtype=np.float64)


def read_phone_table(path: str | Path) -> dict[str, int]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such phone table")
    table = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise InputError(f"{path}:{n}: expected '<phone> <id>'")
            table[parts[0]] = int(parts[1])
    return table
