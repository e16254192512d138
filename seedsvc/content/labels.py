"""Phone timings → frame-level phone ids, and the phone table.

A timing file is a TSV with one ``start<TAB>end<TAB>phone`` line per segment
(seconds). Frame ``j`` of a mel sequence (``hop`` samples per frame at ``sr``) is
labelled with the segment that holds its centre, ``(j + 0.5)·hop / sr``; frames
outside every segment get the silence phone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shirabe.cli import InputError

SILENCE = "sil"


def read_timings(path: str | Path) -> list[tuple[float, float, str]]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such phone timing file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise InputError(f"{path}:{n}: expected 'start<TAB>end<TAB>phone', got {len(fields)} fields")
        try:
            start, end = float(fields[0]), float(fields[1])
        except ValueError:
            raise InputError(f"{path}:{n}: start/end are not numbers") from None
        if end < start:
            raise InputError(f"{path}:{n}: end {end} is before start {start}")
        out.append((start, end, fields[2].strip()))
    return out


def write_timings(path: str | Path, timings: list[tuple[float, float, str]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{s:.4f}\t{e:.4f}\t{p}\n" for s, e, p in timings), encoding="utf-8")
    tmp.replace(path)


def frame_labels(timings, num_frames: int, table: dict[str, int], sr: int, hop: int) -> np.ndarray:
    """(num_frames,) int64 phone ids; unknown phones raise :class:`InputError`."""
    centres = (np.arange(num_frames) + 0.5) * hop / sr
    ids = np.full(num_frames, table[SILENCE], dtype=np.int64)
    for start, end, phone in timings:
        if phone not in table:
            raise InputError(f"phone '{phone}' is not in the phone table")
        ids[(centres >= start) & (centres < end)] = table[phone]
    return ids


def build_table(phones) -> dict[str, int]:
    """Sorted phone table with silence at id 0."""
    return {p: i for i, p in enumerate([SILENCE, *sorted(set(phones) - {SILENCE})])}
