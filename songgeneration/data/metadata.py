"""``metadata.jsonl``: one JSON object per line with ``path``, ``gt_lyric``, ``descriptions`` and ``idx``.

A line that is not a JSON object, lacks one of the fields, holds a non-string value, has an
``idx`` that cannot name a file (empty, a path separator, a leading dot) or repeats an earlier
``idx`` is a reject ``(idx or "-", "FILE:LINE: reason")``; the other lines are read on. Blank
lines are skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from shirabe.cli import InputError

FIELDS = ("path", "gt_lyric", "descriptions", "idx")
IDX_PATTERN = re.compile(r"^[^/\\\x00-\x1f.][^/\\\x00-\x1f]*$")


@dataclass(frozen=True)
class SongEntry:
    idx: str
    path: str
    gt_lyric: str
    descriptions: str
    where: str  # "FILE:LINE"


def read_metadata(path: str | Path) -> tuple[list[SongEntry], list[tuple[str, str]]]:
    """The good entries and the rejects ``(idx, reason)`` of a metadata file (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: metadata file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    entries: list[SongEntry] = []
    rejects: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            rejects.append(("-", f"{where}: not JSON ({e.msg}, column {e.colno})"))
            continue
        if not isinstance(item, dict):
            rejects.append(("-", f"{where}: expected a JSON object, got {type(item).__name__}"))
            continue
        idx = item.get("idx")
        name = idx if isinstance(idx, str) and idx else "-"
        missing = [f for f in FIELDS if f not in item]
        if missing:
            rejects.append((name, f"{where}: missing field{'s' if len(missing) > 1 else ''} "
                                  f"{', '.join(repr(f) for f in missing)}"))
            continue
        wrong = [f for f in FIELDS if not isinstance(item[f], str)]
        if wrong:
            rejects.append((name, f"{where}: field '{wrong[0]}' must be a string, got {type(item[wrong[0]]).__name__}"))
            continue
        if not IDX_PATTERN.match(idx):
            rejects.append((name, f"{where}: idx {idx!r} cannot name a file (empty, a path separator or a "
                                  "leading dot)"))
            continue
        if not item["path"].strip():
            rejects.append((idx, f"{where}: field 'path' is empty"))
            continue
        if idx in first_line:
            rejects.append((idx, f"{where}: idx '{idx}' repeats line {first_line[idx]}"))
            continue
        first_line[idx] = number
        entries.append(SongEntry(idx, item["path"], item["gt_lyric"], item["descriptions"], where))
    return entries, rejects
