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

import soundfile as sf
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.qa import fix_manifests, validate_recordings_and_supervisions
from tqdm import tqdm

from shirabe.audio.io import is_silent
from shirabe.cli import InputError
from shirabe.data.rejects import reason_kind, reason_of
from shirabe.data.tsv import Reject, TsvRow

logger = logging.getLogger(__name__)



def speaker_of(utt_id: str) -> str:
    """``{speaker}_{nnnn}`` -> ``speaker`` (the whole id when there is no ``_``)."""
    return utt_id.rsplit("_", 1)[0] if "_" in utt_id else utt_id


def check_row(row: TsvRow, min_duration: float = 0.1, language: str | None = None):
    """Return ``(Recording, SupervisionSegment)`` for a good row, else a reason string."""
    if row.wav.is_file() and row.wav.stat().st_size == 0:
        return f"empty audio file: {row.wav}"
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
    if is_silent(samples):
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
    """Count rejects by kind (see :func:`shirabe.data.rejects.reason_kind`): ``"3 (silent audio: 2, empty text: 1)"``."""
    if not rejects:
        return "0"
    kinds = Counter(reason_kind(r.reason) for r in rejects)
    return f"{len(rejects)} (" + ", ".join(f"{k}: {n}" for k, n in kinds.most_common()) + ")"


def read_cuts(path: str | Path) -> CutSet:
    """Read a whole CutSet manifest; a missing, empty or unreadable file is an :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes), not a cut manifest")
    try:
        cuts = CutSet.from_file(path).to_eager()
    except Exception as e:  # noqa: BLE001 - gzip, json and lhotse raise many kinds for a bad file
        raise InputError(f"{path}: not a readable cut manifest ({reason_of(e)})") from e
    if not isinstance(cuts, CutSet):
        raise InputError(f"{path}: holds {type(cuts).__name__}, not cuts")
    if len(cuts) == 0:
        raise InputError(f"{path}: the manifest holds no cuts")
    return cuts


def audio_path_of(cut) -> str:
    """The file (or URL/command) a cut's audio comes from, for messages; ``""`` if it has none."""
    recording = getattr(cut, "recording", None)
    if recording is None or not recording.sources:
        return ""
    return str(recording.sources[0].source)


def cut_audio_problem(cut) -> str | None:
    """Why ``cut``'s audio cannot be used (``empty audio file``, ``unreadable audio: ...``,
    ``silent audio``), or None. Reads the audio at its own rate."""
    if not cut.has_recording:
        return "no audio: the cut has no recording"
    for source in cut.recording.sources:
        if source.type == "file" and os.path.isfile(source.source) and os.path.getsize(source.source) == 0:
            return "empty audio file (0 bytes)"
    try:
        samples = cut.recording.load_audio(offset=cut.start, duration=cut.duration)
    except Exception as e:  # noqa: BLE001 - lhotse/soundfile raise many kinds for unreadable audio
        return f"unreadable audio: {_loading_error(e, audio_path_of(cut))}"
    if is_silent(samples):
        return "silent audio"
    return None


def _loading_error(error: Exception, path: str) -> str:
    """One line for an audio loading error; lhotse's first line only says that reading failed,
    the first backend's own message follows on the line ``Exception #0 (...): <class ...>: message``."""
    for line in str(error).splitlines():
        if line.startswith("Exception #0") and ">: " in line:
            message = line.rsplit(">: ", 1)[1].strip()
            if message:
                return message
    return reason_of(error, path)


def cut_audio_problems(cuts, num_jobs: int = 1, progress: bool = False, desc: str = "checking audio") -> list:
    """:func:`cut_audio_problem` of every cut, in order, with up to ``num_jobs`` processes."""
    cuts = list(cuts)
    num_jobs = max(1, min(num_jobs, len(cuts), os.cpu_count() or 1))
    bar = dict(total=len(cuts), desc=desc, disable=not progress, unit="cut")
    if num_jobs == 1:
        return [cut_audio_problem(c) for c in tqdm(cuts, **bar)]
    with ProcessPoolExecutor(num_jobs) as pool:
        return list(tqdm(pool.map(cut_audio_problem, cuts, chunksize=16), **bar))
