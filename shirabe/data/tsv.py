"""Read ZipVoice-style corpus TSVs, keeping bad lines aside instead of failing.

One utterance per line: ``{utt_id}\\t{text}\\t{wav_path}`` or, for a segment of a
longer recording, ``{utt_id}\\t{text}\\t{wav_path}\\t{start}\\t{end}`` (seconds).
Relative wav paths are taken relative to the TSV's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shirabe.cli import InputError


@dataclass(frozen=True)
class TsvRow:
    line_no: int
    utt_id: str
    text: str
    wav: Path
    start: float = 0.0
    end: float | None = None


@dataclass(frozen=True)
class Reject:
    source: str
    line_no: int
    utt_id: str
    reason: str

    def as_tsv(self) -> str:
        return f"{self.source}\t{self.line_no}\t{self.utt_id}\t{self.reason}"


def parse_tsv(path: str | Path) -> tuple[list[TsvRow], list[Reject]]:
    """Parse a corpus TSV into rows and rejected lines (with reasons).

    A missing or unreadable file raises :class:`InputError`. Blank lines are
    ignored; a repeated utt_id keeps the first occurrence.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such TSV file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e

    rows: list[TsvRow] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        utt_id = fields[0].strip()

        def reject(reason: str, utt_id=utt_id, no=no) -> None:
            rejects.append(Reject(str(path), no, utt_id, reason))

        if len(fields) not in (3, 5):
            reject(f"bad field count: expected 3 or 5 tab-separated fields, found {len(fields)}")
            continue
        text, wav = fields[1].strip(), fields[2].strip()
        if not utt_id or any(c.isspace() for c in utt_id):
            reject("bad utt_id: empty or containing whitespace")
            continue
        if utt_id in seen:
            reject("duplicate utt_id")
            continue
        if not text:
            reject("empty text")
            continue
        start, end = 0.0, None
        if len(fields) == 5:
            try:
                start, end = float(fields[3]), float(fields[4])
            except ValueError:
                reject(f"bad start/end: not numbers: {fields[3]!r} {fields[4]!r}")
                continue
            if not 0 <= start < end:
                reject(f"bad start/end: need 0 <= start < end, got {start} {end}")
                continue
        wav_path = Path(wav)
        if not wav_path.is_absolute():
            wav_path = path.parent / wav_path
        seen.add(utt_id)
        rows.append(TsvRow(no, utt_id, text, wav_path, start, end))
    return rows, rejects
