"""Corpus TSVs to lhotse manifests, with bad items skipped and listed.

Each utterance is checked before it enters the manifests: the audio must open,
hold at least ``min_duration`` seconds, not be digitally silent, and a segment
must lie inside its recording. Failures are collected as :class:`Reject`
records (the caller writes them to a rejects list); the rest is passed through
lhotse's ``fix_manifests`` and validation.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.qa import fix_manifests, validate_recordings_and_supervisions
from tqdm import tqdm

from shirabe.data.tsv import Reject, TsvRow

logger = logging.getLogger(__name__)

SILENCE_PEAK = 1e-4  # -80 dBFS: nothing audible was recorded


def speaker_of(utt_id: str) -> str:
    """``{speaker}_{nnnn}`` -> ``speaker`` (the whole id when there is no ``_``)."""
    return utt_id.rsplit("_", 1)[0] if "_" in utt_id else utt_id


def check_row(row: TsvRow, min_duration: float = 0.1, language: str | None = None):
    """Return ``(Recording, SupervisionSegment)`` for a good row, else a reason string."""
    try:
        recording = Recording.from_file(row.wav, recording_id=row.utt_id)
    except Exception as e:  # lhotse/soundfile raise many kinds for unreadable audio
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        return f"unreadable audio: {row.wav}: {reason}"
    end = recording.duration if row.end is None else row.end
    if end > recording.duration + 0.01:
        return f"segment past end: ends at {end:.3f}s, the recording at {recording.duration:.3f}s"
    end = min(end, recording.duration)
    if end - row.start < min_duration:
        return f"too short: {end - row.start:.3f}s < {min_duration}s"
    try:
        sr = recording.sampling_rate
        samples, _ = sf.read(str(row.wav), start=int(row.start * sr), stop=int(end * sr), dtype="float32")
    except Exception as e:
        return f"unreadable audio: {row.wav}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    if samples.size == 0 or float(np.max(np.abs(samples))) < SILENCE_PEAK:
        return "silent audio"
    supervision = SupervisionSegment(
        id=row.utt_id,
        recording_id=row.utt_id,
        start=row.start,
        duration=round(end - row.start, 6),
        channel=recording.channel_ids[0] if len(recording.channel_ids) == 1 else recording.channel_ids,
        text=row.text,
        speaker=speaker_of(row.utt_id),
        language=language,
    )
    return recording, supervision


def _check(args):
    return check_row(*args)


def build_manifests(
    rows: list[TsvRow],
    source: str,
    sampling_rate: int = 24000,
    num_jobs: int = 1,
    min_duration: float = 0.1,
    language: str | None = None,
    progress: bool = True,
) -> tuple[RecordingSet, SupervisionSet, CutSet, list[Reject]]:
    """Check every row and build recordings, supervisions and one cut per utterance.

    Cuts are resampled to ``sampling_rate`` and trimmed to their supervision.
    """
    jobs = [(row, min_duration, language) for row in rows]
    num_jobs = max(1, min(num_jobs, len(jobs), os.cpu_count() or 1))
    bar = dict(total=len(jobs), desc=f"checking {Path(source).name}", disable=not progress, unit="utt")
    if num_jobs == 1:
        results = [_check(j) for j in tqdm(jobs, **bar)]
    else:
        with ProcessPoolExecutor(num_jobs) as pool:
            results = list(tqdm(pool.map(_check, jobs, chunksize=16), **bar))

    recordings, supervisions, rejects = [], [], []
    for row, result in zip(rows, results, strict=True):
        if isinstance(result, str):
            rejects.append(Reject(source, row.line_no, row.utt_id, result))
        else:
            recordings.append(result[0])
            supervisions.append(result[1])
    if not recordings:
        return RecordingSet.from_recordings([]), SupervisionSet.from_segments([]), CutSet.from_cuts([]), rejects
    recording_set, supervision_set = fix_manifests(
        RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)
    )
    validate_recordings_and_supervisions(recording_set, supervision_set)
    cuts = (
        CutSet.from_manifests(recordings=recording_set, supervisions=supervision_set)
        .trim_to_supervisions(keep_overlapping=False)
        .resample(sampling_rate)
    )
    return recording_set, supervision_set, cuts, rejects


def summarize_rejects(rejects: list[Reject]) -> str:
    """Count rejects by kind (the reason up to its first colon): ``"3 (silent audio: 2, empty text: 1)"``."""
    if not rejects:
        return "0"
    kinds = Counter(r.reason.split(":")[0] for r in rejects)
    return f"{len(rejects)} (" + ", ".join(f"{k}: {n}" for k, n in kinds.most_common()) + ")"
